# Source: openvino_xai README.md (1.1.0), the first snippet (existing inference pipeline loop).
# Changes: openvino_xai -> salvo; ov_model/images/infer() defined from the zoo (the README leaves
# them undefined). FIXED UP: the README calls save(dir_path=..., name=...), which has no `name`
# parameter in the reference either (TypeError with both); here the loop index is the prefix.
import numpy as np
import openvino as ov
import salvo as xai

import cv2

from _offline import zoo

ov_model = zoo.efficientnet_lite0_uint8_nhwc()
images = [cv2.resize(zoo.sample_image(n), (224, 224))[None] for n in ("coffee", "chelsea")]
compiled = ov.Core().compile_model(ov_model, "CPU")


def infer(model, image):
    return [int(np.argmax(compiled(image)[0]))]


explainer = xai.Explainer(model=ov_model, task=xai.Task.CLASSIFICATION)

# Existing inference pipeline
for i, image in enumerate(images):
    labels = infer(model=ov_model, image=image)

    # Model analysis
    explanation = explainer(data=image, targets=labels)
    explanation.save(dir_path="./xai", prefix=f"{i}_")  # README: name=str(i)
