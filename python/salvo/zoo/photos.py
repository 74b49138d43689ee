"""Real photos shipped inside installed wheels (scikit-image, scikit-learn, matplotlib), read
without a download: :func:`sample_image`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from salvo.zoo.registry import MissingZooPackageError, package_dirs

__all__ = ["SAMPLE_IMAGES", "sample_image"]

#: Names accepted by :func:`sample_image`.
SAMPLE_IMAGES: tuple[str, ...] = (
    "coffee", "chelsea", "astronaut", "rocket", "motorcycle", "china", "flower", "grace_hopper",
)

_SKIMAGE = {"coffee": "coffee", "chelsea": "chelsea", "astronaut": "astronaut", "rocket": "rocket"}


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"could not read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _photo_file(module: str, pip_name: str, relative: str, name: str) -> Path:
    """A photo file inside an installed package, found without importing the package."""
    dirs = package_dirs(module)
    if dirs is None:
        raise MissingZooPackageError(module, f"pip install {pip_name}", f"sample_image({name!r})")
    paths = [d / relative for d in dirs]
    for path in paths:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{pip_name} is installed but has no {relative} (looked at {[str(p) for p in paths]})"
    )


def sample_image(name: str) -> np.ndarray:
    """A real photo shipped inside an installed wheel (no download).

    =============  ====================================================  ===============
    name           source                                                licence
    =============  ====================================================  ===============
    coffee         ``skimage.data.coffee()`` (espresso cup)               CC0
    chelsea        ``skimage.data.chelsea()`` (cat)                       CC0
    astronaut      ``skimage.data.astronaut()`` (Eileen Collins)          public domain
    rocket         ``skimage.data.rocket()``                              public domain
    motorcycle     left image of ``skimage.data.stereo_motorcycle()``    see skimage
    china          scikit-learn ``china.jpg``                            CC-BY-2.0
    flower         scikit-learn ``flower.jpg``                           CC-BY-2.0
    grace_hopper   matplotlib ``sample_data/grace_hopper.jpg``           public domain
    =============  ====================================================  ===============

    The scikit-learn photos are read from its package folder without importing scikit-learn.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLE_IMAGES`.

    Returns
    -------
    numpy.ndarray
        (H, W, 3) uint8 RGB, C-contiguous.

    Raises
    ------
    ValueError
        When ``name`` is not one of :data:`SAMPLE_IMAGES`.
    ModuleNotFoundError
        When the package holding the photo is not installed (the message names the command).
    """
    if not isinstance(name, str) or name not in SAMPLE_IMAGES:
        raise ValueError(f"name must be one of {list(SAMPLE_IMAGES)}, got {name!r}")
    if name in _SKIMAGE or name == "motorcycle":
        if package_dirs("skimage") is None:
            raise MissingZooPackageError(
                "skimage", "pip install scikit-image", f"sample_image({name!r})"
            )
        import skimage.data

        if name == "motorcycle":
            image = skimage.data.stereo_motorcycle()[0]
        else:
            image = getattr(skimage.data, _SKIMAGE[name])()
    elif name in ("china", "flower"):
        relative = f"datasets/images/{name}.jpg"
        image = _read_rgb(_photo_file("sklearn", "scikit-learn", relative, name))
    else:  # grace_hopper
        image = _read_rgb(
            _photo_file("matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", name)
        )
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RuntimeError(f"sample {name!r} is not (H, W, 3) uint8: {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)
