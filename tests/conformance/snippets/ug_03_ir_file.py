# Source: openvino_xai user guide (1.1), "Create Explainer from OpenVINO IR file".
# Changes: openvino_xai -> salvo; "model.xml" -> zoo EfficientNet-Lite0 IR file.
import salvo as xai

from _offline import model_xml

explainer = xai.Explainer(
    model=model_xml(),
    task=xai.Task.CLASSIFICATION
)
