"""ViT-ReciproCAM (Byun & Lee, arXiv 2310.02588): ReciproCAM on transformer tokens.

The target is the residual Add ``x`` (B, N, D) that feeds the last transformer block. For each of
the ``h * w`` patch tokens ``k``, a copy of the token set keeps the 3 x 3 neighbourhood of ``k``
weighted by a Gaussian (1/4 centre, 1/8 edges, 1/16 corners; other patch tokens zeroed) and the
class (auxiliary) tokens unchanged. As in the paper's implementation, the mask is applied to the
last block's LayerNorm output (the attention input) and to the residual input of the block, then
the last block, the final norm and the head run on the ``h * w`` copies; the score of class ``c``
for copy ``k`` is the saliency at patch ``k``.
"""

from __future__ import annotations

import math

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from salvo.methods.white_box.graph import (
    GraphIndex,
    TargetLayer,
    XAIInsertionError,
    attention_block_at,
    const,
    graft_head,
    logits_output,
    typed_const,
)
from salvo.methods.white_box.graph import scores_to_maps

__all__ = ["gaussian_token_masks", "token_grid", "vit_recipro_cam_branch"]

_GAUSS = np.array(
    [[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]], np.float32
)


def gaussian_token_masks(h: int, w: int, use_gaussian: bool = True) -> np.ndarray:
    """Weights of the patch tokens in each copy.

    Returns
    -------
    numpy.ndarray
        (h * w, h * w) float32: row ``k`` weights the patch tokens of copy ``k`` (the 3 x 3
        Gaussian around ``k``, cut at the borders; or one-hot when ``use_gaussian`` is False).
    """
    m = np.zeros((h * w, h + 2, w + 2), np.float32)
    for k in range(h * w):
        i, j = divmod(k, w)
        if use_gaussian:
            m[k, i : i + 3, j : j + 3] = _GAUSS
        else:
            m[k, i + 1, j + 1] = 1.0
    return m[:, 1:-1, 1:-1].reshape(h * w, h * w)


def token_grid(model: ov.Model, gi: GraphIndex, num_tokens: int, dim: int) -> tuple[int, int, int]:
    """Patch grid ``(h, w)`` and number of auxiliary (class/register) tokens.

    Uses the first Convolution with ``dim`` output channels (the patch embedding) when its grid
    fits, else a square grid: ``h = w = isqrt(num_tokens - 1)`` or ``isqrt(num_tokens)``.
    """
    for n in gi.ops:
        if n.get_type_name() != "Convolution":
            continue
        ps = n.get_output_partial_shape(0)
        if (
            ps.rank.is_static
            and ps.rank.get_length() == 4
            and all(d.is_static for d in list(ps)[1:])
        ):
            _, c, h, w = (d.get_length() if d.is_static else 0 for d in ps)
            if c == dim and 0 < h * w <= num_tokens:
                return h, w, num_tokens - h * w
        break
    for aux in (1, 0):
        s = math.isqrt(num_tokens - aux)
        if s * s == num_tokens - aux and s > 1:
            return s, s, aux
    raise XAIInsertionError(
        f"Cannot tell the patch grid of {num_tokens} tokens; the model has no square patch grid."
    )


def _mosaic(
    tokens: ov.Output, h: int, w: int, aux: int, weights: np.ndarray, keep_cls: bool
) -> ov.Output:
    """(B, N, D) -> (B * h * w, N, D): copy ``k`` weights the patch tokens by ``weights[k]``."""
    hw = h * w
    n_tok = aux + hw
    step = const([1], np.int64)
    axis = const([1], np.int64)
    patches = ops.slice(tokens, const([aux], np.int64), const([n_tok], np.int64), step, axis)
    dim = tokens.get_partial_shape()[2].get_length()
    pm = ops.multiply(
        ops.unsqueeze(patches, const([1], np.int64)), typed_const(weights[:, :, None], tokens)
    )
    pm = ops.reshape(pm, const([-1, hw, dim], np.int64), False)
    if aux == 0:
        return pm.output(0)
    cls = ops.slice(tokens, const([0], np.int64), const([aux], np.int64), step, axis)
    gain = np.ones((hw, 1, 1), np.float32) if keep_cls else np.zeros((hw, 1, 1), np.float32)
    cls_rep = ops.multiply(ops.unsqueeze(cls, const([1], np.int64)), typed_const(gain, tokens))
    cls_rep = ops.reshape(cls_rep, const([-1, aux, dim], np.int64), False)
    return ops.concat([cls_rep, pm], 1).output(0)


def vit_recipro_cam_branch(
    model_a: ov.Model,
    model_b: ov.Model,
    target: TargetLayer,
    use_gaussian: bool = True,
    cls_token: bool = True,
) -> ov.Output:
    """Build the ViT-ReciproCAM branch.

    Parameters
    ----------
    model_a, model_b : openvino.Model
        Two clones of the user's model (``model_b`` lends the last block and the head).
    target : TargetLayer
        The residual Add (B, N, D) feeding the last transformer block, indexed in ``model_a``.
    use_gaussian : bool
        3 x 3 Gaussian neighbourhoods (True) or one token per copy (False).
    cls_token : bool
        Keep the class/auxiliary tokens in every copy (True) or zero them.

    Returns
    -------
    openvino.Output
        (B, num_classes, h, w) float32 saliency maps.
    """
    ga, gb = GraphIndex(model_a), GraphIndex(model_b)
    x_a = ga.ops[target.index].output(target.port)
    ps = x_a.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 3 or ps[1].is_dynamic or ps[2].is_dynamic:
        raise XAIInsertionError(
            f"ViT-ReciproCAM needs a (B, N, D) token tensor with static N, D; {target.name!r} has shape {ps}."
        )
    num_tokens, dim = ps[1].get_length(), ps[2].get_length()
    block_a = attention_block_at(ga, x_a)
    block_b = attention_block_at(gb, gb.ops[target.index].output(target.port))
    if block_a is None or block_b is None:
        raise XAIInsertionError(
            f"{target.name!r} does not feed a pre-norm transformer block (LayerNorm -> attention, plus a residual Add)."
        )
    h, w, aux = token_grid(model_a, ga, num_tokens, dim)
    weights = gaussian_token_masks(h, w, use_gaussian)
    mosaic_norm = _mosaic(block_a.norm_end, h, w, aux, weights, cls_token)
    mosaic_x = _mosaic(x_a, h, w, aux, weights, cls_token)
    cuts = [(inp, mosaic_norm) for inp in block_b.norm_end.get_target_inputs()]
    cuts.append((block_b.residual, mosaic_x))
    scores = graft_head(model_a, model_b, cuts, logits_output(model_b))
    return scores_to_maps(scores, h, w)
