"""Version and build facts (``salvo info``)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("salvo-xai")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"


def build_info() -> dict[str, Any]:
    """What this salvo is built with and can run on.

    Returns
    -------
    dict
        ``salvo``, ``openvino``, ``numpy``, ``numba`` versions; ``native`` (whether the C++
        kernels loaded), ``native_error`` (why not, if they did not), ``simd_build`` (the
        instruction set of the build's baseline flags), ``simd_runtime`` (the variant the
        multi-versioned kernels use on this CPU) and ``devices`` (``Core().available_devices``).
    """
    import numba
    import numpy
    import openvino

    info: dict[str, Any] = {
        "salvo": __version__,
        "openvino": openvino.get_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
    }
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
