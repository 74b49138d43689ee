"""Black-box methods: they only run the model, many times, through the batched engine.

Each method is a class constructed as ``Cls(model, postprocess_fn, device_name, **engine_kwargs)``
with an ``explain(x, targets, *, label_names, progress, **params) -> BlackBoxResult`` method
(see :class:`salvo.methods.blackbox.base.BlackBoxResult`). :data:`REGISTRY` maps
``(Method, Task)`` to the import path of the class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import openvino as ov

from salvo.common import Method, Task
from salvo.methods.blackbox.base import ENGINE_KEYS, BlackBoxResult

__all__ = ["ENGINE_KEYS", "REGISTRY", "BlackBoxResult", "BlackBoxRunner"]

#: (method, task) -> "module:Class"
REGISTRY: dict[tuple[Method, Task], str] = {
    (Method.RISE, Task.CLASSIFICATION): "salvo.methods.blackbox.rise:RISE",
    (Method.RISE, Task.DETECTION): "salvo.methods.blackbox.drise:DRISE",
    (Method.AISE, Task.CLASSIFICATION): "salvo.methods.blackbox.aise:AISEClassification",
    (Method.AISE, Task.DETECTION): "salvo.methods.blackbox.aise:AISEDetection",
}


def method_class(method: Method, task: Task) -> type:
    """The class implementing ``method`` for ``task``."""
    try:
        path = REGISTRY[(method, task)]
    except KeyError:
        raise NotImplementedError(
            f"black-box method {method.name} for {task.name} is not available in this version "
            f"of salvo (available: {[f'{m.name}/{t.name}' for m, t in REGISTRY]})"
        ) from None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class BlackBoxRunner:
    """Owns a black-box method and its compiled engine; recompiles only when the engine
    keywords change between calls."""

    def __init__(
        self,
        method: Method,
        model: ov.Model,
        task: Task,
        postprocess_fn: Callable[[Any], Any],
        device_name: str,
    ) -> None:
        self.cls = method_class(method, task)
        self.method = method
        self.model = model
        self.task = task
        self.postprocess_fn = postprocess_fn
        self.device_name = device_name
        self._impl: Any = None
        self._engine_key: tuple | None = None

    def impl(self, engine_kwargs: dict[str, Any]) -> Any:
        """The method object, compiled for these engine keywords (cached)."""
        key = tuple(sorted((k, repr(v)) for k, v in engine_kwargs.items()))
        if self._impl is None or key != self._engine_key:
            self._impl = self.cls(self.model, self.postprocess_fn, self.device_name,
                                  **engine_kwargs)
            self._engine_key = key
        return self._impl
