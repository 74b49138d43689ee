# Source: openvino_xai user guide (1.1), "Create Explainer from ONNX model file".
# Changes: openvino_xai -> salvo; "model.onnx" -> a small CNN written with the onnx package
# (_offline.onnx_classifier; input [1, 3, 64, 64], 10 classes); an explain call added to use it.
import numpy as np
import salvo as xai

from _offline import onnx_classifier

explainer = xai.Explainer(
    model=onnx_classifier(),
    task=xai.Task.CLASSIFICATION
)
explanation = explainer(np.random.default_rng(0).random((1, 3, 64, 64), np.float32), targets=[0])  # added
