"""Small OpenVINO models whose right saliency map is known by construction.

Every model here is built in code with ``openvino.opset13`` and has *planted* ground truth: the
logit of class ``k`` depends on the input pixels of one rectangle ``regions[k]`` only, so a correct
saliency method must put the map of class ``k`` on that rectangle. The default rectangles are
asymmetric: none touches the main diagonal or the middle column of the feature grid, none is the
transpose or a flip of another, and each covers at most a quarter of the image, so a transposed or
horizontally flipped map misses.

Rectangles are ``(y0, y1, x0, x1)``, half-open, in input pixels (``regions``) or in feature-map
cells (``cell_regions``).

Functions
---------
planted_cnn
    Convolutional classifier: conv trunk to a (1, C, 7, 7) feature map, global average pooling,
    a fully connected layer and an optional Softmax.
planted_vit
    Tiny ViT-shaped classifier: patch embedding, class token, pre-norm transformer blocks, final
    LayerNorm, head on the class token.
planted_detector
    Single-stage detector head with two scales of per-anchor class scores (TFLite-style, NHWC).
planted_image, planted_image_with_object
    Test inputs matching a planted model's input layout and element type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openvino as ov
from openvino import opset13 as ops

__all__ = [
    "DEFAULT_ACTIVATION_CELLS",
    "DEFAULT_CELL_REGIONS",
    "PlantedModel",
    "planted_cnn",
    "planted_detector",
    "planted_image",
    "planted_image_with_object",
    "planted_vit",
]

Rect = tuple[int, int, int, int]

#: Default per-class rectangles on the 7 x 7 feature grid, ``(y0, y1, x0, x1)`` half-open:
#: class 0 top right (3 x 2 cells), class 1 right middle (2 x 2), class 2 bottom band on the
#: left (2 x 3). None touches the diagonal or the middle column, so each is disjoint from its own
#: transpose and its own horizontal flip.
DEFAULT_CELL_REGIONS: tuple[Rect, ...] = ((0, 3, 4, 6), (3, 5, 5, 7), (5, 7, 0, 3))
#: Default high-activation rectangle (cells) of the planted CNN: left middle, off the diagonal.
DEFAULT_ACTIVATION_CELLS: Rect = (2, 4, 0, 2)

_FEATURE_SIZE = 7
_ACTIVATION_GAIN = 6.0
_FILLER_GAIN = 0.25


@dataclass(frozen=True)
class PlantedModel:
    """A model with planted ground truth.

    Attributes
    ----------
    model : openvino.Model
        The model. Its first output is the class scores, (1, num_classes) float32 (logits, or
        probabilities when built with ``softmax=True``).
    regions : list of tuple of int
        Per class ``(y0, y1, x0, x1)`` half-open rectangle in input pixels.
    cell_regions : list of tuple of int
        The same rectangles in feature-map cells (patch tokens for the ViT).
    feature_size : int
        Side of the square feature grid (7).
    activation_region : tuple of int or None
        Cells ``(y0, y1, x0, x1)`` where the feature map is planted to be strongest (the right
        answer of ActivationMap); None when the model has none.
    input_size : int
        Side of the square input image in pixels.
    layout : str
        Input layout, ``"NCHW"`` or ``"NHWC"``.
    element_type : str
        Input element type, ``"f32"`` (values in [0, 1]) or ``"u8"`` (values in [0, 255]).
    target_layer : str
        Friendly name of the node a white-box method should hook (the feature map for the CNN,
        the residual Add before the last block for the ViT, or the class-score heads for the
        detector, comma-separated).
    kind : str
        ``"cnn"``, ``"vit"`` or ``"detector"``.
    """

    model: ov.Model
    regions: list[Rect]
    cell_regions: list[Rect]
    feature_size: int
    activation_region: Rect | None
    input_size: int
    layout: str = "NCHW"
    element_type: str = "f32"
    target_layer: str = ""
    kind: str = "cnn"

    @property
    def num_classes(self) -> int:
        """Number of classes (one planted region each)."""
        return len(self.regions)

    @property
    def cell(self) -> int:
        """Side of one feature-map cell in input pixels."""
        return self.input_size // self.feature_size


# --------------------------------------------------------------------------------------------
# helpers


def _const(
    value: np.ndarray | float | list, dtype: type = np.float32, name: str | None = None
) -> ov.Node:
    node = ops.constant(np.asarray(value, dtype=dtype))
    if name:
        node.set_friendly_name(name)
    return node


def _named(node: ov.Node, name: str) -> ov.Node:
    node.set_friendly_name(name)
    return node


def _cells_from_regions(
    regions: list[Rect] | tuple[Rect, ...] | None, cell: int, grid: int, num_classes: int
) -> list[Rect]:
    """Validate pixel regions (or pick the defaults) and return them in cells."""
    if regions is None:
        if num_classes > len(DEFAULT_CELL_REGIONS):
            raise ValueError(
                f"num_classes={num_classes}: only {len(DEFAULT_CELL_REGIONS)} default regions exist; "
                "pass `regions` explicitly"
            )
        return [tuple(r) for r in DEFAULT_CELL_REGIONS[:num_classes]]  # type: ignore[misc]
    regions = list(regions)
    if len(regions) != num_classes:
        raise ValueError(f"regions has {len(regions)} rectangles but num_classes={num_classes}")
    cells: list[Rect] = []
    for r in regions:
        if len(r) != 4 or any(int(v) % cell for v in r):
            raise ValueError(
                f"region {r!r} must be (y0, y1, x0, x1) aligned to the {cell}-pixel grid"
            )
        y0, y1, x0, x1 = (int(v) // cell for v in r)
        if not (0 <= y0 < y1 <= grid and 0 <= x0 < x1 <= grid):
            raise ValueError(f"region {r!r} is empty or outside the {grid * cell}-pixel image")
        cells.append((y0, y1, x0, x1))
    for i in range(len(cells)):
        for j in range(i + 1, len(cells)):
            a, b = cells[i], cells[j]
            if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                raise ValueError(f"regions {regions[i]!r} and {regions[j]!r} overlap")
    return cells


def _cell_mask(rect: Rect, grid: int) -> np.ndarray:
    m = np.zeros((grid, grid), np.float32)
    y0, y1, x0, x1 = rect
    m[y0:y1, x0:x1] = 1.0
    return m


def _check_layout(layout: str, element_type: str) -> None:
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if element_type not in ("f32", "u8"):
        raise ValueError(f"element_type must be 'f32' or 'u8', got {element_type!r}")


def _input_to_nchw_float(
    size: int, layout: str, element_type: str, static_batch: bool
) -> tuple[ov.Node, ov.Output]:
    """Parameter in the requested layout/type and its conversion to NCHW float in [0, 1]."""
    batch = 1 if static_batch else -1
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    param = ops.parameter(
        ov.PartialShape(shape), ov.Type.u8 if element_type == "u8" else ov.Type.f32, name="input"
    )
    param.output(0).get_tensor().set_names({"input"})
    x: ov.Output = param.output(0)
    if element_type == "u8":
        x = _named(ops.convert(x, ov.Type.f32), "preprocess/convert").output(0)
    if layout == "NHWC":
        x = _named(ops.transpose(x, _const([0, 3, 1, 2], np.int64)), "preprocess/to_nchw").output(0)
    if element_type == "u8":
        x = _named(ops.multiply(x, _const(1.0 / 255.0)), "preprocess/scale").output(0)
    return param, x


def _finish(outputs: ov.Output, param: ov.Node, name: str, softmax: bool) -> ov.Model:
    logits = outputs
    logits.get_tensor().set_names({"logits"})
    out = logits
    if softmax:
        out = _named(ops.softmax(logits, 1), "probabilities").output(0)
        out.get_tensor().set_names({"probabilities"})
    result = ops.result(out)
    result.set_friendly_name("scores")
    return ov.Model([result], [param], name)


# --------------------------------------------------------------------------------------------
# CNN


def planted_cnn(
    num_classes: int = 3,
    size: int = 112,
    channels: int = 16,
    regions: list[Rect] | None = None,
    layout: str = "NCHW",
    element_type: str = "f32",
    static_batch: bool = True,
    softmax: bool = False,
) -> PlantedModel:
    """Build a CNN classifier whose class ``k`` logit depends only on ``regions[k]``.

    Construction (the input is first converted to NCHW float in [0, 1]):

    1. ``backbone/conv``: a 3 -> ``channels`` Convolution with a (size/7)-pixel kernel and the
       same stride, so each output cell sees exactly one cell of the image. Channels ``0..K-1``
       (one per class) and channel ``K`` (the *activation* channel) average the three colour
       channels over the cell; the remaining *filler* channels are random positive projections
       with a bias.
    2. ``backbone/mask``: a constant (1, C, 7, 7) Multiply: class channel ``k`` is kept (gain 1)
       only on the cells of its region and zeroed elsewhere; the activation channel gets gain 6
       on the activation region and 0 elsewhere; filler channels get gain 0.25 everywhere.
    3. ``backbone/relu``: ReLU. This (1, C, 7, 7) node is the white-box target layer.
    4. Head: ReduceMean over (2, 3) with ``keep_dims`` -> Reshape to (1, C) with a constant,
       batch-1 shape (as exported models often have) -> MatMul that maps channel ``k`` to class
       ``k`` only (weight 49 / region cells, so the logit is the mean intensity over the region)
       -> Add a small bias -> optional Softmax.

    Hence ``logit_k = mean intensity of region k + bias_k`` exactly, and the mean over channels of
    the feature map peaks on the activation region (for an image of even brightness).

    Parameters
    ----------
    num_classes : int
        Number of classes, at most 3 with the default regions.
    size : int
        Input side in pixels; must be a multiple of 7.
    channels : int
        Feature-map channels C; must exceed both 7 and ``num_classes + 1``.
    regions : list of tuple of int, optional
        Per-class ``(y0, y1, x0, x1)`` rectangles in input pixels, aligned to the ``size // 7``
        grid and disjoint. Default: :data:`DEFAULT_CELL_REGIONS` scaled to pixels.
    layout : {"NCHW", "NHWC"}
        Input layout.
    element_type : {"f32", "u8"}
        Input element type; ``"u8"`` inputs are divided by 255 inside the graph (like the
        seed walkthrough's MobileNetV3, which takes a uint8 NHWC batch).
    static_batch : bool
        Keep a static batch of 1 (otherwise the batch is dynamic).
    softmax : bool
        End with a Softmax (the output is then probabilities).

    Returns
    -------
    PlantedModel
    """
    _check_layout(layout, element_type)
    if size % _FEATURE_SIZE or size <= 0:
        raise ValueError(f"size must be a positive multiple of {_FEATURE_SIZE}, got {size}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if channels <= max(_FEATURE_SIZE, num_classes + 1):
        raise ValueError(
            f"channels must exceed max(7, num_classes + 1) = {max(7, num_classes + 1)}, got {channels}"
        )
    cell = size // _FEATURE_SIZE
    grid = _FEATURE_SIZE
    cells = _cells_from_regions(regions, cell, grid, num_classes)
    act = DEFAULT_ACTIVATION_CELLS
    rng = np.random.default_rng(1234)

    param, x = _input_to_nchw_float(size, layout, element_type, static_batch)

    weights = np.zeros((channels, 3, cell, cell), np.float32)
    mean_kernel = np.full((3, cell, cell), 1.0 / (3 * cell * cell), np.float32)
    weights[: num_classes + 1] = mean_kernel
    fill = slice(num_classes + 1, channels)
    weights[fill] = (
        rng.uniform(0.0, 2.0, size=(channels - num_classes - 1, 3, cell, cell)) * mean_kernel
    )
    bias = np.zeros((1, channels, 1, 1), np.float32)
    bias[0, fill, 0, 0] = rng.uniform(0.0, 0.1, size=channels - num_classes - 1)
    conv = ops.convolution(
        x, _const(weights, name="backbone/conv/weights"), [cell, cell], [0, 0], [0, 0], [1, 1]
    )
    conv = _named(
        ops.add(_named(conv, "backbone/conv/without_bias"), _const(bias)), "backbone/conv"
    )

    mask = np.zeros((1, channels, grid, grid), np.float32)
    for k, rect in enumerate(cells):
        mask[0, k] = _cell_mask(rect, grid)
    mask[0, num_classes] = _ACTIVATION_GAIN * _cell_mask(act, grid)
    mask[0, fill] = _FILLER_GAIN
    feat = _named(ops.multiply(conv, _const(mask, name="backbone/mask/gain")), "backbone/mask")
    feat = _named(ops.relu(feat), "backbone/relu")

    pooled = _named(ops.reduce_mean(feat, _const([2, 3], np.int64), keep_dims=True), "head/pool")
    # static batch: a constant batch-1 shape, as exported models often have
    flat_shape = [1, channels] if static_batch else [0, channels]
    flat = _named(
        ops.reshape(pooled, _const(flat_shape, np.int64), special_zero=not static_batch),
        "head/flatten",
    )
    fc_w = np.zeros((channels, num_classes), np.float32)
    for k, (y0, y1, x0, x1) in enumerate(cells):
        fc_w[k, k] = grid * grid / ((y1 - y0) * (x1 - x0))
    fc = _named(ops.matmul(flat, _const(fc_w, name="head/fc/weights"), False, False), "head/fc")
    fc_b = np.array(
        [0.02, -0.01, 0.01, 0.0, 0.015, -0.005][:num_classes] + [0.0] * max(0, num_classes - 6),
        np.float32,
    )
    logits = _named(ops.add(fc, _const(fc_b.reshape(1, -1), name="head/fc/bias")), "logits")

    model = _finish(logits.output(0), param, "planted_cnn", softmax)
    return PlantedModel(
        model=model,
        regions=[(y0 * cell, y1 * cell, x0 * cell, x1 * cell) for (y0, y1, x0, x1) in cells],
        cell_regions=cells,
        feature_size=grid,
        activation_region=act,
        input_size=size,
        layout=layout,
        element_type=element_type,
        target_layer="backbone/relu",
        kind="cnn",
    )


# --------------------------------------------------------------------------------------------
# ViT


def _layer_norm(x: ov.Output, dim: int, name: str, gamma: np.ndarray | None = None) -> ov.Node:
    """LayerNorm over the last axis as MVN + scale/shift (beta is zero)."""
    mvn = _named(ops.mvn(x, _const([-1], np.int64), True, 1e-6, "inside_sqrt"), f"{name}/mvn")
    g = np.ones(dim, np.float32) if gamma is None else gamma.astype(np.float32)
    scaled = _named(ops.multiply(mvn, _const(g)), f"{name}/scale")
    return _named(ops.add(scaled, _const(np.zeros(dim, np.float32))), name)


def planted_vit(
    num_classes: int = 3,
    image_size: int = 56,
    patch: int = 8,
    dim: int = 32,
    depth: int = 2,
    heads: int = 2,
    regions: list[Rect] | None = None,
    static_batch: bool = True,
) -> PlantedModel:
    """Build a tiny ViT-shaped classifier whose class ``k`` logit depends only on ``regions[k]``.

    Input: (1, 3, image_size, image_size) float32 in [0, 1]; 7 x 7 patches; N = 49 patch tokens
    plus one class token. Features (``dim`` of them) are split into *class pairs*
    ``(a_k, b_k) = (2k, 2k+1)``, 8 *register* features ``R`` and the remaining *junk* features ``J``.

    Construction:

    1. Patch embedding: Convolution with stride ``patch``; channel ``a_k`` is the patch mean
       intensity ``v``, ``b_k`` is ``-v``. Reshape/Transpose to tokens (1, N, dim).
    2. A constant per-token mask (Multiply) keeps ``(a_k, b_k)`` only on patches of region ``k``
       and zeroes every other feature, so a patch token carries ``v (e_a - e_b)`` of its own
       class or nothing.
    3. Concat a constant class token: ``+-1024`` on the register features (a "massive
       activation"), zero elsewhere. Add a position embedding: zero-sum random constants on the
       junk features of each patch token.
    4. ``depth`` pre-norm blocks ``h = x + Attn(LN1(x)); out = h + MLP(LN2(h))`` with LayerNorm
       as MVN + scale/shift. Attention: query/key weights are zero and an additive constant
       attention bias lets every patch token attend only to itself and the class token attend
       uniformly to all patch tokens (never to itself); values and the output projection are the
       identity on the class pairs and zero elsewhere. MLP (GELU) reads and writes the junk
       features only, with zero-sum writes and no biases.
    5. Final LayerNorm, Gather of the class token, MatMul head with ``+c`` on ``a_k`` and
       ``-c`` on ``b_k`` for class ``k``, plus a small bias.

    Why it works: each patch token stays mean-free with non-zero features only on its own class
    pair and the junk features, so LayerNorm of a patch token is a function of that patch alone
    and is exactly zero on the other classes' pairs. The class token therefore accumulates, on
    pair ``k``, a sum of terms from region ``k`` only, and the MLP contributes exactly zero to it.
    The only coupling left is the final LayerNorm's variance of the class token, which the
    +-1024 register features dominate: changing another region moves a logit by about 1e-7 of
    its value, at float32 rounding level. The attention-reshapes use constant batch-1 shapes.

    Parameters
    ----------
    num_classes : int
        Number of classes, at most 3 with the default regions.
    image_size, patch : int
        Input side and patch side in pixels; ``image_size / patch`` must be 7.
    dim : int
        Token width; needs ``2 * num_classes + 8 + 4`` features at least and must divide by
        ``heads``.
    depth : int
        Number of transformer blocks (>= 1).
    heads : int
        Attention heads.
    regions : list of tuple of int, optional
        Per-class rectangles in input pixels aligned to the patch grid.
    static_batch : bool
        Keep a static batch of 1.

    Returns
    -------
    PlantedModel
        ``target_layer`` is the residual Add before the last block.
    """
    if image_size % patch or image_size // patch != _FEATURE_SIZE:
        raise ValueError(f"image_size / patch must be {_FEATURE_SIZE}, got {image_size} / {patch}")
    n_reg = 8
    if dim < 2 * num_classes + n_reg + 4:
        raise ValueError(
            f"dim must be >= 2 * num_classes + 12 = {2 * num_classes + n_reg + 4}, got {dim}"
        )
    if dim % heads:
        raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    grid = _FEATURE_SIZE
    cells = _cells_from_regions(regions, patch, grid, num_classes)
    n_tok = grid * grid
    rng = np.random.default_rng(4321)
    g_idx = np.arange(2 * num_classes)
    r_idx = np.arange(2 * num_classes, 2 * num_classes + n_reg)
    j_idx = np.arange(2 * num_classes + n_reg, dim)
    dh = dim // heads

    param, x = _input_to_nchw_float(image_size, "NCHW", "f32", static_batch)

    w = rng.normal(0.0, 0.02, size=(dim, 3, patch, patch)).astype(np.float32)
    mean_k = np.full((3, patch, patch), 1.0 / (3 * patch * patch), np.float32)
    for k in range(num_classes):
        w[2 * k] = mean_k
        w[2 * k + 1] = -mean_k
    emb = _named(
        ops.convolution(
            x, _const(w, name="embed/proj/weights"), [patch, patch], [0, 0], [0, 0], [1, 1]
        ),
        "embed/proj",
    )
    tok = _named(
        ops.reshape(emb, _const([0, dim, n_tok], np.int64), special_zero=True), "embed/flatten"
    )
    tok = _named(ops.transpose(tok, _const([0, 2, 1], np.int64)), "embed/tokens")

    tmask = np.zeros((1, n_tok, dim), np.float32)
    for k, rect in enumerate(cells):
        m = _cell_mask(rect, grid).reshape(-1)
        tmask[0, :, 2 * k] = m
        tmask[0, :, 2 * k + 1] = m
    tok = _named(
        ops.multiply(tok, _const(tmask, name="embed/token_mask/values")), "embed/token_mask"
    )

    cls = np.zeros((1, 1, dim), np.float32)
    cls[0, 0, r_idx] = np.tile([1024.0, -1024.0], n_reg // 2)
    cls_node = _const(cls, name="embed/cls_token")
    if not static_batch:
        # broadcast the class token to the batch of the patch tokens
        bshape = ops.concat(
            [
                ops.gather(ops.shape_of(tok), _const([0], np.int64), _const(0, np.int64)),
                _const([1, dim], np.int64),
            ],
            0,
        )
        cls_node = ops.broadcast(cls_node, bshape)
    seq = _named(ops.concat([cls_node, tok], 1), "embed/concat_cls")

    pos = np.zeros((1, n_tok + 1, dim), np.float32)
    half = len(j_idx) // 2
    for t in range(1, n_tok + 1):
        vals = rng.choice([0.25, 0.5, 0.75, 1.0], size=half)
        row = np.concatenate([vals, -vals, np.zeros(len(j_idx) - 2 * half)])
        pos[0, t, j_idx] = rng.permutation(row)
    xcur = _named(
        ops.add(seq, _const(pos, name="embed/pos_embedding/values")), "embed/pos_embedding"
    ).output(0)

    ntot = n_tok + 1
    bias = np.full((ntot, ntot), -1e9, np.float32)
    bias[0, 1:] = 0.0
    idx = np.arange(1, ntot)
    bias[idx, idx] = 0.0

    b0 = 1 if static_batch else 0
    for blk in range(depth):
        p = f"block{blk}"
        ln1 = _layer_norm(xcur, dim, f"{p}/norm1")
        zeros_dd = np.zeros((dim, dim), np.float32)
        q = _named(
            ops.matmul(ln1, _const(zeros_dd, name=f"{p}/attn/q/weights"), False, False),
            f"{p}/attn/q",
        )
        k_ = _named(
            ops.matmul(ln1, _const(zeros_dd, name=f"{p}/attn/k/weights"), False, False),
            f"{p}/attn/k",
        )
        wv = np.zeros((dim, dim), np.float32)
        wv[g_idx, g_idx] = 1.0
        v = _named(
            ops.matmul(ln1, _const(wv, name=f"{p}/attn/v/weights"), False, False), f"{p}/attn/v"
        )
        shape4 = _const([b0, ntot, heads, dh], np.int64)
        qh = ops.transpose(
            ops.reshape(q, shape4, special_zero=True), _const([0, 2, 1, 3], np.int64)
        )
        kh = ops.transpose(
            ops.reshape(k_, shape4, special_zero=True), _const([0, 2, 3, 1], np.int64)
        )
        vh = ops.transpose(
            ops.reshape(v, shape4, special_zero=True), _const([0, 2, 1, 3], np.int64)
        )
        scores = ops.multiply(ops.matmul(qh, kh, False, False), _const(1.0 / np.sqrt(dh)))
        scores = _named(ops.add(scores, _const(bias, name=f"{p}/attn/bias")), f"{p}/attn/scores")
        probs = _named(ops.softmax(scores, -1), f"{p}/attn/softmax")
        ctx = ops.transpose(ops.matmul(probs, vh, False, False), _const([0, 2, 1, 3], np.int64))
        ctx = _named(
            ops.reshape(ctx, _const([b0, ntot, dim], np.int64), special_zero=True),
            f"{p}/attn/merge",
        )
        wo = np.zeros((dim, dim), np.float32)
        wo[g_idx, g_idx] = 1.0
        proj = _named(
            ops.matmul(ctx, _const(wo, name=f"{p}/attn/out/weights"), False, False), f"{p}/attn/out"
        )
        proj = _named(ops.add(proj, _const(np.zeros(dim, np.float32))), f"{p}/attn/out/bias")
        h = _named(ops.add(xcur, proj), f"{p}/add1")

        ln2 = _layer_norm(h, dim, f"{p}/norm2")
        hidden = 4 * dim
        w1 = np.zeros((dim, hidden), np.float32)
        w1[j_idx] = rng.normal(0.0, 0.5, size=(len(j_idx), hidden))
        w2 = np.zeros((hidden, dim), np.float32)
        w2j = rng.normal(0.0, 0.1, size=(hidden, len(j_idx)))
        w2[:, j_idx] = w2j - w2j.mean(axis=1, keepdims=True)
        f1 = _named(
            ops.matmul(ln2, _const(w1, name=f"{p}/mlp/fc1/weights"), False, False), f"{p}/mlp/fc1"
        )
        f1 = _named(ops.add(f1, _const(np.zeros(hidden, np.float32))), f"{p}/mlp/fc1/bias")
        act = _named(ops.gelu(f1, "erf"), f"{p}/mlp/gelu")
        f2 = _named(
            ops.matmul(act, _const(w2, name=f"{p}/mlp/fc2/weights"), False, False), f"{p}/mlp/fc2"
        )
        f2 = _named(ops.add(f2, _const(np.zeros(dim, np.float32))), f"{p}/mlp/fc2/bias")
        xcur = _named(ops.add(h, f2), f"{p}/add2").output(0)

    final = _layer_norm(xcur, dim, "final_norm")
    cls_out = _named(ops.gather(final, _const(0, np.int64), _const(1, np.int64)), "head/cls_token")
    scale = 512.0  # ~ the class token's standard deviation (set by the register features)
    hw = np.zeros((dim, num_classes), np.float32)
    for k in range(num_classes):
        hw[2 * k, k] = scale / 2
        hw[2 * k + 1, k] = -scale / 2
    fc = _named(ops.matmul(cls_out, _const(hw, name="head/fc/weights"), False, False), "head/fc")
    fc_b = np.linspace(0.01, -0.01, num_classes).astype(np.float32).reshape(1, -1)
    logits = _named(ops.add(fc, _const(fc_b, name="head/fc/bias")), "logits")
    model = _finish(logits.output(0), param, "planted_vit", False)
    return PlantedModel(
        model=model,
        regions=[(y0 * patch, y1 * patch, x0 * patch, x1 * patch) for (y0, y1, x0, x1) in cells],
        cell_regions=cells,
        feature_size=grid,
        activation_region=None,
        input_size=image_size,
        layout="NCHW",
        element_type="f32",
        target_layer=f"block{depth - 2}/add2" if depth >= 2 else "embed/pos_embedding",
        kind="vit",
    )


# --------------------------------------------------------------------------------------------
# Detector


def planted_detector(
    num_classes: int = 2,
    size: int = 64,
    num_anchors: tuple[int, int] = (2, 3),
    regions: list[Rect] | None = None,
    layout: str = "NHWC",
) -> PlantedModel:
    """Build a two-scale single-stage detector head whose class ``k`` scores live in ``regions[k]``.

    Input (1, 3, size, size) float32 in [0, 1]. Scale 0 has an 8 x 8 grid (stride size/8) and
    ``num_anchors[0]`` anchors, scale 1 a 4 x 4 grid (stride size/4) and ``num_anchors[1]``
    anchors. Each scale: an averaging Convolution gives the cell mean intensity ``v``; a 1 x 1
    Convolution makes ``A * num_classes`` channels (anchor-major, class-minor) equal to ``v``; a
    constant spatial mask keeps class ``k`` only on the cells of region ``k`` (other cells get
    ``-4``, a low logit); the head is then Transposed to NHWC and flattened to
    (1, h * w * A, num_classes) and the scales are concatenated into the ``classificators``
    output, like BlazeFace. ``target_layer`` names the two per-scale class heads
    (``"head0/scores,head1/scores"``) in the requested ``layout`` (NHWC: (1, h, w, A*C) after the
    transpose; NCHW: (1, A*C, h, w) before it).

    Regions must align to the 4 x 4 grid (``size / 4`` pixels); by default class 0 is
    the top-right quarter block ``(0, 16, 32, 48)`` and class 1 ``(48, 64, 0, 32)``
    (for size 64), disjoint and off the diagonal.
    """
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if size % 8:
        raise ValueError(f"size must be a multiple of 8, got {size}")
    coarse = size // 4
    if regions is None:
        default = [(0, 1, 2, 3), (3, 4, 0, 2), (1, 2, 3, 4)]
        if num_classes > len(default):
            raise ValueError(f"num_classes={num_classes}: pass `regions` explicitly")
        regions = [
            (a * coarse, b * coarse, c * coarse, d * coarse) for a, b, c, d in default[:num_classes]
        ]
    cells4 = _cells_from_regions(regions, coarse, 4, num_classes)
    param, x = _input_to_nchw_float(size, "NCHW", "f32", True)
    flats = []
    head_names = []
    for s, (grid, a) in enumerate(zip((8, 4), num_anchors)):
        stride = size // grid
        k = np.full((1, 3, stride, stride), 1.0 / (3 * stride * stride), np.float32)
        v = ops.convolution(x, _const(k), [stride, stride], [0, 0], [0, 0], [1, 1])
        w1 = np.ones((a * num_classes, 1, 1, 1), np.float32)
        sc = ops.convolution(v, _const(w1), [1, 1], [0, 0], [0, 0], [1, 1])
        gain = np.zeros((1, a * num_classes, grid, grid), np.float32)
        off = np.full((1, a * num_classes, grid, grid), -4.0, np.float32)
        f = grid // 4
        for c, (y0, y1, x0, x1) in enumerate(cells4):
            m = np.zeros((grid, grid), np.float32)
            m[y0 * f : y1 * f, x0 * f : x1 * f] = 1.0
            for an in range(a):
                gain[0, an * num_classes + c] = m * 4.0
                off[0, an * num_classes + c] = np.where(m > 0, 0.0, -4.0)
        sc = ops.add(ops.multiply(sc, _const(gain)), _const(off))
        nchw_name = f"head{s}/scores" if layout == "NCHW" else f"head{s}/scores_nchw"
        sc = _named(sc, nchw_name)
        nhwc = ops.transpose(sc, _const([0, 2, 3, 1], np.int64))
        nhwc = _named(nhwc, f"head{s}/scores" if layout == "NHWC" else f"head{s}/scores_nhwc")
        head_names.append(f"head{s}/scores")
        flats.append(ops.reshape(nhwc, _const([1, grid * grid * a, num_classes], np.int64), False))
    cat = _named(ops.concat(flats, 1), "classificators")
    cat.output(0).get_tensor().set_names({"classificators"})
    res = ops.result(cat)
    model = ov.Model([res], [param], "planted_detector")
    return PlantedModel(
        model=model,
        regions=[
            (y0 * coarse, y1 * coarse, x0 * coarse, x1 * coarse) for (y0, y1, x0, x1) in cells4
        ],
        cell_regions=cells4,
        feature_size=4,
        activation_region=None,
        input_size=size,
        layout="NCHW",
        element_type="f32",
        target_layer=",".join(head_names),
        kind="detector",
    )


# --------------------------------------------------------------------------------------------
# images


def _to_model_input(pm: PlantedModel, img: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float image in [0, 1] -> the model's input layout and element type."""
    if pm.layout == "NHWC":
        img = img.transpose(0, 2, 3, 1)
    if pm.element_type == "u8":
        return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img, dtype=np.float32)


def planted_image(pm: PlantedModel, kind: str = "uniform", seed: int = 0) -> np.ndarray:
    """A positive test image for which every class of ``pm`` has a positive logit.

    Parameters
    ----------
    pm : PlantedModel
        The model the image is for.
    kind : {"uniform", "random"}
        ``"uniform"``: every pixel 0.5 (128 for uint8); ``"random"``: i.i.d. uniform in
        [0.25, 0.75] per pixel and channel, from ``seed``.
    seed : int
        Seed of ``"random"``.

    Returns
    -------
    numpy.ndarray
        (1, 3, S, S) float32 in [0, 1] for NCHW float models, (1, S, S, 3) uint8 for NHWC uint8
        models (matching ``pm.layout`` and ``pm.element_type``).
    """
    s = pm.input_size
    if kind == "uniform":
        img = np.full((1, 3, s, s), 0.5, np.float32)
    elif kind == "random":
        img = np.random.default_rng(seed).uniform(0.25, 0.75, size=(1, 3, s, s)).astype(np.float32)
    else:
        raise ValueError(f"kind must be 'uniform' or 'random', got {kind!r}")
    return _to_model_input(pm, img)


def planted_image_with_object(
    pm: PlantedModel, k: int, background: float = 0.1, foreground: float = 0.9
) -> np.ndarray:
    """An image bright (``foreground``) only in region ``k`` and dark elsewhere, so class ``k`` wins.

    Returns the same layout and element type as :func:`planted_image`.
    """
    if not 0 <= k < pm.num_classes:
        raise ValueError(f"k must be in [0, {pm.num_classes}), got {k}")
    s = pm.input_size
    img = np.full((1, 3, s, s), background, np.float32)
    y0, y1, x0, x1 = pm.regions[k]
    img[:, :, y0:y1, x0:x1] = foreground
    return _to_model_input(pm, img)


def batchable(pm: PlantedModel | ov.Model) -> ov.Model:
    """A copy of a planted CNN whose head takes any batch size.

    :func:`planted_cnn` flattens with a constant batch-1 Reshape on purpose (exported models
    often do, and white-box methods must cope); the batched black-box engine would then fall
    back to batch 1. This rewires that Reshape to ``[-1, C]``.
    """
    model = (pm.model if isinstance(pm, PlantedModel) else pm).clone()
    for op in model.get_ops():
        if op.get_friendly_name() == "head/flatten":
            channels = op.get_output_partial_shape(0)[1].get_length()
            new = ops.reshape(op.input_value(0), _const(np.array([-1, channels], np.int64), np.int64),
                              False)
            for target in list(op.output(0).get_target_inputs()):
                target.replace_source_output(new.output(0))
    model.validate_nodes_and_infer_types()
    return model
