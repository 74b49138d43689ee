"""Black-box methods: they only run the model, many times, through the batched engine.

Each method is a class constructed as ``Cls(model, postprocess_fn, device_name, **engine_kwargs)``
with an ``explain(x, targets, *, label_names, progress, **params) -> BlackBoxResult`` method
(see :class:`salvo.methods.black_box.base.BlackBoxResult`). :data:`REGISTRY` maps
``(Method, Task)`` to the import path of the class.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import openvino as ov

from salvo.common import Method, Task
from salvo.methods.black_box.base import ENGINE_KEYS, BlackBoxResult

__all__ = ["ENGINE_KEYS", "REGISTRY", "BlackBoxResult", "BlackBoxRunner"]

#: (method, task) -> "module:Class"
REGISTRY: dict[tuple[Method, Task], str] = {
    (Method.RISE, Task.CLASSIFICATION): "salvo.methods.black_box.rise:RISE",
    (Method.RISE, Task.DETECTION): "salvo.methods.black_box.drise:DRISE",
    (Method.AISE, Task.CLASSIFICATION): "salvo.methods.black_box.aise.base:AISEClassification",
    (Method.AISE, Task.DETECTION): "salvo.methods.black_box.aise.base:AISEDetection",
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
    """Owns a black-box method compiled for each set of engine keywords a call asked for.

    Safe to share between threads: the method objects are built under a lock, and a call keeps
    the object it was given even if other calls with other engine keywords build new ones. The
    :attr:`MAX_COMPILED` most recently used engine settings stay compiled.
    """

    #: Engine settings kept compiled at once (least recently used dropped first).
    MAX_COMPILED = 4

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
        self._impls: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def impl(self, engine_kwargs: dict[str, Any]) -> Any:
        """The method object, compiled for these engine keywords (cached)."""
        key = tuple(sorted((k, repr(v)) for k, v in engine_kwargs.items()))
        with self._lock:
            impl = self._impls.get(key)
            if impl is None:
                impl = self.cls(self.model, self.postprocess_fn, self.device_name,
                                **engine_kwargs)
                self._impls[key] = impl
                while len(self._impls) > self.MAX_COMPILED:
                    self._impls.popitem(last=False)
            else:
                self._impls.move_to_end(key)
            return impl
