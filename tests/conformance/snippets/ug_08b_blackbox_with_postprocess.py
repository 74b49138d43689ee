# Source: openvino_xai user guide (1.1), "Black-Box mode", with the postprocess_fn the reference
# requires added (the guide's own snippet omits it; see ug_08_blackbox.py).
# Changes: openvino_xai -> salvo; model/image paths -> zoo (the model takes raw
# pixels and normalises inside, as the guide's preprocess_fn assumes; see _offline.model_xml).
import cv2
import numpy as np
import openvino as ov  # guide: import openvino.runtime as ov (gone in OpenVINO 2026)

import salvo as xai
from salvo.explainer import ExplainMode

from _offline import image_path, model_xml


def preprocess_fn(x: np.ndarray) -> np.ndarray:
    x = cv2.resize(src=x, dsize=(224, 224))
    x = np.expand_dims(x, 0)
    return x


def postprocess_fn(x):  # added
    return x["logits"]


model = ov.Core().read_model(model_xml())  # type: ov.Model
explainer = xai.Explainer(
    model,
    task=xai.Task.CLASSIFICATION,
    preprocess_fn=preprocess_fn,
    postprocess_fn=postprocess_fn,  # added
    explain_mode=ExplainMode.BLACKBOX,
)
image = cv2.imread(image_path())
explanation = explainer(
    image,
    targets=[11, 14],  # target classes to explain
    overlay=True,  # False by default
)
explanation.save("output_path", "name_")
