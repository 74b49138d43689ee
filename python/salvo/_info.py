"""Version and build facts (``salvo info``)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("salvo-xai")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"


#: The PyPI packages that install OpenCV's ``cv2`` folder (salvo depends on the first).
OPENCV_DISTRIBUTIONS = (
    "opencv-python-headless",
    "opencv-python",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


def opencv_distributions() -> list[str]:
    """The installed packages of :data:`OPENCV_DISTRIBUTIONS`, as ``"name version"``.

    More than one means they overwrote each other's ``cv2`` files (whichever was installed last
    wins, and uninstalling one breaks the other).
    """
    found = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return found


def build_info() -> dict[str, Any]:
    """What this salvo is built with and can run on.

    Returns
    -------
    dict
        ``salvo``, ``openvino``, ``numpy``, ``numba`` versions; ``opencv`` (the installed
        OpenCV packages, :func:`opencv_distributions`, comma-separated) and, when there are
        several, ``opencv_conflict`` (what to do about it); ``native`` (whether the C++
        kernels loaded), ``native_error`` (why not, if they did not), ``simd_build`` (the
        instruction set of the build's baseline flags), ``simd_runtime`` (the variant the
        multi-versioned kernels use on this CPU) and ``devices`` (``Core().available_devices``).
    """
    import numba
    import numpy
    import openvino

    opencv = opencv_distributions()
    info: dict[str, Any] = {
        "salvo": __version__,
        "openvino": openvino.get_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "opencv": ", ".join(opencv) or None,
    }
    if len(opencv) > 1:
        names = " ".join(entry.split()[0] for entry in opencv)
        info["opencv_conflict"] = (
            "these packages share the cv2 folder and overwrite each other; keep one: "
            f"pip uninstall -y {names} && pip install opencv-python-headless"
        )
    try:
        from salvo import _native

        info.update(
            native=True,
            native_error=None,
            simd_build=_native.build_simd_level(),
            simd_runtime=_native.runtime_simd_level(),
            target_clones=bool(_native.HAS_TARGET_CLONES),
        )
    except ImportError as exc:  # pragma: no cover - depends on the install
        info.update(native=False, native_error=str(exc), simd_build=None, simd_runtime=None)
    try:
        info["devices"] = list(openvino.Core().available_devices)
    except Exception as exc:  # pragma: no cover - depends on drivers
        info["devices"] = []
        info["devices_error"] = str(exc)
    return info
