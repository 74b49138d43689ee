"""DetClassProbabilityMap: class-probability maps from a single-stage detector's class heads.

For each named class-score head (one per scale): group the channels by anchor, take the maximum
over anchors, resize the (num_classes, h, w) map to ``saliency_map_size`` (bilinear), average over
scales and turn the scores into probabilities with a Softmax over classes. With a single class a
Softmax is constantly 1, so salvo applies a Sigmoid instead (a documented difference from the
reference, which would return a flat map).

Head layouts:

- ``"NCHW"``: (B, A * C, h, w), channels anchor-major (PyTorch/OpenVINO detectors);
- ``"NHWC"``: (B, h, w, A * C) (TensorFlow / TFLite detectors);
- flattened: (B, h * w * A, C) (TFLite-style per-scale outputs before the concat); ``h, w`` come
  from the 4-D tensor the head was reshaped from, or a square grid.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo.common import Method, Task
from salvo.methods.base import IDENTITY, MethodParams
from salvo.methods.white_box.base import Branch, WhiteBoxMethod, check_target_layer
from salvo.methods.white_box.graph import GraphIndex, XAIInsertionError, const, find_node
# The reference toolkit's names in this module (re-exported, as it does).
from salvo.common.utils import IdentityPreprocessFN  # noqa: F401

logger = logging.getLogger(__name__)

__all__ = [
    "DetClassProbabilityMap",
    "DetClassProbabilityMapParams",
    "det_class_probability_map_branch",
    "head_geometry",
]


def _dims(out: ov.Output) -> list[int]:
    ps = out.get_partial_shape()
    if ps.rank.is_dynamic or any(d.is_dynamic for d in list(ps)[1:]):
        raise XAIInsertionError(
            f"Class head {out.get_node().get_friendly_name()!r} needs static non-batch dimensions, got {ps}."
        )
    return [d.get_length() if d.is_static else -1 for d in ps]


def _guess_layout(dims: list[int], node: ov.Node) -> str:
    _, d1, d2, d3 = dims
    if node.get_type_name() == "Transpose":
        order = node.input(1).get_source_output().get_node()
        if order.get_type_name() == "Constant" and list(order.get_data()) == [0, 2, 3, 1]:
            return "NHWC"
    if d2 == d3 and d1 != d2:
        return "NCHW"
    if d1 == d2 and d3 != d1:
        return "NHWC"
    raise XAIInsertionError(
        f"Cannot tell the layout of class head {node.get_friendly_name()!r} with shape {dims}; pass layout='NCHW' or 'NHWC'."
    )


def _grid_of_flat(out: ov.Output, cells: int) -> tuple[int, int]:
    """(h, w) of a flattened head: from the 4-D tensor it was reshaped from, else square."""
    n = out.get_node()
    for _ in range(4):
        if n.get_type_name() not in ("Reshape", "Transpose", "Convert", "Squeeze", "Unsqueeze"):
            break
        src = n.input(0).get_source_output()
        ps = src.get_partial_shape()
        if (
            ps.rank.is_static
            and ps.rank.get_length() == 4
            and all(d.is_static for d in list(ps)[1:])
        ):
            d = [x.get_length() for x in list(ps)[1:]]
            if d[0] * d[1] == cells:
                return d[0], d[1]
            if d[1] * d[2] == cells:
                return d[1], d[2]
        n = src.get_node()
    s = math.isqrt(cells)
    if s * s != cells:
        raise XAIInsertionError(
            f"Cannot tell the grid of a flattened class head with {cells} cells."
        )
    return s, s


def head_geometry(
    out: ov.Output, num_anchors: int | None, layout: str | None
) -> tuple[str, int, int, int, int]:
    """Layout and sizes of one class head.

    Returns
    -------
    (str, int, int, int, int)
        ``(layout, anchors, classes, h, w)`` with layout ``"NCHW"``, ``"NHWC"`` or ``"FLAT"``.
    """
    dims = _dims(out)
    node = out.get_node()
    if len(dims) == 3:
        _, n, c = dims
        if num_anchors is None:
            raise XAIInsertionError(
                f"Flattened class head {node.get_friendly_name()!r} {dims} needs num_anchors (one per scale)."
            )
        if n % num_anchors:
            raise XAIInsertionError(
                f"Class head {node.get_friendly_name()!r} has {n} rows, not a multiple of {num_anchors} anchors."
            )
        h, w = _grid_of_flat(out, n // num_anchors)
        return "FLAT", num_anchors, c, h, w
    if len(dims) != 4:
        raise XAIInsertionError(
            f"Class head {node.get_friendly_name()!r} must be rank 3 or 4, got shape {dims}."
        )
    lay = layout or _guess_layout(dims, node)
    if lay == "NCHW":
        _, ch, h, w = dims
    else:
        _, h, w, ch = dims
    a = num_anchors or 1
    if ch % a:
        raise XAIInsertionError(
            f"Class head {node.get_friendly_name()!r} has {ch} channels, not a multiple of {a} anchors."
        )
    return lay, a, ch // a, h, w


def det_class_probability_map_branch(
    heads: list[ov.Output],
    num_anchors: list[int] | None = None,
    saliency_map_size: tuple[int, int] = (23, 23),
    layout: str | None = None,
) -> ov.Output:
    """Build the DetClassProbabilityMap branch.

    Parameters
    ----------
    heads : list of openvino.Output
        Per-scale class-score tensors (logits).
    num_anchors : list of int, optional
        Anchors per scale (default 1 each for 4-D heads; required for flattened heads).
    saliency_map_size : (int, int)
        Output (height, width).
    layout : {"NCHW", "NHWC", None}
        Layout of the 4-D heads; ``None`` recognises it from the shape (or a (0, 2, 3, 1)
        Transpose producing the head).

    Returns
    -------
    openvino.Output
        (B, num_classes, H, W) float32 class probabilities.
    """
    if not heads:
        raise XAIInsertionError("DetClassProbabilityMap needs at least one class head.")
    if layout is not None and layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW', 'NHWC' or None, got {layout!r}")
    if num_anchors is not None and len(num_anchors) != len(heads):
        raise ValueError(
            f"num_anchors has {len(num_anchors)} entries but there are {len(heads)} class heads"
        )
    sh, sw = (int(v) for v in saliency_map_size)
    maps = []
    classes = None
    for s, out in enumerate(heads):
        lay, a, c, h, w = head_geometry(
            out, None if num_anchors is None else int(num_anchors[s]), layout
        )
        if classes is None:
            classes = c
        elif c != classes:
            raise XAIInsertionError(
                f"Class heads disagree on the number of classes ({classes} vs {c}); pass num_anchors per scale."
            )
        x = (
            out
            if out.get_element_type() == ov.Type.f32
            else ops.convert(out, ov.Type.f32).output(0)
        )
        if lay == "NCHW":
            x = ops.reshape(x, const([-1, a, c, h, w], np.int64), False)
            x = ops.reduce_max(x, const([1], np.int64), keep_dims=False)
        else:
            x = ops.reshape(x, const([-1, h, w, a, c], np.int64), False)
            x = ops.reduce_max(x, const([3], np.int64), keep_dims=False)
            x = ops.transpose(x, const([0, 3, 1, 2], np.int64))
        x = ops.interpolate(
            x,
            const([sh, sw], np.int64),
            "linear",
            "sizes",
            axes=const([2, 3], np.int64),
            coordinate_transformation_mode="half_pixel",
        )
        maps.append(ops.unsqueeze(x, const([0], np.int64)))
    stacked = ops.concat(maps, 0) if len(maps) > 1 else maps[0]
    mean = ops.reduce_mean(stacked, const([0], np.int64), keep_dims=False)
    if classes == 1:
        return ops.sigmoid(mean).output(0)
    return ops.softmax(mean, 1).output(0)


@dataclass(frozen=True)
class DetClassProbabilityMapParams(MethodParams):
    """How DetClassProbabilityMap builds its branch.

    Attributes
    ----------
    num_anchors
        Anchors per scale (default 1 each for 4-D heads; required for flattened heads).
    saliency_map_size
        Output (height, width) of the maps.
    layout
        ``"NCHW"``, ``"NHWC"``, or ``None`` to recognise the heads' layout.
    """

    num_anchors: Sequence[int] | None = None
    saliency_map_size: tuple[int, int] = (23, 23)
    layout: str | None = None


class DetClassProbabilityMap(WhiteBoxMethod):
    """DetClassProbabilityMap for single-stage detectors: per-class probability maps from the
    class-score heads, ``(1, num_classes, *saliency_map_size)`` (the reference toolkit's
    ``DetClassProbabilityMap``; parameters:
    :class:`~salvo.methods.white_box.base.WhiteBoxMethod` and
    :class:`DetClassProbabilityMapParams`).

    Parameters
    ----------
    target_layer
        The friendly names of the class-score heads, one per scale (a list, or one
        comma-separated str). Required.
    """

    method = Method.DETCLASSPROBABILITYMAP
    tasks = (Task.DETECTION,)
    build_params_class = DetClassProbabilityMapParams

    def __init__(
        self,
        model: ov.Model | str | os.PathLike[str],
        preprocess_fn: Callable[[Any], np.ndarray] = IDENTITY,
        target_layer: Sequence[str] | str | None = None,
        embed_scaling: bool | None = True,
        device_name: str = "CPU",
        num_anchors: Sequence[int] | None = None,
        saliency_map_size: tuple[int, int] | list[int] = (23, 23),
        prepare_model: bool = True,
        *,
        layout: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, preprocess_fn, embed_scaling, device_name, **kwargs)
        self.target_layer = check_target_layer(target_layer)
        self.per_class = True
        self.build_params = DetClassProbabilityMapParams(
            None if num_anchors is None else list(num_anchors), tuple(saliency_map_size), layout)
        self._prepare_now(prepare_model)

    def build_branch(self, model: ov.Model, index: GraphIndex) -> Branch:
        target_layer = self.target_layer
        if target_layer is None:
            raise XAIInsertionError(
                "DetClassProbabilityMap needs target_layer: the names of the detector's "
                "class-score head nodes, one per scale (e.g. target_layer=['head0/cls', "
                "'head1/cls'])."
            )
        names = ([n.strip() for n in target_layer.split(",")]
                 if isinstance(target_layer, str) else list(target_layer))
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(
                f"target_layer must be a str or a list of str for detection, got "
                f"{target_layer!r}"
            )
        heads = []
        for name in names:
            _, node, port = find_node(model, name, index)
            heads.append(node.output(port))
        logger.info("Using DetClassProbabilityMap method (for single-stage detectors).")
        p = self.build_params
        saliency = det_class_probability_map_branch(
            heads, num_anchors=p.num_anchors, saliency_map_size=p.saliency_map_size,
            layout=p.layout)
        return Branch(saliency, [2, 3], ",".join(h.get_node().get_friendly_name()
                                                 for h in heads))
