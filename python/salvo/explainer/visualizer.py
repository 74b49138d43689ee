"""Turn raw saliency maps into pictures: resize, scaling, colour map, overlay.

An Explainer call post-processes its maps with :func:`process_saliency_maps`, in the order and
with the rounding of the reference toolkit's Visualizer, so that its pictures are the
reference's (within one grey level). Per map:

1. **resize** — bilinear (``cv2.INTER_LINEAR``) to the image size ``(H, W)`` or
   ``output_size``, in the map's own kind of numbers (uint8 maps, as white-box methods and
   scaled black-box maps are, with OpenCV's 8-bit arithmetic; other maps in float32).
2. **scaling** — min-max of the (resized) map to 0..255, truncated to uint8 as the reference's
   ``scaling`` does: ``uint8(255 * (x - min) / (max - min + 1e-12))`` in float32. It runs
   whenever ``resize``, ``colormap`` or ``overlay`` is on (they work on uint8 maps) or when
   ``scaling=True``; with everything off the raw maps are returned untouched. A map that
   already spans 0..255 in uint8 is unchanged by it; a constant map becomes all zeros.
3. **colormap** — JET, returned in RGB order: ``(H, W, 3)`` uint8.
4. **overlay** — implies resize and colormap;
   ``rint(overlay_weight * map + (1 - overlay_weight) * image)`` as uint8, where
   ``overlay_weight`` is the weight of the saliency map (the reference's code weighs the image
   with it, :func:`overlay`). The image is brought to the output size as uint8
   (``cv2.INTER_LINEAR``) and the blend is a lookup in a ``(256, 3, 256)`` table
   (:func:`overlay_table`), so no float copy of a large image is ever made; the result is the
   float64 formula's exactly when the image needs no resize, within ±1 otherwise.

A few maps go through OpenCV one by one. From :data:`BATCHED_MIN_MAPS` maps on, all maps go
through one Numba pass (:func:`salvo.kernels.vis.process_maps_batched`) that writes into one
preallocated ``(T, H, W, 3)`` uint8 array and matches the OpenCV path within ±1 per channel
(bit-exact for uint8 maps on the shapes tested); the returned maps are views into that array.

The reference toolkit's own functions are here too, with its arguments and results:
:func:`resize`, :func:`colormap`, :func:`overlay` and :class:`Visualizer`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from salvo.common.parameters import Task
from salvo.common.utils import format_to_bhwc, infer_size_from_image, scaling
from salvo.explainer.explanation import (
    COLOR_MAPPED_LAYOUTS,
    GRAY_LAYOUTS,
    MULTIPLE_MAP_LAYOUTS,
    ONE_MAP_LAYOUTS,
    Explanation,
    Layout,
)
from salvo.explainer.maps import (
    PER_IMAGE_MAP_KEY,
    _check_real,
    normalise_target_key,
    scale_to_uint8,
)
from salvo.kernels.colour import jet_lut_rgb, overlay_table
from salvo.methods.base import Prediction

logger = logging.getLogger(__name__)

__all__ = [
    "BATCHED_MIN_MAPS",
    "PER_IMAGE_MAP_KEY",
    "apply_colormap",
    "image_size",
    "jet_lut_rgb",
    "normalise_target_key",
    "overlay_image",
    "overlay_table",
    "process_saliency_maps",
    "scale_to_uint8",
]

#: From this many maps on, the batched Numba kernel is used instead of a per-map OpenCV loop.
#: Measured after JIT warm-up on 7×7 → 224×224 colour maps (2 cores): the kernel is faster
#: from one map on (0.44 ms vs 2.0 ms for 8 maps, 25 ms vs 52 ms for 100), but its first call
#: in a process compiles for about a second, which only pays off for larger batches.
BATCHED_MIN_MAPS = 8


# ----------------------------------------------------------------------------------- helpers


def apply_colormap(gray: np.ndarray) -> np.ndarray:
    """JET colour map of a grey uint8 map, in RGB order.

    Parameters
    ----------
    gray
        ``(H, W)`` uint8.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB (0 is dark blue, 255 dark red).
    """
    gray = np.asarray(gray)
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"colour mapping needs a (H, W) uint8 map, got {gray.shape} {gray.dtype}")
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def _as_hwc(image: Any, name: str) -> np.ndarray:
    """View an image given as (H, W), (H, W, C), (C, H, W) or a batch of one as (H, W, C)."""
    arr = np.asarray(image)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(
                f"{name} must be one image or a batch of one, got a batch of shape {arr.shape}"
            )
        arr = arr[0]
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be an image (H, W, 3), (3, H, W) or a batch of one, got shape "
            f"{arr.shape}"
        )
    if arr.shape[-1] in (1, 3):
        return arr
    if arr.shape[0] in (1, 3):
        return arr.transpose(1, 2, 0)
    raise ValueError(
        f"{name} must have 1 or 3 channels first or last (HWC / CHW, NHWC / NCHW), got shape "
        f"{arr.shape}"
    )


def image_size(image: Any, name: str = "image") -> tuple[int, int]:
    """``(H, W)`` of an image or a batch of one, in any of the usual layouts.

    Parameters
    ----------
    image
        ``(H, W)``, ``(H, W, C)``, ``(C, H, W)``, ``(1, H, W, C)`` or ``(1, C, H, W)`` with
        ``C`` in {1, 3}; any dtype (normalised tensors are fine here).
    name
        Argument name used in error messages.

    Returns
    -------
    tuple of int
        ``(H, W)``.
    """
    hwc = _as_hwc(image, name)
    return int(hwc.shape[0]), int(hwc.shape[1])


def overlay_image(
    image: Any,
    output_size: tuple[int, int] | None = None,
    *,
    name: str = "original_input_image",
) -> np.ndarray:
    """Check and convert the image a saliency map is blended over.

    Parameters
    ----------
    image
        The unprocessed picture, RGB: ``(H, W, 3)``, ``(H, W)`` grey, ``(3, H, W)`` or a batch
        of one in NHWC / NCHW; uint8 (or integers / floats with values in 0..255).
    output_size
        ``(H, W)`` to resize the image to (bilinear) if it differs; ``None`` keeps its size.
    name
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB (float pictures rounded to the nearest level; grey repeated
        into 3 channels; resized with ``cv2.INTER_LINEAR`` on uint8). The input itself when it
        already is a C-contiguous ``(H, W, 3)`` uint8 array of that size.

    Raises
    ------
    ValueError
        Wrong layout, or values that are not a 0..255 picture (a normalised float tensor:
        negative values or a maximum of at most 1.0), with a hint to pass
        ``original_input_image``.
    TypeError
        Non-numeric dtype.
    """
    hwc = _as_hwc(image, name)
    _check_real(hwc, name)
    if hwc.size == 0:
        raise ValueError(f"{name} is empty (shape {np.shape(image)})")
    lo = float(hwc.min())
    hi = float(hwc.max())
    hint = (
        "an overlay needs the unprocessed image with values in 0..255; pass it as "
        "original_input_image=..."
    )
    if np.issubdtype(hwc.dtype, np.floating):
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinity; {hint}")
        if lo < 0.0 or hi <= 1.0:
            raise ValueError(
                f"{name} looks like a normalised tensor (values in [{lo:.3g}, {hi:.3g}]), not "
                f"a picture; {hint}"
            )
    if lo < 0 or hi > 255:
        raise ValueError(f"{name} has values in [{lo:.6g}, {hi:.6g}], outside 0..255; {hint}")
    if hwc.dtype != np.uint8:
        levels = np.empty(hwc.shape, np.uint8)  # rounded in buffered chunks: no float copy
        if np.issubdtype(hwc.dtype, np.floating):
            np.rint(hwc, out=levels, casting="unsafe")
        else:
            np.copyto(levels, hwc, casting="unsafe")
        hwc = levels
    if output_size is not None:
        out_h, out_w = output_size
        if hwc.shape[:2] != (out_h, out_w):
            if hwc.shape[2] == 1:
                hwc = hwc[:, :, 0]
            hwc = cv2.resize(np.ascontiguousarray(hwc), (out_w, out_h),
                             interpolation=cv2.INTER_LINEAR)
            if hwc.ndim == 2:
                hwc = hwc[:, :, None]
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return np.ascontiguousarray(hwc)


#: Pixels blended per step of the per-map overlay (bounds its temporary index arrays).
_BLEND_CHUNK = 1 << 18


def _blend(gray: np.ndarray, picture: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[gray, c, picture[..., c]]`` for each channel: the overlay of one grey map.

    ``gray`` is ``(H, W)`` uint8, ``picture`` ``(H, W, 3)`` uint8, ``table`` from
    :func:`overlay_table`. Works in row blocks so that its index arrays stay
    small whatever the image size.
    """
    out_h, out_w = gray.shape
    out = np.empty((out_h, out_w, 3), np.uint8)
    flat = table.reshape(-1)  # index g * 768 + c * 256 + v
    rows = max(1, _BLEND_CHUNK // max(out_w, 1))
    for y0 in range(0, out_h, rows):
        base = gray[y0 : y0 + rows].astype(np.intp) * 768
        for c in range(3):
            index = base + c * 256
            index += picture[y0 : y0 + rows, :, c]
            np.take(flat, index, out=out[y0 : y0 + rows, :, c])
    return out


def _scale_levels(levels: np.ndarray) -> np.ndarray:
    """:func:`~salvo.common.utils.scaling` of a uint8 map, through a table of its 256 levels
    (the same float32 formula, so the same result, without a float copy of the map)."""
    levels = np.ascontiguousarray(levels)
    low, high, _, _ = cv2.minMaxLoc(levels)
    lo, hi = np.float32(low), np.float32(high)
    values = np.arange(256, dtype=np.float32)
    table = np.float32(255.0) * (values - lo) / ((hi - lo) + np.float32(1e-12))
    return cv2.LUT(levels, np.clip(table, 0.0, 255.0).astype(np.uint8))


def _scale_float(values: np.ndarray) -> np.ndarray:
    """:func:`~salvo.common.utils.scaling` of a float32 map, computed in place (``values`` is
    overwritten): the same float32 operations in the same order, without temporaries the size of
    the map."""
    lo = values.min()
    den = (values.max() - lo) + np.float32(1e-12)
    np.subtract(values, lo, out=values)
    np.multiply(np.float32(255.0), values, out=values)
    np.divide(values, den, out=values)
    np.clip(values, 0.0, 255.0, out=values)
    return values.astype(np.uint8)


def _stack_maps(
    maps: np.ndarray | Mapping[Hashable, np.ndarray] | Sequence[np.ndarray],
    targets: Sequence[Any] | None,
) -> tuple[np.ndarray, list[int | str]]:
    if isinstance(maps, Mapping):
        keys = list(maps.keys()) if targets is None else list(targets)
        missing = [k for k in keys if k not in maps]
        if missing:
            raise ValueError(f"targets {missing} have no map in maps (keys {list(maps)[:10]})")
        arrays = [np.asarray(maps[k]) for k in keys]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"all maps must have the same shape, got {sorted(shapes)}")
        stack = np.stack(arrays) if arrays else np.empty((0, 1, 1), dtype=np.float32)
    else:
        stack = np.asarray(maps) if not isinstance(maps, (list, tuple)) else np.stack(maps)
        if stack.ndim == 2:
            stack = stack[None]
        elif stack.ndim == 4 and stack.shape[0] == 1:
            stack = stack[0]
        if targets is None:
            raise ValueError("targets are required when maps is an array")
        keys = list(targets)
        if len(keys) != stack.shape[0]:
            raise ValueError(
                f"targets has {len(keys)} entries but maps holds {stack.shape[0]} maps "
                f"(shape {stack.shape})"
            )
    if stack.ndim != 3:
        raise ValueError(
            f"maps must be (T, h, w) (or (h, w), (1, T, h, w), a dict of (h, w)), got shape "
            f"{stack.shape}"
        )
    _check_real(stack, "maps")
    if stack.shape[0] and (stack.shape[1] < 1 or stack.shape[2] < 1):
        raise ValueError(f"maps must be non-empty, got shape {stack.shape}")
    norm = [normalise_target_key(k) for k in keys]
    if len(set(norm)) != len(norm):
        raise ValueError(f"targets contain duplicates: {norm}")
    return stack, norm


def _check_size(output_size: Any) -> tuple[int, int]:
    try:
        out_h, out_w = output_size
        if int(out_h) != out_h or int(out_w) != out_w:
            raise TypeError
        out_h, out_w = int(out_h), int(out_w)
    except (TypeError, ValueError):
        raise ValueError(
            f"output_size must be (H, W) of positive ints, got {output_size!r}"
        ) from None
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output_size must be (H, W) of positive ints, got {output_size!r}")
    return out_h, out_w


# ------------------------------------------------------------------------------- public entry


@dataclass(frozen=True)
class VisOptions:
    """How an Explainer call post-processes its maps for display (its visualisation keywords).

    Attributes
    ----------
    output_size
        ``(H, W)`` of the output maps, or ``None`` for the image's size.
    scaling
        Min-max each map to 0..255 uint8 even when no other step is on.
    resize
        Resize the maps to the image (or ``output_size``).
    colormap
        Colour-map the maps (RGB uint8).
    overlay
        Blend the colour maps onto the image.
    overlay_weight
        Weight of the map in the blend, in [0, 1].
    overlay_prediction
        Accepted for the reference's signature (predictions are not drawn on overlays).

    Raises
    ------
    ValueError, TypeError
        A value of the wrong type or out of range, naming it.
    """

    output_size: tuple[int, int] | None = None
    scaling: bool = False
    resize: bool = True
    colormap: bool = True
    overlay: bool = False
    overlay_weight: float = 0.5
    overlay_prediction: bool = True

    def __post_init__(self) -> None:
        from salvo._checks import check_flag, check_number

        for name in ("scaling", "resize", "colormap", "overlay", "overlay_prediction"):
            object.__setattr__(self, name, check_flag(getattr(self, name), name))
        object.__setattr__(self, "overlay_weight", check_number(
            self.overlay_weight, "overlay_weight", minimum=0.0, maximum=1.0))
        if self.output_size is not None:
            object.__setattr__(self, "output_size", _check_size(self.output_size))

    @classmethod
    def keywords(cls) -> frozenset[str]:
        """The visualisation keywords of an Explainer call."""
        return frozenset(f.name for f in fields(cls))

    def process(self, maps: np.ndarray, targets: Sequence[int | str], data: Any,
                original_input_image: Any = None) -> dict[int | str, np.ndarray]:
        """:func:`process_saliency_maps` of ``maps`` with these options."""
        return process_saliency_maps(
            maps, targets=targets, data=data, original_input_image=original_input_image,
            output_size=self.output_size, scaling=self.scaling, resize=self.resize,
            colormap=self.colormap, overlay=self.overlay, overlay_weight=self.overlay_weight)


def process_saliency_maps(
    maps: np.ndarray | Mapping[Hashable, np.ndarray] | Sequence[np.ndarray],
    *,
    targets: Sequence[int | str] | None = None,
    data: Any = None,
    original_input_image: Any = None,
    output_size: tuple[int, int] | None = None,
    scaling: bool = False,
    resize: bool = True,
    colormap: bool = True,
    overlay: bool = False,
    overlay_weight: float = 0.5,
    batched: bool | None = None,
    num_threads: int | None = None,
) -> dict[int | str, np.ndarray]:
    """Post-process raw saliency maps for display.

    Per map, in this order (the reference's Visualizer): bilinear resize to the output size in
    the map's own dtype; min-max scaling to uint8 truncated as the reference does,
    ``uint8(255 * (x - min) / (max - min + 1e-12))`` in float32 (a constant map gives zeros;
    whenever any step is on, or with ``scaling``); JET colour map in RGB order; the overlay
    blend ``rint(overlay_weight * colour + (1 - overlay_weight) * image)``. The keyword names
    after ``targets`` are those of an ``Explainer`` call, so the Explainer can forward its
    visualisation arguments unchanged.

    Parameters
    ----------
    maps
        Raw maps: ``(T, h, w)`` (also ``(h, w)`` for one map, or ``(1, T, h, w)``), a sequence
        of ``(h, w)`` arrays, or a dict ``{key: (h, w)}``; uint8 or float (any real dtype).
    targets
        One key per map (ints, or ``"per_image_map"`` for ActivationMap's class-agnostic
        map); required for arrays, defaults to the dict's keys. NumPy ints become Python ints.
    data
        The input the maps were computed from. Gives the output size when ``resize`` is on
        and ``original_input_image`` is not given, and is what an overlay is drawn on then
        (it must be a picture in that case).
    original_input_image
        The unprocessed picture (RGB, 0..255; ``(H, W, 3)``, a batch of one, NHWC or NCHW).
        Takes precedence over ``data`` for the size and the overlay.
    output_size
        ``(H, W)`` of the output maps; overrides the image size. The overlay image is
        resized to it if needed.
    scaling
        Min-max to 0..255 uint8 even when no other step is on.
    resize
        Bilinear resize to ``output_size`` or the image size.
    colormap
        JET colour map, RGB order.
    overlay
        Blend the coloured map over the image (turns on ``resize`` and ``colormap``).
    overlay_weight
        Weight of the saliency map in the blend, in [0, 1].
    batched
        ``True``/``False`` forces the Numba kernel / the per-map OpenCV loop; ``None``
        chooses the kernel from :data:`BATCHED_MIN_MAPS` maps on.
    num_threads
        Threads for the batched kernel (``None``: Numba's setting).

    Returns
    -------
    dict
        ``{key: map}`` in ``targets`` order. A map is ``(H, W, 3)`` uint8 RGB with colormap,
        ``(H, W)`` uint8 without, or the raw input map (untouched) when no step is on. Maps
        from the batched kernel are views into one ``(T, H, W, 3)`` array.

    Raises
    ------
    ValueError
        Inconsistent shapes or targets, a map with NaN / infinity, no size to resize to,
        ``overlay`` without an image, or an overlay image that is not a 0..255 picture.
    TypeError
        Non-numeric maps or images, bad keys.
    """
    stack, keys = _stack_maps(maps, targets)
    num_maps, h, w = stack.shape
    if not isinstance(overlay_weight, (int, float, np.integer, np.floating)) or not (
        0.0 <= float(overlay_weight) <= 1.0
    ):
        raise ValueError(f"overlay_weight must be a number in [0, 1], got {overlay_weight!r}")
    overlay_weight = float(overlay_weight)
    if overlay:
        resize = True
        colormap = True
    if not (scaling or resize or colormap or overlay):
        return {k: stack[i] for i, k in enumerate(keys)}

    image_name = "original_input_image" if original_input_image is not None else "data"
    image = original_input_image if original_input_image is not None else data

    if resize:
        if output_size is not None:
            out_hw = _check_size(output_size)
        elif image is not None:
            out_hw = image_size(image, image_name)
        else:
            raise ValueError(
                "resize=True needs output_size or an image (data or original_input_image) "
                "to take the size from"
            )
    else:
        out_hw = (h, w)

    picture = None
    if overlay:
        if image is None:
            raise ValueError("overlay=True needs an image: pass original_input_image or data")
        if original_input_image is None:
            try:
                picture = overlay_image(image, out_hw, name="data")
            except ValueError as err:
                raise ValueError(
                    f"{err} (the overlay is drawn on `data` because original_input_image "
                    "was not given)"
                ) from None
        else:
            picture = overlay_image(image, out_hw, name="original_input_image")

    if num_maps == 0:
        return {}
    if batched is None:
        batched = num_maps >= BATCHED_MIN_MAPS
    if batched:
        from salvo.kernels.vis import NonFiniteMapError, process_maps_batched

        try:
            out = process_maps_batched(
                stack,
                out_hw,
                colormap=colormap,
                image=picture,
                overlay_weight=overlay_weight,
                num_threads=num_threads,
            )
        except NonFiniteMapError as err:
            bad = [keys[p] for p in err.positions[:10]]
            raise ValueError(f"saliency maps of targets {bad} contain NaN or infinity") from None
        return {k: out[i] for i, k in enumerate(keys)}

    result: dict[int | str, np.ndarray] = {}
    out_h, out_w = out_hw
    if picture is not None:
        table = overlay_table(overlay_weight)
    for i, key in enumerate(keys):
        raw = stack[i]
        if raw.dtype != np.uint8:
            raw = raw.astype(np.float32)
            if not np.all(np.isfinite(raw)):
                raise ValueError(f"saliency map of target {key!r} contains NaN or infinity")
        if resize and raw.shape != out_hw:
            raw = cv2.resize(raw, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        gray = _scale_levels(raw) if raw.dtype == np.uint8 else _scale_float(raw)
        del raw  # a float map at the output size is no longer needed: free it before the blend
        if not colormap:
            result[key] = gray
        elif picture is not None:
            result[key] = _blend(gray, picture, table)
        else:
            result[key] = apply_colormap(gray)
    return result


# ------------------------------------------------------------------ the reference toolkit's API
#
# ``resize``, ``colormap``, ``overlay`` and ``Visualizer`` take the reference toolkit's arguments
# and give its results (within one grey level, as its own tests require): the order of its steps
# and its truncating uint8 casts are kept, so that code written against it draws the same
# pictures. Where it misreads its input, salvo raises instead (listed per function).

#: The most maps one ``cv2.resize`` call takes as channels (OpenCV 5's limit; OpenCV 4's is 512).
_RESIZE_CHANNELS = 128


def resize(saliency_map: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Resize one map ``(h, w)`` or a stack ``(N, h, w)`` to ``output_size``.

    Parameters
    ----------
    saliency_map
        ``(h, w)`` or ``(N, h, w)``; uint8, int8, (u)int16, float32 and float64 keep their
        dtype (uint8 with OpenCV's rounding), other real dtypes are resized as float64.
    output_size
        ``(H, W)`` (height first, unlike OpenCV).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` or ``(N, H, W)``: bilinear (``cv2.INTER_LINEAR``), the maps of a stack
        resized together as the channels of one image, 128 at a time (the reference's 500 at a
        time fail with OpenCV 5 beyond 128 maps).

    Raises
    ------
    ValueError
        Not 2-D or 3-D, empty, or a bad ``output_size``.
    """
    arr = np.asarray(saliency_map)
    _check_real(arr, "saliency_map")
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(
            f"saliency_map must be a non-empty map (h, w) or stack (N, h, w), got shape "
            f"{arr.shape}"
        )
    out_h, out_w = _check_size(output_size)
    if arr.dtype not in (np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim == 2:
        return cv2.resize(np.ascontiguousarray(arr), (out_w, out_h))
    channels_last = arr.transpose(1, 2, 0)
    parts = []
    for start in range(0, arr.shape[0], _RESIZE_CHANNELS):
        part = cv2.resize(np.ascontiguousarray(channels_last[:, :, start:start + _RESIZE_CHANNELS]),
                          (out_w, out_h))
        parts.append(part.reshape(out_h, out_w, -1))
    return np.concatenate(parts, axis=2).transpose(2, 0, 1)


def colormap(saliency_map: np.ndarray, colormap_type: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Colour-map grey uint8 maps, in RGB order.

    Parameters
    ----------
    saliency_map
        ``(N, h, w)`` uint8 (or one map ``(h, w)``).
    colormap_type
        An OpenCV colour map (``cv2.COLORMAP_*``); JET by default.

    Returns
    -------
    numpy.ndarray
        ``(N, h, w, 3)`` uint8 RGB (``(h, w, 3)`` for one map; the reference turns one map's
        rows into maps, ``(h, 1, w, 3)``).

    Raises
    ------
    ValueError
        Not uint8 (scale the maps first) or not 2-D / 3-D.
    """
    arr = np.asarray(saliency_map)
    if arr.dtype != np.uint8:
        raise ValueError(
            f"colormap needs uint8 maps (scale them first, e.g. with salvo.common.scaling), got "
            f"dtype {arr.dtype}"
        )
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"saliency_map must be (h, w) or (N, h, w), got shape {arr.shape}")
    flat = np.ascontiguousarray(arr.reshape(-1, arr.shape[-1]))
    rgb = cv2.cvtColor(cv2.applyColorMap(flat, colormap_type), cv2.COLOR_BGR2RGB)
    return rgb.reshape(arr.shape + (3,))


def overlay(saliency_map: np.ndarray, input_image: np.ndarray, overlay_weight: float = 0.5,
            cast_to_uint8: bool = True) -> np.ndarray:
    """Blend colour maps over an image as the reference toolkit does:
    ``input_image * overlay_weight + saliency_map * (1 - overlay_weight)``.

    Note that ``overlay_weight`` weighs the *image* here (the reference's code; its docstrings
    call it the map's weight). An Explainer call's ``overlay_weight`` is the weight of the map.

    Parameters
    ----------
    saliency_map
        ``(N, H, W, 3)`` (or ``(H, W, 3)``) colour maps, 0..255.
    input_image
        The picture, broadcast against the maps: ``(H, W, 3)`` or ``(1, H, W, 3)``.
    overlay_weight
        The image's weight, in [0, 1].
    cast_to_uint8
        Return uint8 (values truncated toward zero, as the reference casts), else float64.

    Returns
    -------
    numpy.ndarray
        The blend, clipped to [0, 255].

    Raises
    ------
    ValueError
        Shapes that do not broadcast, or ``overlay_weight`` outside [0, 1] (the reference
        wraps the negative values that then arise around in its uint8 cast).
    """
    from salvo._checks import check_flag, check_number

    weight = check_number(overlay_weight, "overlay_weight", minimum=0.0, maximum=1.0)
    maps = np.asarray(saliency_map)
    image = np.asarray(input_image)
    _check_real(maps, "saliency_map")
    _check_real(image, "input_image")
    try:
        shape = np.broadcast_shapes(maps.shape, image.shape)
    except ValueError:
        raise ValueError(
            f"saliency_map {maps.shape} and input_image {image.shape} do not broadcast (give "
            "colour maps (N, H, W, 3) and an image (H, W, 3) of the same size)"
        ) from None
    del shape
    res = image * weight + maps * (1 - weight)
    np.clip(res, 0, 255, out=res)
    return res.astype(np.uint8) if check_flag(cast_to_uint8, "cast_to_uint8") else res


# the functions under other names, for the Visualizer whose arguments shadow them
_resize, _colormap, _overlay, _scaling = resize, colormap, overlay, scaling


def _fit_text(text: str, x_start: int, image_width: int) -> tuple[float, int]:
    """The reference's font fitting: scale 1.0 lowered by 0.1 until the text fits."""
    scale = 1.0
    while True:
        (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 1)
        if x_start + width <= image_width - 5 or abs(scale - 0.1) < 0.001:
            return scale, height
        scale -= 0.1


class Visualizer:
    """Post-processes an :class:`~salvo.explainer.explanation.Explanation`'s maps for display
    (the reference toolkit's ``Visualizer``): scaling, resize, colour map, overlay, with the
    reference's order of steps and its uint8 truncation.

    ``Visualizer()(explanation, ...)`` changes the explanation's maps and layout in place and
    returns it.
    """

    def __call__(
        self,
        explanation: Explanation,
        original_input_image: np.ndarray | None = None,
        output_size: tuple[int, int] | None = None,
        scaling: bool = False,
        resize: bool = True,
        colormap: bool = True,
        overlay: bool = False,
        overlay_weight: float = 0.5,
        overlay_prediction: bool = True,
    ) -> Explanation:
        """See :meth:`visualize`."""
        return self.visualize(explanation, original_input_image, output_size, scaling, resize,
                              colormap, overlay, overlay_weight, overlay_prediction)

    def visualize(
        self,
        explanation: Explanation,
        original_input_image: np.ndarray | None = None,
        output_size: tuple[int, int] | None = None,
        scaling: bool = False,
        resize: bool = True,
        colormap: bool = True,
        overlay: bool = False,
        overlay_weight: float = 0.5,
        overlay_prediction: bool = True,
    ) -> Explanation:
        """Post-process ``explanation``'s maps (in place) and return it.

        Steps, as in the reference: ``scaling`` alone (without resize and overlay) min-max
        scales the grey maps to uint8; ``resize`` resizes them to ``output_size`` or the image's
        size, then min-max scales them to uint8 (truncated); ``colormap`` colours them (JET,
        RGB; needs uint8 maps); ``overlay`` (resize and colour map implied) blends them over
        the image, ``overlay_weight`` being the image's weight, and with
        ``overlay_prediction`` writes the label (and score) on classification maps, or draws
        the predicted box of detection maps.

        Parameters
        ----------
        explanation
            Grey maps (a ``*_GRAY`` layout) of one shape.
        original_input_image
            The picture: ``(H, W, 3)``, ``(3, H, W)`` or a batch of one; needed for
            ``overlay``, and gives the size to resize to unless ``output_size`` does.
        output_size
            ``(H, W)`` of the output maps.
        scaling, resize, colormap, overlay, overlay_weight, overlay_prediction
            See above.

        Raises
        ------
        ValueError
            A step that needs grey maps on colour ones, ``colormap`` on maps that are not
            uint8, ``resize`` without an image or ``output_size``, ``overlay`` without an
            image, maps of different shapes.
        """
        from salvo._checks import check_flag

        do_scaling, do_resize, do_colormap, do_overlay, draw = (
            check_flag(v, n) for v, n in ((scaling, "scaling"), (resize, "resize"),
                                          (colormap, "colormap"), (overlay, "overlay"),
                                          (overlay_prediction, "overlay_prediction")))
        image = None if original_input_image is None else format_to_bhwc(original_input_image)
        keys = explanation.targets
        if not keys:
            return explanation
        values = [np.asarray(v) for v in explanation.saliency_map.values()]
        if len({v.shape for v in values}) > 1:
            raise ValueError(
                f"the explanation's maps must share one shape, got {sorted({v.shape for v in values})}"
            )
        maps = np.stack(values)
        layout = explanation.layout

        def need_gray(step: str) -> None:
            if layout not in GRAY_LAYOUTS:
                raise ValueError(
                    f"saliency maps to {step} must be grey (layout in "
                    f"{sorted(x.name for x in GRAY_LAYOUTS)}), got {layout.name}"
                )

        def resized(maps: np.ndarray) -> np.ndarray:
            need_gray("resize")
            if output_size is not None:
                size = _check_size(output_size)
            elif image is not None:
                size = infer_size_from_image(image)
            else:
                raise ValueError(
                    "resize needs original_input_image or output_size to take the size from"
                )
            # as the reference: min-max again after the resize, so that the maps fill 0..255
            return _scaling(_resize(maps, size))

        def coloured(maps: np.ndarray) -> np.ndarray:
            nonlocal layout
            need_gray("colour-map")
            if maps.dtype != np.uint8:
                raise ValueError(
                    f"colormap needs uint8 maps, got {maps.dtype}: pass scaling=True (or "
                    "resize=True)"
                )
            layout = (Layout.ONE_MAP_PER_IMAGE_COLOR if layout in ONE_MAP_LAYOUTS
                      else Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR)
            return _colormap(maps)

        if do_scaling and not do_resize and not do_overlay:
            need_gray("scale")
            maps = _scaling(maps)
        if do_overlay:
            if image is None:
                raise ValueError("overlay needs original_input_image (the picture to draw on)")
            maps = coloured(resized(maps))
            picture = image
            if output_size is not None:
                out_h, out_w = _check_size(output_size)
                picture = cv2.resize(np.ascontiguousarray(image[0]), (out_w, out_h))[None]
            maps = np.ascontiguousarray(_overlay(maps, picture, overlay_weight))
            if draw and explanation.task is Task.CLASSIFICATION:
                _draw_labels(maps, keys, explanation.label_names, explanation.predictions)
            elif draw and explanation.task is Task.DETECTION:
                _draw_boxes(maps, keys, explanation.label_names, explanation.predictions)
        else:
            if do_resize:
                maps = resized(maps)
            if do_colormap:
                maps = coloured(maps)
        explanation.saliency_map = {key: maps[i] for i, key in enumerate(keys)}
        explanation.layout = layout
        return explanation


def _draw_labels(maps: np.ndarray, keys: Sequence[Any], label_names: Sequence[str] | None,
                 predictions: Mapping[Any, Any] | None) -> None:
    """Write each map's label (and score) in red at its top left, as the reference does."""
    offset = 3
    for smap, key in zip(maps, keys):
        if label_names and isinstance(key, int) and 0 <= key < len(label_names):
            label = label_names[key]
        else:
            label = str(key)
        pred = (predictions or {}).get(key)
        if pred is not None and pred.score:
            label = f"{label}|{pred.score:.2f}"
        scale, height = _fit_text(label, offset, smap.shape[1])
        cv2.putText(smap, label, (offset, height + offset), cv2.FONT_HERSHEY_DUPLEX, scale,
                    (255, 0, 0), 1)


def _draw_boxes(maps: np.ndarray, keys: Sequence[Any], label_names: Sequence[str] | None,
                predictions: Mapping[Any, Any] | None) -> None:
    """Draw each map's predicted box and ``label|score`` in red, as the reference does."""
    if not predictions:
        return
    for smap, key in zip(maps, keys):
        pred = predictions.get(key)
        if pred is None or pred.bounding_box is None:
            continue
        x1, y1, x2, y2 = (int(v) for v in np.asarray(pred.bounding_box, dtype=np.int32))
        cv2.rectangle(smap, (x1, y1), (x2, y2), (255, 0, 0), 2)
        label: Any = pred.label
        if label_names and isinstance(pred.label, (int, np.integer)) and (
                0 <= int(pred.label) < len(label_names)):
            label = label_names[int(pred.label)]
        text = f"{label}|{float(pred.score or 0.0):.2f}"
        scale, _ = _fit_text(text, x1, smap.shape[1])
        cv2.putText(smap, text, (x1, y1 - 7), cv2.FONT_HERSHEY_DUPLEX, scale, (255, 0, 0), 1)


__all__ += [
    "COLOR_MAPPED_LAYOUTS",
    "GRAY_LAYOUTS",
    "MULTIPLE_MAP_LAYOUTS",
    "ONE_MAP_LAYOUTS",
    "Explanation",
    "Layout",
    "Prediction",
    "Task",
    "Visualizer",
    "colormap",
    "format_to_bhwc",
    "infer_size_from_image",
    "overlay",
    "resize",
    "scaling",
]
