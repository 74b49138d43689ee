"""White-box methods for PyTorch models: :func:`insert_xai_torch` (what ``salvo.insert_xai`` does
with a ``torch.nn.Module``).

The returned :class:`TorchXAIModel` holds a deep copy of the user's module (which is never
touched) and its ``forward(x)`` returns ``{"prediction": <the module's output>, "saliency_map":
<maps>}``, the reference toolkit's format. It computes the maps by *replaying* the module:

1. Every submodule of the private copy gets a thin ``forward`` wrapper that, when a call of the
   XAI model is in progress on this thread, numbers each module call in call order. So a module
   object that runs several times in one forward (an activation shared by the stem and the head)
   is several calls, and the target is one of them, never "the module".
2. Finding the target (once per input shape, on the first image of the batch): ReciproCAM and
   ActivationMap take the last call whose output is a CNN feature map ``(B, C, h, w)`` with
   ``1 < h < C`` and ``1 < w < C``; ViT-ReciproCAM the call of the last pre-norm transformer
   block (a call on ``(B, N, D)`` tokens whose first sub-call is a LayerNorm of the same tensor).
   A named ``target_layer`` is a module name (``named_modules``); its last call is the target.
3. A *record* pass runs the module on the batch (its output is the prediction), keeps the target
   call's output (ViT: the block's input and its LayerNorm's output) and the outputs of the
   calls that ended before the target started (only the outermost ones).
4. One *replay* per feature-map cell ``k``: the module runs again on the same batch, the calls
   before the target return their recorded outputs (copies, so in-place code cannot alter
   them), and the target call returns the feature map with every cell but ``k`` zeroed
   (ViT-ReciproCAM: the block runs on the tokens weighted by the 3 x 3 Gaussian around ``k``,
   class tokens kept, and its LayerNorm call returns the same weighting of its recorded output:
   the two tensors salvo's OpenVINO branch masks). Class ``c``'s score in replay ``k`` is the
   saliency of class ``c`` at cell ``k``.

Each replay has the batch of the input, so code such as ``x.view(batch_size, -1)`` in the head
sees the batch it expects, and the memory is one feature map per cell at a time, not a batch
of ``h * w`` copies. The per-call state lives in a thread-local context: one model may be called
from several threads at once.
"""

from __future__ import annotations

import copy
import difflib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from salvo._checks import check_flag, check_int
from salvo.common import SALIENCY_MAP_OUTPUT_NAME, Method, Task
from salvo.methods.white_box.graph import XAIInsertionError
from salvo.methods.white_box.vit_recipro_cam import gaussian_token_masks

__all__ = ["PREDICTION_OUTPUT_NAME", "TorchXAIModel", "insert_xai_torch"]

#: The key of the module's own output in what :class:`TorchXAIModel` returns.
PREDICTION_OUTPUT_NAME = "prediction"

_METHODS = (Method.RECIPROCAM, Method.VITRECIPROCAM, Method.ACTIVATIONMAP)
_local = threading.local()


# ------------------------------------------------------------------ the call bookkeeping


@dataclass
class _CallInfo:
    """One module call of a probe forward."""

    index: int  # call number in start order (0: the root module)
    module: torch.nn.Module
    size: int = 1  # calls in its subtree, itself included
    end: int = -1  # position in end order
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None
    first_child: int | None = None
    first_child_same_input: bool = False
    input: Any = None  # its first argument while it runs (compared with its first child's)


@dataclass(frozen=True)
class _Target:
    """Where the branch acts, for one input shape (call numbers of the probe)."""

    kind: str  # "cnn" or "vit"
    call: int  # the feature-map call (cnn) or the block call (vit)
    call_size: int
    name: str
    norm: int | None = None  # vit: the block's LayerNorm call
    norm_size: int = 1
    grid: tuple[int, int] = (0, 0)  # vit: patch grid (h, w)
    aux: int = 0  # vit: class/auxiliary tokens before the patches


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _detach_copy(value: Any) -> Any:
    """A copy of a call's output: tensors cloned, containers rebuilt, anything else as is."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_detach_copy(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_detach_copy(v) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _detach_copy(v)) for k, v in value.items())
    return value


def _versions(value: Any) -> list[int]:
    """The version counters of the tensors in a call's output (in-place edits bump them)."""
    if isinstance(value, torch.Tensor):
        return [value._version]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _versions(item)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in _versions(item)]
    return []


class _Probe:
    """Records every call of one forward (shapes, nesting, order)."""

    def __init__(self) -> None:
        self.calls: list[_CallInfo] = []
        self.stack: list[_CallInfo] = []
        self.ends = 0

    def call(self, module: torch.nn.Module, run: Callable[..., Any], args: tuple,
             kwargs: dict) -> Any:
        info = _CallInfo(len(self.calls), module)
        info.in_shape = _shape(args[0]) if args else None
        self.calls.append(info)
        if self.stack:
            parent = self.stack[-1]
            if parent.first_child is None:
                parent.first_child = info.index
                parent.first_child_same_input = bool(args) and args[0] is parent.input
        info.input = args[0] if args else None
        self.stack.append(info)
        try:
            out = run(*args, **kwargs)
        finally:
            self.stack.pop()
            info.input = None
        info.size = len(self.calls) - info.index
        info.end = self.ends
        self.ends += 1
        info.out_shape = _shape(out)
        return out


class _Record:
    """The record pass: keeps the outermost calls that ended before the target started, and
    what the branch needs from the target."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.counter = 0
        self.frames: list[list[tuple[int, int, torch.nn.Module, Any]]] = [[]]
        self.cache: dict[int, tuple[int, torch.nn.Module, Any]] | None = None
        self.feature: torch.Tensor | None = None  # cnn: target output; vit: block input
        self.norm_out: torch.Tensor | None = None
        self.modules: dict[int, torch.nn.Module] = {}

    def call(self, module: torch.nn.Module, run: Callable[..., Any], args: tuple,
             kwargs: dict) -> Any:
        index = self.counter
        self.counter += 1
        self.modules[index] = module
        t = self.target
        if index == t.call:
            self.cache = {i: (size, mod, out) for frame in self.frames
                          for i, size, mod, out in frame}
            self.frames = []
            if t.kind == "vit":
                self.feature = args[0] if args else None
        if self.cache is not None:  # at or after the target: nothing more to keep
            out = run(*args, **kwargs)
            if index == t.call and t.kind == "cnn":
                self.feature = out
            elif index == t.norm:
                self.norm_out = out
            return out
        self.frames.append([])
        try:
            out = run(*args, **kwargs)
        finally:
            done = self.frames.pop() if self.frames else []
            del done
        if self.frames:
            self.frames[-1].append((index, self.counter - index, module, out))
        return out


class _Replay:
    """A replay: recorded outputs before the target, substitutes at the target."""

    def __init__(self, cache: dict[int, tuple[int, torch.nn.Module, Any]], target: _Target,
                 output: torch.Tensor | None, block_input: torch.Tensor | None,
                 norm_out: torch.Tensor | None, copies: bool = False) -> None:
        self.cache = cache
        self.copies = copies
        self.target = target
        self.output = output
        self.block_input = block_input
        self.norm_out = norm_out
        self.counter = 0

    def call(self, module: torch.nn.Module, run: Callable[..., Any], args: tuple,
             kwargs: dict) -> Any:
        index = self.counter
        found = self.cache.get(index)
        if found is not None:
            size, recorded, out = found
            if recorded is not module:
                raise RuntimeError(
                    "the module's forward called its submodules in a different order on the same "
                    "input; salvo's PyTorch methods need a forward whose module calls depend on "
                    "the input's shape only"
                )
            self.counter += size
            return _detach_copy(out) if self.copies else out
        t = self.target
        if index == t.call and t.kind == "cnn":
            self.counter += t.call_size
            return self.output
        if index == t.norm:
            self.counter += t.norm_size
            return self.norm_out
        self.counter += 1
        if index == t.call:  # vit: the block runs on the weighted tokens
            args = (self.block_input, *args[1:])
        return run(*args, **kwargs)


class _Context:
    def __init__(self, owner: TorchXAIModel, worker: Any) -> None:
        self.owner = owner
        self.worker = worker


def _wrap(owner: TorchXAIModel, module: torch.nn.Module) -> None:
    """Give ``module`` (of ``owner``'s private copy) a forward that reports its calls."""
    original = module.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        ctx = getattr(_local, "ctx", None)
        if ctx is None or ctx.owner is not owner:
            return original(*args, **kwargs)
        return ctx.worker.call(module, original, args, kwargs)

    module.forward = forward  # an instance attribute: nn.Module.__call__ runs it


def _is_norm(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.LayerNorm) or "LayerNorm" in type(module).__name__


# ------------------------------------------------------------------ the model


class TorchXAIModel(torch.nn.Module):
    """A PyTorch module with a white-box XAI method: ``forward(x)`` returns
    ``{"prediction": ..., "saliency_map": ...}`` (build it with :func:`insert_xai_torch`, or
    ``salvo.insert_xai``).

    Parameters
    ----------
    model
        The user's module (deep-copied; the copy is put in eval mode; the original is never
        modified).
    method
        ``Method.RECIPROCAM``, ``Method.VITRECIPROCAM`` or ``Method.ACTIVATIONMAP``; ``None``:
        ViT-ReciproCAM when the first forward of an input shape finds transformer blocks (or
        ``target_layer`` is one), else ReciproCAM.
    target_layer
        A module name of ``model.named_modules()``: its last call is the target (ViT-ReciproCAM:
        a transformer block). ``None``: found automatically.
    embed_scaling
        Min-max scale each map to 0..255 and return uint8 (else float32).
    use_gaussian, cls_token, num_blocks
        ViT-ReciproCAM: 3 x 3 Gaussian neighbourhoods (else one token per copy), keep the class
        tokens in every copy, explain the input of the ``num_blocks``-th block from the end.

    Attributes
    ----------
    model
        The private copy that runs.
    has_xai
        Always ``True`` (the reference's marker; ``salvo.has_xai`` reads it).
    """

    #: Input shapes whose target is kept (least recently used dropped first).
    MAX_SHAPES = 8

    def __init__(self, model: torch.nn.Module, method: Method | None, target_layer: str | None = None,
                 embed_scaling: bool = True, *, use_gaussian: bool = True, cls_token: bool = True,
                 num_blocks: int = 1) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        self.method = method
        self.target_layer = target_layer
        self.embed_scaling = embed_scaling
        self.use_gaussian = use_gaussian
        self.cls_token = cls_token
        self.num_blocks = num_blocks
        self.has_xai = True
        self._names: dict[int, str] = {}
        for name, module in self.model.named_modules(remove_duplicate=False):
            self._names.setdefault(id(module), name or "<root>")
        seen: set[int] = set()
        for module in self.model.modules():
            if id(module) not in seen:
                seen.add(id(module))
                _wrap(self, module)
        if target_layer is not None:
            names = dict(self.model.named_modules(remove_duplicate=False))
            if target_layer not in names:
                close = difflib.get_close_matches(target_layer, list(names), n=5, cutoff=0.5)
                hint = f" Close names: {', '.join(map(repr, close))}." if close else ""
                raise ValueError(
                    f"target_layer {target_layer!r} is not a module of the model (a name of "
                    f"model.named_modules()).{hint}"
                )
            self._target_module: torch.nn.Module | None = names[target_layer]
        else:
            self._target_module = None
        self._targets: OrderedDict[tuple[int, ...], _Target] = OrderedDict()
        self._lock = threading.Lock()

    # -------------------------------------------------------------- plumbing
    def _run(self, worker: Any, x: torch.Tensor) -> Any:
        previous = getattr(_local, "ctx", None)
        _local.ctx = _Context(self, worker)
        try:
            return self.model(x)
        finally:
            _local.ctx = previous

    @property
    def _method_name(self) -> str:
        return "reciprocam" if self.method is None else self.method.value

    def extra_repr(self) -> str:
        method = "auto" if self.method is None else self.method.value
        return f"method={method}, target_layer={self.target_layer!r}"

    # -------------------------------------------------------------- the target
    def target_for(self, x: torch.Tensor) -> _Target:
        """The target for inputs of ``x``'s shape (found on ``x[:1]`` once per shape).

        Raises
        ------
        XAIInsertionError
            No target fits the method (the message asks for ``target_layer``).
        """
        key = tuple(x.shape[1:])
        with self._lock:
            found = self._targets.get(key)
            if found is not None:
                self._targets.move_to_end(key)
                return found
        probe = _Probe()
        self._run(probe, x[:1])
        target = self._choose(probe.calls)
        with self._lock:
            self._targets[key] = target
            while len(self._targets) > self.MAX_SHAPES:
                self._targets.popitem(last=False)
        return target

    def _choose(self, calls: list[_CallInfo]) -> _Target:
        if self.method is Method.VITRECIPROCAM:
            return self._choose_vit(calls)
        if self.method is None:  # automatic: transformer blocks make it ViT-ReciproCAM
            if self._target_module is None and any(self._is_block(calls, c) for c in calls):
                return self._choose_vit(calls)
            if self._target_module is not None:
                mine = [c for c in calls if c.module is self._target_module]
                if mine and self._is_block(calls, mine[-1]):
                    return self._choose_vit(calls)
        if self._target_module is not None:
            mine = [c for c in calls if c.module is self._target_module]
            if not mine:
                raise XAIInsertionError(
                    f"target_layer {self.target_layer!r} is not called by the model's forward")
            call = max(mine, key=lambda c: c.end)
            shape = call.out_shape
            if shape is None or len(shape) != 4:
                raise XAIInsertionError(
                    f"target_layer {self.target_layer!r} outputs {shape}; {self._method_name} "
                    "needs a (B, C, h, w) feature map")
            return _Target("cnn", call.index, call.size, self.target_layer or "")
        found = [c for c in calls[1:] if c.out_shape is not None and len(c.out_shape) == 4
                 and 1 < c.out_shape[2] < c.out_shape[1] and 1 < c.out_shape[3] < c.out_shape[1]]
        if not found:
            raise XAIInsertionError(
                "Could not find a target layer automatically: no module call outputs a CNN "
                "feature map (B, C, h, w) with 1 < h, w < C. Pass target_layer, the name (of "
                "model.named_modules()) of the module whose output to explain."
            )
        call = max(found, key=lambda c: c.end)
        return _Target("cnn", call.index, call.size, self._names.get(id(call.module), "?"))

    @staticmethod
    def _is_block(calls: list[_CallInfo], c: _CallInfo) -> bool:
        """A pre-norm transformer block call: (B, N, D) in and out, its first sub-call a
        LayerNorm of the same tensor."""
        return (c.in_shape is not None and len(c.in_shape) == 3 and c.out_shape == c.in_shape
                and c.first_child is not None and c.first_child_same_input
                and _is_norm(calls[c.first_child].module))

    def _choose_vit(self, calls: list[_CallInfo]) -> _Target:
        def is_block(c: _CallInfo) -> bool:
            return self._is_block(calls, c)

        if self._target_module is not None:
            mine = [c for c in calls if c.module is self._target_module]
            if not mine or not is_block(mine[-1]):
                raise XAIInsertionError(
                    f"target_layer {self.target_layer!r} is not a pre-norm transformer block (a "
                    "module on (B, N, D) tokens whose first call is a LayerNorm of its input)")
            block = mine[-1]
        else:
            blocks = [c for c in calls if is_block(c)]
            if not blocks:
                raise XAIInsertionError(
                    "Could not find transformer blocks (a module on (B, N, D) tokens whose first "
                    "call is a LayerNorm of its input). Pass target_layer, the name of the last "
                    "block.")
            if not 1 <= self.num_blocks <= len(blocks):
                raise ValueError(
                    f"num_blocks must be in [1, {len(blocks)}] for this model, got "
                    f"{self.num_blocks}")
            block = blocks[-self.num_blocks]
        assert block.in_shape is not None and block.first_child is not None
        _, num_tokens, dim = block.in_shape
        h, w, aux = self._grid(calls, num_tokens, dim)
        norm = calls[block.first_child]
        return _Target("vit", block.index, block.size, self._names.get(id(block.module), "?"),
                       norm=norm.index, norm_size=norm.size, grid=(h, w), aux=aux)

    @staticmethod
    def _grid(calls: list[_CallInfo], num_tokens: int, dim: int) -> tuple[int, int, int]:
        """Patch grid and auxiliary tokens: the patch embedding's grid (the first Conv2d call
        with ``dim`` output channels) when it fits, else a square grid."""
        for c in calls:
            if isinstance(c.module, torch.nn.Conv2d) and c.out_shape and len(c.out_shape) == 4:
                _, ch, h, w = c.out_shape
                if ch == dim and 0 < h * w <= num_tokens:
                    return h, w, num_tokens - h * w
                break
        for aux in (1, 0):
            s = math.isqrt(num_tokens - aux)
            if s > 1 and s * s == num_tokens - aux:
                return s, s, aux
        raise XAIInsertionError(
            f"Cannot tell the patch grid of {num_tokens} tokens; the model has no square patch "
            "grid.")

    # -------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the module and its XAI method on the batch ``x``.

        Returns
        -------
        dict
            ``"prediction"``: the module's output for ``x``; ``"saliency_map"``: ``(B,
            num_classes, h, w)`` (ReciproCAM, ViT-ReciproCAM) or ``(B, h, w)``
            (ActivationMap), uint8 with ``embed_scaling`` else float32.

        Raises
        ------
        TypeError
            ``x`` is not a tensor with a batch dimension.
        XAIInsertionError
            No target fits, or (ReciproCAM) the module's output is not ``(B, num_classes)``.
        """
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise TypeError(
                f"x must be a torch.Tensor with a batch dimension, got "
                f"{type(x).__name__}{tuple(x.shape) if isinstance(x, torch.Tensor) else ''}")
        with torch.no_grad():
            target = self.target_for(x)
            record = _Record(target)
            prediction = self._run(record, x)
            if record.cache is None or record.feature is None:
                raise XAIInsertionError(
                    f"the target call ({target.name!r}) did not run for an input of shape "
                    f"{tuple(x.shape)}")
            if self.method is Method.ACTIVATIONMAP:
                maps = self._activation_map(record.feature)
            else:
                maps = self._recipro(x, target, record, prediction)
            if self.embed_scaling:
                maps = _scale(maps)
        return {PREDICTION_OUTPUT_NAME: prediction, SALIENCY_MAP_OUTPUT_NAME: maps}

    @staticmethod
    def _activation_map(feature: torch.Tensor) -> torch.Tensor:
        if feature.ndim != 4:
            raise XAIInsertionError(
                f"ActivationMap needs a (B, C, h, w) feature map, got {tuple(feature.shape)}")
        return feature.float().mean(dim=1)

    def _recipro(self, x: torch.Tensor, target: _Target, record: _Record,
                 prediction: Any) -> torch.Tensor:
        if not isinstance(prediction, torch.Tensor) or prediction.ndim != 2:
            raise XAIInsertionError(
                f"{self._method_name} needs a module whose output is the class scores (B, "
                f"num_classes); it returned {_shape(prediction) or type(prediction).__name__}")
        assert record.cache is not None and record.feature is not None
        # Replays hand the recorded outputs back as they are (most are only passed on to the
        # next recorded call, which ignores its input); a forward that edits one of them in
        # place is caught by the tensors' version counters and explained again with copies.
        versions = {i: _versions(out) for i, (_, _, out) in record.cache.items()}
        scores = self._replays(x, target, record, copies=False)
        if any(_versions(out) != versions[i] for i, (_, _, out) in record.cache.items()):
            record = _Record(target)
            self._run(record, x)
            assert record.cache is not None and record.feature is not None
            scores = self._replays(x, target, record, copies=True)
        h, w = (record.feature.shape[2:] if target.kind == "cnn" else target.grid)
        stacked = torch.stack([s.float() for s in scores], dim=2)  # (B, K, h * w)
        return stacked.reshape(stacked.shape[0], stacked.shape[1], h, w)

    def _replays(self, x: torch.Tensor, target: _Target, record: _Record,
                 copies: bool) -> list[torch.Tensor]:
        """The class scores of each replay, cell by cell."""
        assert record.cache is not None and record.feature is not None
        scores = []
        if target.kind == "cnn":
            feature = record.feature
            if feature.ndim != 4:
                raise XAIInsertionError(
                    f"ReciproCAM needs a (B, C, h, w) feature map, got {tuple(feature.shape)}")
            _, _, h, w = feature.shape
            for k in range(h * w):
                masked = torch.zeros_like(feature)
                i, j = divmod(k, w)
                masked[:, :, i, j] = feature[:, :, i, j]
                scores.append(self._run(_Replay(record.cache, target, masked, None, None,
                                                copies), x))
        else:
            h, w = target.grid
            weights = torch.as_tensor(gaussian_token_masks(h, w, self.use_gaussian))
            tokens, norm_out = record.feature, record.norm_out
            if norm_out is None or not isinstance(norm_out, torch.Tensor):
                raise XAIInsertionError("the transformer block's LayerNorm did not run")
            for k in range(h * w):
                row = weights[k]
                scores.append(self._run(_Replay(
                    record.cache, target, None, self._weigh(tokens, row, target.aux),
                    self._weigh(norm_out, row, target.aux), copies), x))
        return scores

    def _weigh(self, tokens: torch.Tensor, row: torch.Tensor, aux: int) -> torch.Tensor:
        """Patch tokens weighted by ``row`` (h * w), class tokens kept (or zeroed)."""
        out = tokens.clone()
        out[:, aux:, :] *= row.to(tokens.device, tokens.dtype)[None, :, None]
        if not self.cls_token:
            out[:, :aux, :] = 0
        return out


def as_enum(value: Any, enum: type, argument: str) -> Any:
    """``value`` as a member of ``enum`` (a member, or its value in any case); a ValueError
    naming ``argument``, the value and the choices otherwise."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.lower())
        except ValueError:
            pass
    choices = ", ".join(m.name for m in enum)
    raise ValueError(f"{argument} must be one of {choices}; got {value!r}")


def _scale(maps: torch.Tensor) -> torch.Tensor:
    """Min-max each map over its last two axes (h, w) to 0..255 uint8:
    ``255 * (x - min) / (max - min + 1e-12)`` rounded half to even, as salvo's OpenVINO branch
    scales."""
    axes = (-2, -1)
    lo = maps.amin(dim=axes, keepdim=True)
    hi = maps.amax(dim=axes, keepdim=True)
    scaled = (maps - lo) * 255.0 / (hi - lo + 1e-12)
    return torch.clamp(torch.round(scaled), 0, 255).to(torch.uint8)


# ------------------------------------------------------------------ the entry point


def insert_xai_torch(model: torch.nn.Module, task: Task | str = Task.CLASSIFICATION,
                     explain_method: Method | str | None = None, target_layer: str | None = None,
                     embed_scaling: bool | None = True, **kwargs: Any) -> torch.nn.Module:
    """A copy of the PyTorch classifier ``model`` whose forward also returns saliency maps.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` mapping a batch ``(B, ...)`` to class scores ``(B, num_classes)``
        (any output for ActivationMap). Not modified (deep-copied).
    task
        ``Task.CLASSIFICATION`` (the only task of the PyTorch path).
    explain_method
        ``RECIPROCAM``, ``VITRECIPROCAM`` or ``ACTIVATIONMAP``; ``None``: ViT-ReciproCAM when the
        first forward finds pre-norm transformer blocks (a module on ``(B, N, D)`` tokens whose
        first call is a LayerNorm of them), else ReciproCAM.
    target_layer
        A name of ``model.named_modules()`` (its last call in a forward is the target); ``None``
        finds the target at the first forward of each input shape.
    embed_scaling
        Min-max scale each map to uint8 0..255 (``None`` means ``False``).
    **kwargs
        ViT-ReciproCAM: ``use_gaussian`` (True), ``cls_token`` (True), ``num_blocks`` or ``k``
        (1), ``final_norm`` (accepted; whatever follows the block always runs).

    Returns
    -------
    TorchXAIModel
        ``forward(x)`` -> ``{"prediction": ..., "saliency_map": ...}``. A module that already
        has ``has_xai`` set is returned as it is.

    Raises
    ------
    TypeError
        ``model`` is not a module, an unknown keyword, a bad ``target_layer`` type.
    ValueError
        A task other than classification, a method the PyTorch path does not have, an unknown
        module name.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if getattr(model, "has_xai", False):
        return model
    task = as_enum(task, Task, "task")
    if task is not Task.CLASSIFICATION:
        raise ValueError(f"PyTorch models are explained for classification only, got task "
                         f"{task.value!r}")
    if target_layer is not None and not isinstance(target_layer, str):
        raise TypeError(f"target_layer must be a module name (str) for a PyTorch model, got "
                        f"{target_layer!r} ({type(target_layer).__name__})")
    scaling = embed_scaling is not None and check_flag(embed_scaling, "embed_scaling")
    method = None if explain_method is None else as_enum(explain_method, Method,
                                                          "explain_method")
    if method is not None and method not in _METHODS:
        raise ValueError(f"explain_method {method.value!r} is not available for PyTorch models "
                         f"(choose {', '.join(m.value for m in _METHODS)})")
    vit_keys = {"use_gaussian", "cls_token", "num_blocks", "k", "final_norm"}
    unknown = sorted(set(kwargs) - vit_keys)
    if unknown or (kwargs and method not in (None, Method.VITRECIPROCAM)):
        bad = unknown or sorted(kwargs)
        raise TypeError(f"insert_xai for a PyTorch model got unexpected keyword argument(s) "
                        f"{', '.join(bad)}; ViT-ReciproCAM accepts {', '.join(sorted(vit_keys))}")
    k, num_blocks = kwargs.get("k"), kwargs.get("num_blocks")
    if k is not None and num_blocks is not None and k != num_blocks:
        raise ValueError(f"k and num_blocks name the same setting; got {k} and {num_blocks}")
    blocks = check_int(num_blocks if num_blocks is not None else (1 if k is None else k),
                       "num_blocks", minimum=1)
    check_flag(kwargs.get("final_norm", True), "final_norm")
    return TorchXAIModel(model, method, target_layer, scaling,
                         use_gaussian=check_flag(kwargs.get("use_gaussian", True),
                                                 "use_gaussian"),
                         cls_token=check_flag(kwargs.get("cls_token", True), "cls_token"),
                         num_blocks=blocks)
