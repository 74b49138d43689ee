# Source: openvino_xai user guide (1.1), "Create Explainer for OpenVINO Model instance".
# Changes: openvino_xai -> salvo; "model.xml" -> zoo EfficientNet-Lite0 IR file.
import openvino as ov
import salvo as xai

from _offline import model_xml

model = ov.Core().read_model(model_xml())

explainer = xai.Explainer(
    model=model,
    task=xai.Task.CLASSIFICATION
)
