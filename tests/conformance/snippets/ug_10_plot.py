# Source: openvino_xai user guide (1.1), "Plot saliency maps".
# Changes: openvino_xai -> salvo; model/image paths -> zoo (the model takes raw
# pixels and normalises inside, as the guide's preprocess_fn assumes; see _offline.model_xml); matplotlib uses the Agg backend and cv2 windows are no-ops without a display
# (_offline.headless_cv2), so that the snippet runs in CI.
import matplotlib
matplotlib.use("Agg")

import cv2
import numpy as np
import openvino as ov  # guide: import openvino.runtime as ov (gone in OpenVINO 2026)

import salvo as xai
from salvo.explainer import ExplainMode

from _offline import headless_cv2, image_path, model_xml

headless_cv2()

def preprocess_fn(image: np.ndarray) -> np.ndarray:
    """Preprocess the input image."""
    resized_image = cv2.resize(src=image, dsize=(224, 224))
    expanded_image = np.expand_dims(resized_image, 0)
    return expanded_image

# Create ov.Model
MODEL_PATH = model_xml()
model = ov.Core().read_model(MODEL_PATH)  # type: ov.Model

# The Explainer object will prepare and load the model once in the beginning
explainer = xai.Explainer(
    model,
    task=xai.Task.CLASSIFICATION,
    preprocess_fn=preprocess_fn,
    explain_mode=ExplainMode.WHITEBOX,
)

voc_labels = [
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
    'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'
]

# Generate and process saliency maps (as many as required, sequentially)
image = cv2.imread(image_path())

# Run explanation
explanation = explainer(
    image,
    label_names=voc_labels,
    targets=[7, 11],  # ['cat', 'dog'] also possible as target classes to explain
)

# Use matplotlib (recommended for Jupyter) - default backend
explanation.plot() # plot all saliency map
explanation.plot(targets=[7], backend="matplotlib")
explanation.plot(targets=["cat"], backend="matplotlib")
# Plots a grid with 5 images per row
explanation.plot(num_columns=5, backend="matplotlib")

# Use OpenCV (recommended for Python) - will open new windows with saliency maps
explanation.plot(backend="cv") # plot all saliency map
explanation.plot(targets=[7], backend="cv")
explanation.plot(targets=["cat"], backend="cv")
