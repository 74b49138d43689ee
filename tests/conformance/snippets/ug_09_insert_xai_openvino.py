# Source: openvino_xai user guide (1.1), "XAI insertion (white-box usage)", the OpenVINO part.
# Changes: openvino_xai -> salvo; model/image paths -> zoo; `preprocess_fn` (undefined in the
# guide) -> the guide's usual resize + expand_dims, the model taking raw NHWC pixels. The PyTorch part is ug_09b_insert_xai_torch.py.
import cv2
import numpy as np
import openvino as ov  # guide: import openvino.runtime as ov (gone in OpenVINO 2026)
import salvo as xai
from salvo.explainer.visualizer import colormap, overlay  # noqa: F401 (the guide imports them)

from _offline import image_path, model_xml


def preprocess_fn(x):  # undefined in the guide: its usual resize + batch dimension
    return np.expand_dims(cv2.resize(src=x, dsize=(224, 224)), 0)


# Create an ov.Model
model: ov.Model = ov.Core().read_model(model_xml())

# Get and preprocess image
image = cv2.imread(image_path())
image_norm = preprocess_fn(image)

# Insert XAI branch into the OpenVINO model graph (IR)
model_xai: ov.Model = xai.insert_xai(
    model=model,
    task=xai.Task.CLASSIFICATION,
    # target_layer="last_conv_node_name",  # target_layer - the node after which the XAI branch will be inserted, usually the last convolutional layer in the backbone. Defaults to None, by which the target layer is automatically detected
    embed_scaling=True,  # True by default. If set to True, the saliency map scale (0 ~ 255) operation is embedded in the model
    explain_method=xai.Method.RECIPROCAM,  # ReciproCAM is the default XAI method for CNNs
)
