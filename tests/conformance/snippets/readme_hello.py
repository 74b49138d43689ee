# Source: openvino_xai README.md (1.1.0), "Quick Start / Hello, OpenVINO XAI".
# Changes: openvino_xai -> salvo; "mobilenet_v3.xml" and tests/assets/cheetah_person.jpg -> zoo
# EfficientNet-Lite0 taking raw NHWC pixels and the coffee photo (_offline); target 293
# (cheetah) -> 967 (espresso).
import cv2
import numpy as np
import openvino as ov
import salvo as xai

from _offline import image_path, model_xml

# Load the model: IR or ONNX
ov_model: ov.Model = ov.Core().read_model(model_xml())

# Load the image to be analyzed
image: np.ndarray = cv2.imread(image_path("coffee"))
image = cv2.resize(image, dsize=(224, 224))
image = np.expand_dims(image, 0)

# Create the Explainer for the model
explainer = xai.Explainer(
    model=ov_model,  # accepts path arguments "mobilenet_v3.xml" or "mobilenet_v3.onnx" as well
    task=xai.Task.CLASSIFICATION,
)

# Generate saliency map for the label of interest
explanation: xai.Explanation = explainer(
    data=image,
    targets=967,  # guide: 293 (cheetah)
    overlay=True,  # saliency map overlay over the input image, defaults to False
)

# Save saliency maps to output directory
explanation.save(dir_path="./output")
