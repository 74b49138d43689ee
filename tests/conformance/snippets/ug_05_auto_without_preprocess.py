# Source: openvino_xai user guide (1.1), "Basic usage: Auto mode / Running without preprocess_fn".
# Changes: openvino_xai -> salvo; model/image paths -> zoo (the model takes raw
# pixels and normalises inside, as the guide's preprocess_fn assumes; see _offline.model_xml).
import cv2
import numpy as np
from typing import Mapping
import openvino as ov  # guide: import openvino.runtime as ov (gone in OpenVINO 2026)

import salvo as xai

from _offline import image_path, model_xml


def postprocess_fn(x: Mapping):
    # Implementing our own post-process function based on the model's implementation
    # Return "logits" model output
    return x["logits"]

# Create ov.Model
model = ov.Core().read_model(model_xml())  # type: ov.Model

# Explainer object will prepare and load the model once in the beginning
explainer = xai.Explainer(
    model,
    task=xai.Task.CLASSIFICATION,
    postprocess_fn=postprocess_fn,
)

# Generate and process saliency maps (as many as required, sequentially)
image = cv2.imread(image_path())

# Pre-process the image as the model requires (resizing and adding a batch dimension)
preprocessed_image = cv2.resize(src=image, dsize=(224, 224))
preprocessed_image = np.expand_dims(preprocessed_image, 0)

# Run explanation
explanation = explainer(
    preprocessed_image,
    targets=[11, 14],  # indices or string labels to explain
    overlay=True,  # False by default
    original_input_image=image,  # to apply overlay on the original image instead of the preprocessed one that was used for the explainer
)

# Save saliency maps
explanation.save("output_path", "name_")
