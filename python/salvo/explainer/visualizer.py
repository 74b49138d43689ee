"""Turn raw saliency maps into pictures: scaling, resize, colour map, overlay.

Per map, in this order (what :func:`process_saliency_maps` and an Explainer call do):

1. **scaling** — min-max to 0..255 uint8, ``rint(255 * (x - min) / (max - min + 1e-12))``.
   It runs whenever ``resize``, ``colormap`` or ``overlay`` is on (they work on uint8 maps)
   or when ``scaling=True``; with everything off the raw maps are returned untouched.
   Rounding to nearest (not truncation) keeps an already 0..255 uint8 map unchanged; a
   constant map becomes all zeros.
2. **resize** — bilinear (``cv2.INTER_LINEAR``) to the image size ``(H, W)`` or
   ``output_size``.
3. **colormap** — JET, returned in RGB order: ``(H, W, 3)`` uint8.
4. **overlay** — implies resize and colormap;
   ``rint(overlay_weight * map + (1 - overlay_weight) * image)`` as uint8, where
   ``overlay_weight`` is the weight of the saliency map. The image is brought to the output size
   as uint8 (``cv2.INTER_LINEAR``) and the blend is a lookup in a ``(256, 3, 256)`` table
   (:func:`overlay_table`), so no float copy of a large image is ever made;
   the result is the float64 formula's exactly when the image needs no resize, within ±1
   otherwise.

A few maps go through OpenCV one by one. From :data:`BATCHED_MIN_MAPS` maps on, all maps go
through one Numba pass (:func:`salvo.kernels.vis.process_maps_batched`) that writes into one
preallocated ``(T, H, W, 3)`` uint8 array and matches the OpenCV path within ±1 per channel
(bit-exact on the shapes tested); the returned maps are views into that array.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from salvo.common import PER_IMAGE_MAP
from salvo.kernels.colour import jet_lut_rgb, overlay_table

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

#: Key of ActivationMap's class-agnostic map (:data:`salvo.common.PER_IMAGE_MAP`).
PER_IMAGE_MAP_KEY = PER_IMAGE_MAP

#: From this many maps on, the batched Numba kernel is used instead of a per-map OpenCV loop.
#: Measured after JIT warm-up on 7×7 → 224×224 colour maps (2 cores): the kernel is faster
#: from one map on (0.44 ms vs 2.0 ms for 8 maps, 25 ms vs 52 ms for 100), but its first call
#: in a process compiles for about a second, which only pays off for larger batches.
BATCHED_MIN_MAPS = 8

_EPS = 1e-12


# ----------------------------------------------------------------------------------- helpers


def _check_real(array: np.ndarray, name: str) -> None:
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")


def scale_to_uint8(saliency_map: np.ndarray) -> np.ndarray:
    """Min-max scale one map to 0..255.

    Parameters
    ----------
    saliency_map
        Any shape, any real dtype (the whole array is one map). No NaN or infinity.

    Returns
    -------
    numpy.ndarray
        Same shape, uint8: ``rint(255 * (x - min) / (max - min + 1e-12))`` computed in
        float64. A constant map gives zeros.

    Raises
    ------
    ValueError
        Empty map, or NaN / infinity in it.
    """
    x = np.asarray(saliency_map)
    _check_real(x, "saliency_map")
    if x.size == 0:
        raise ValueError(f"saliency_map is empty (shape {x.shape})")
    x = x.astype(np.float64, copy=False)
    lo = x.min()
    hi = x.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("saliency_map contains NaN or infinity")
    factor = 255.0 / (hi - lo + _EPS)
    return np.rint((x - lo) * factor).astype(np.uint8)


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


def normalise_target_key(key: Any, name: str = "targets") -> int | str:
    """A saliency-map key as a plain Python int, or ``"per_image_map"``.

    Parameters
    ----------
    key
        An int (NumPy ints included) or ``"per_image_map"``.
    name
        Argument name used in the error message.

    Raises
    ------
    TypeError
        Anything else (bools and other strings included).
    """
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return int(key)
    if isinstance(key, str) and key == PER_IMAGE_MAP_KEY:
        return PER_IMAGE_MAP_KEY
    raise TypeError(f"{name} must be ints or {PER_IMAGE_MAP_KEY!r}, got {key!r}")


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

    Per map, in this order: min-max scaling to uint8, ``rint(255 * (x - min) / (max - min +
    1e-12))`` (a constant map gives zeros; whenever any step is on, or with ``scaling``);
    bilinear resize to the output size; JET colour map in RGB order; the overlay blend
    ``rint(overlay_weight * colour + (1 - overlay_weight) * image)``. The keyword names after ``targets`` are those of an ``Explainer`` call, so the Explainer
    can forward its visualisation arguments unchanged.

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
        try:
            gray = scale_to_uint8(stack[i])
        except ValueError as err:
            raise ValueError(f"saliency map of target {key!r}: {err}") from None
        if resize and gray.shape != out_hw:
            gray = cv2.resize(gray, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        if not colormap:
            result[key] = gray
        elif picture is not None:
            result[key] = _blend(gray, picture, table)
        else:
            result[key] = apply_colormap(gray)
    return result
