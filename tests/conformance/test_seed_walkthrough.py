"""Replays the seed walkthrough (shared/seeds/000_…, toolkit 1.1) with ``import salvo as xai``.

The walkthrough downloads a MobileNetV3 IR (uint8 NHWC input, normalisation inside the graph)
and a photo; here the zoo's EfficientNet-Lite0 plays that model (wrapped the same way with
``openvino.preprocess``) — and, a second time, as a plain float NCHW model — on the coffee and
cat photos. Every cell must succeed and give the walkthrough's shapes, dtypes, key types, file
names (with this model's class ids and label names) and INFO messages. ``openvino.runtime``
(removed in OpenVINO 2026) is replayed as ``import openvino as ov``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import openvino as ov
import pytest
from openvino.utils.data_helpers.wrappers import OVDict

import salvo as xai
from salvo import zoo
from salvo.explainer import ExplainMode
from salvo.explainer.explanation import Explanation
from support import require

require("matplotlib", 'pip install matplotlib (or pip install ".[test]")', "The walkthrough")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

IDENTITY_MSG = (
    "Assigning preprocess_fn to identity function assumes that input images were already "
    "preprocessed by user before passing it to the model. Please define preprocessing function "
    "OR preprocess images beforehand."
)
AUTO_LAYER_MSG = "Target insertion layer is not provided - trying to find it in auto mode."
RECIPROCAM_MSG = "Using ReciproCAM method (for CNNs)."
ACTIVATIONMAP_MSG = "Using ActivationMap method (for CNNs)."
WHITEBOX_MSG = "Explaining the model in white-box mode."
BLACKBOX_MSG = "Explaining the model in black-box mode."
INSERTED_MSG = "Insertion of the XAI branch into the model was successful."
TARGET_LAYER = "head_conv"  # this model's last backbone convolution, [1, 1280, 7, 7]


def seed_label_names() -> list[str]:
    """The walkthrough's label list: first name of each class, spaces as underscores."""
    return [name.split(",")[0].strip().replace(" ", "_") for name in zoo.imagenet_labels()]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Both variants saved as IR and read back with ov.Core().read_model, as the seed does."""
    folder = tmp_path_factory.mktemp("artifacts")
    out = {}
    for name, model in (("uint8_nhwc", zoo.efficientnet_lite0_uint8_nhwc()),
                        ("float_nchw", zoo.efficientnet_lite0())):
        path = folder / f"{name}.xml"
        ov.save_model(model, str(path))
        out[name] = ov.Core().read_model(path)
    return out


def make_preprocess(variant: str):
    if variant == "uint8_nhwc":
        def preprocess_fn(x: np.ndarray) -> np.ndarray:
            x = cv2.resize(src=x, dsize=(224, 224))
            return np.expand_dims(x, 0)
    else:
        def preprocess_fn(x: np.ndarray) -> np.ndarray:
            x = cv2.resize(src=x, dsize=(224, 224)).astype(np.float32)
            return ((x - 127.0) / 128.0).transpose(2, 0, 1)[None]
    return preprocess_fn


def postprocess_fn(x: OVDict):
    return x[0]


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("salvo")]


def plot_and_close(explanation: Explanation, expected_axes: int) -> None:
    explanation.plot()
    fig = plt.gcf()
    assert len([ax for ax in fig.axes if ax.images]) == expected_axes
    plt.close("all")


@pytest.mark.slow  # every cell on a real model; coffee/uint8 runs the full 5000-mask RISE
@pytest.mark.parametrize("variant", ["uint8_nhwc", "float_nchw"])
@pytest.mark.parametrize("photo", ["coffee", "chelsea"])
def test_walkthrough(models, variant, photo, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="salvo")
    model = models[variant]
    base_artifacts_dir = tmp_path / "artifacts"
    labels = seed_label_names()

    # "Load the Image": the walkthrough reads a JPEG with cv2 and converts BGR -> RGB
    image_filename = tmp_path / f"{photo}.jpg"
    cv2.imwrite(str(image_filename), cv2.cvtColor(zoo.sample_image(photo), cv2.COLOR_RGB2BGR))
    image = cv2.cvtColor(cv2.imread(filename=str(image_filename)), code=cv2.COLOR_BGR2RGB)
    preprocess_fn = make_preprocess(variant)
    # "Preprocess image for MobileNet"
    preprocessed_image = preprocess_fn(image)
    if variant == "uint8_nhwc":
        assert preprocessed_image.shape == (1, 224, 224, 3)
        assert preprocessed_image.dtype == np.uint8
    # this model's top-1 class plays the walkthrough's retriever (206)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    logits = compiled(preprocessed_image)[0]
    retriever_class_index = int(np.argmax(logits))
    if photo == "coffee":
        assert retriever_class_index == 967  # espresso
    else:
        assert 281 <= retriever_class_index <= 285  # a cat
    # the overlay picture for cells that overlay on `data`: the float model's input is a
    # normalised tensor, which salvo refuses to draw on (and says so)
    overlay_kwargs = {} if variant == "uint8_nhwc" else {
        "original_input_image": cv2.resize(image, (224, 224))
    }

    # --- Basic usage: Explainer in AUTO mode
    caplog.clear()
    explainer = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION)
    assert messages(caplog)[:4] == [IDENTITY_MSG, AUTO_LAYER_MSG, RECIPROCAM_MSG, INSERTED_MSG] \
        or messages(caplog)[:3] == [IDENTITY_MSG, AUTO_LAYER_MSG, RECIPROCAM_MSG]
    assert messages(caplog)[-1] == WHITEBOX_MSG
    if variant == "float_nchw":
        with pytest.raises(ValueError, match="original_input_image"):
            explainer(preprocessed_image, targets=retriever_class_index, overlay=True)
    explanation = explainer(
        preprocessed_image, targets=retriever_class_index, overlay=True, **overlay_kwargs
    )
    assert isinstance(explanation, Explanation)
    assert explanation.targets == [retriever_class_index]
    assert type(explanation.targets[0]) is int
    assert explanation.shape == (224, 224, 3)
    assert explanation.saliency_map[retriever_class_index].dtype == np.uint8
    plot_and_close(explanation, 1)
    explanation.save(base_artifacts_dir, "explain_auto_")
    saved = base_artifacts_dir / f"explain_auto_{retriever_class_index}.jpg"
    image_sal_map = cv2.cvtColor(cv2.imread(str(saved)), cv2.COLOR_BGR2RGB)
    assert image_sal_map.shape == (224, 224, 3)

    # --- Generate saliency maps for all classes
    explanation = explainer(preprocessed_image, targets=-1)
    assert explanation.targets[:5] == [0, 1, 2, 3, 4]
    assert explanation.targets[-5:] == [995, 996, 997, 998, 999]
    assert explanation.shape == (224, 224, 3)
    assert explainer(preprocessed_image, targets=None).targets == explanation.targets

    # --- Pre- and post-process functions
    caplog.clear()
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=preprocess_fn,
        postprocess_fn=postprocess_fn,
    )
    assert IDENTITY_MSG not in messages(caplog)
    assert messages(caplog)[0] == AUTO_LAYER_MSG and messages(caplog)[-1] == WHITEBOX_MSG
    explanation = explainer(image, targets=retriever_class_index)
    assert explanation.shape == (*image.shape[:2], 3)  # resized to the user's image

    # --- Visualization parameters
    explainer = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION)
    explanation = explainer(
        preprocessed_image,
        targets=[retriever_class_index],
        overlay=True,
        original_input_image=image,
    )
    assert explanation.shape == image.shape
    plot_and_close(explanation, 1)
    explanation.save(base_artifacts_dir, "overlay_")
    assert (base_artifacts_dir / f"overlay_{retriever_class_index}.jpg").is_file()

    explanation = explainer(preprocessed_image, targets=[retriever_class_index], overlay=False)
    assert explanation.shape == (224, 224, 3)
    plot_and_close(explanation, 1)
    explanation.save(base_artifacts_dir, "colormap_")
    assert (base_artifacts_dir / f"colormap_{retriever_class_index}.jpg").is_file()

    explanation = explainer(
        preprocessed_image, targets=[retriever_class_index], resize=False, colormap=False
    )
    raw = explanation.saliency_map[retriever_class_index]
    assert raw.shape == (7, 7) and raw.dtype == np.uint8
    assert raw.min() == 0 and raw.max() == 255  # embed_scaling=True
    plot_and_close(explanation, 1)
    explanation.save(base_artifacts_dir, "grayscale_")
    assert (base_artifacts_dir / f"grayscale_{retriever_class_index}.jpg").is_file()

    # --- Explainer in WHITEBOX mode, ReciproCAM
    caplog.clear()
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=preprocess_fn,
        explain_mode=ExplainMode.WHITEBOX,
        explain_method=xai.Method.RECIPROCAM,
    )
    assert AUTO_LAYER_MSG in messages(caplog) and RECIPROCAM_MSG in messages(caplog)
    assert messages(caplog)[-1] == WHITEBOX_MSG

    # --- Insert XAI branch
    caplog.clear()
    model_xai: ov.Model
    model_xai = xai.insert_xai(
        model,
        task=xai.Task.CLASSIFICATION,
        explain_method=xai.Method.RECIPROCAM,
        target_layer=TARGET_LAYER,
        embed_scaling=True,
    )
    assert isinstance(model_xai, ov.Model)
    assert any("saliency_map" in out.get_names() for out in model_xai.outputs)
    assert messages(caplog) == [
        f"Target insertion layer {TARGET_LAYER} is provided.", RECIPROCAM_MSG, INSERTED_MSG
    ]

    # --- Insertion-related parameters
    caplog.clear()
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=preprocess_fn,
        explain_mode=ExplainMode.AUTO,
        explain_method=xai.Method.RECIPROCAM,
        target_layer=TARGET_LAYER,
        embed_scaling=True,
    )
    assert messages(caplog)[0] == f"Target insertion layer {TARGET_LAYER} is provided."
    assert messages(caplog)[-1] == WHITEBOX_MSG

    # --- Explainer in BLACKBOX mode: RISE (AISE is covered in test_seed_blackbox_aise)
    caplog.clear()
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=preprocess_fn,
        postprocess_fn=postprocess_fn,
        explain_mode=ExplainMode.BLACKBOX,
        explain_method=xai.Method.RISE,
    )
    assert messages(caplog) == [BLACKBOX_MSG]
    # the walkthrough's defaults (BALANCE: 5000 masks) on the seed's own model layout;
    # a smaller budget for the other combinations keeps the suite short
    budget = {} if (variant, photo) == ("uint8_nhwc", "coffee") else {"num_masks": 500}
    explanation = explainer(image, targets=retriever_class_index, overlay=True, **budget)
    assert explanation.targets == [retriever_class_index]
    assert explanation.shape == image.shape
    assert explanation.num_inferences == (5000 if not budget else 500) + 1  # + the unmasked
    prediction = explanation.predictions[retriever_class_index]
    assert prediction.label == retriever_class_index
    plot_and_close(explanation, 1)
    explanation.save(base_artifacts_dir, "blackbox_rise_")
    assert (base_artifacts_dir / f"blackbox_rise_{retriever_class_index}.jpg").is_file()

    # --- Import ImageNet label names and add them to saliency maps
    caplog.clear()
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=preprocess_fn,
        explain_mode=ExplainMode.WHITEBOX,
    )
    explanation = explainer(
        image,
        targets=[labels[retriever_class_index], "microwave"],
        label_names=labels,
    )
    assert explanation.targets == [retriever_class_index, labels.index("microwave")]
    explanation.save(base_artifacts_dir, "label_names_")
    found = sorted(p.name for p in base_artifacts_dir.glob("label_names_*"))
    assert found == sorted(
        [f"label_names_{labels[retriever_class_index]}.jpg", "label_names_microwave.jpg"]
    )

    # --- Activation map XAI method
    caplog.clear()
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=preprocess_fn,
        explain_mode=ExplainMode.WHITEBOX,
        explain_method=xai.Method.ACTIVATIONMAP,
    )
    assert ACTIVATIONMAP_MSG in messages(caplog) and messages(caplog)[-1] == WHITEBOX_MSG
    explanation = explainer(image, overlay=True)
    activation_map = explanation.saliency_map["per_image_map"]
    assert explanation.targets == ["per_image_map"]
    assert activation_map.shape == image.shape and activation_map.dtype == np.uint8
    plot_and_close(explanation, 1)
    explanation.save(base_artifacts_dir)
    assert (base_artifacts_dir / "activation_map.jpg").is_file()


@pytest.mark.slow
def test_seed_blackbox_aise(models, tmp_path, caplog):
    """The walkthrough's default black-box cell (AISE) on its own model layout."""
    caplog.set_level(logging.INFO, logger="salvo")
    model = models["uint8_nhwc"]
    image = zoo.sample_image("coffee")
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.CLASSIFICATION,
        preprocess_fn=make_preprocess("uint8_nhwc"),
        postprocess_fn=postprocess_fn,
        explain_mode=ExplainMode.BLACKBOX,
    )
    assert messages(caplog)[-1] == BLACKBOX_MSG
    explanation = explainer(image, targets=967, overlay=True)
    assert explanation.targets == [967] and explanation.shape == image.shape
    plot_and_close(explanation, 1)
    explanation.save(tmp_path, "blackbox_aise_")
    assert (tmp_path / "blackbox_aise_967.jpg").is_file()


def test_auto_falls_back_to_blackbox_when_whitebox_cannot_insert(caplog):
    """A model with no convolutional trunk and no pooling: AUTO ends on black-box."""
    import openvino.opset13 as ops

    caplog.set_level(logging.INFO, logger="salvo")
    x = ops.parameter([1, 3, 16, 16], np.float32, name="image")
    flat = ops.reshape(x, ops.constant(np.array([1, -1], np.int64)), False)
    w = np.random.default_rng(0).standard_normal((768, 4)).astype(np.float32)
    model = ov.Model([ops.matmul(flat, ops.constant(w), False, False)], [x])
    with pytest.raises(ValueError, match="postprocess_fn"):
        xai.Explainer(model, xai.Task.CLASSIFICATION)
    with pytest.raises(RuntimeError, match="(?i)insertion.*black-box"):
        xai.Explainer(model, xai.Task.CLASSIFICATION, explain_mode=ExplainMode.WHITEBOX)
    explainer = xai.Explainer(
        model, xai.Task.CLASSIFICATION, postprocess_fn=postprocess_fn,
        explain_method=xai.Method.RISE, explain_mode=ExplainMode.AUTO,
    )
    assert explainer.explain_mode == ExplainMode.BLACKBOX
    assert BLACKBOX_MSG in messages(caplog)
    data = np.random.default_rng(1).random((1, 3, 16, 16)).astype(np.float32)
    explanation = explainer(data, targets=[1], num_masks=64, num_cells=4, resize=False,
                            colormap=False)
    assert explanation.saliency_map[1].shape == (16, 16)
