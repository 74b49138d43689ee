# Source: openvino_xai user guide (1.1), "Explainer: the main interface to XAI algorithms".
# Changes: openvino_xai -> salvo; `model` and `data` defined from the zoo (undefined in the guide).
import salvo as xai

import cv2

from _offline import zoo

model = zoo.efficientnet_lite0_uint8_nhwc()  # raw NHWC pixels in
data = cv2.resize(zoo.sample_image("coffee"), (224, 224))[None]

explainer = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION)
explanation = explainer(data)
