# Source: openvino_xai user guide (1.1), "Black-Box mode".
# Changes: openvino_xai -> salvo; model/image paths -> zoo (the model takes raw
# pixels and normalises inside, as the guide's preprocess_fn assumes; see _offline.model_xml). NOTE: the guide gives no postprocess_fn, which the reference requires for
# black-box mode (ValueError) -- the snippet fails with the reference itself.
import cv2
import numpy as np
import openvino as ov  # guide: import openvino.runtime as ov (gone in OpenVINO 2026)

import salvo as xai
from salvo.explainer import ExplainMode

from _offline import image_path, model_xml


def preprocess_fn(x: np.ndarray) -> np.ndarray:
    # Implementing our own pre-process function based on the model's implementation
    x = cv2.resize(src=x, dsize=(224, 224))
    x = np.expand_dims(x, 0)
    return x

# Create ov.Model
model = ov.Core().read_model(model_xml())  # type: ov.Model

# The Explainer object will prepare and load the model once at the beginning
explainer = xai.Explainer(
    model,
    task=xai.Task.CLASSIFICATION,
    preprocess_fn=preprocess_fn,
    explain_mode=ExplainMode.BLACKBOX,
)

# Generate and process saliency maps (as many as required, sequentially)
image = cv2.imread(image_path())

# Run explanation
explanation = explainer(
    image,
    targets=[11, 14],  # target classes to explain
    # targets=-1,  # explain all classes
    overlay=True,  # False by default
)

# Save saliency maps
explanation.save("output_path", "name_")
