"""Black-box methods: they only run the model, many times, through the batched engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openvino as ov

from salvo.common import Method, Task
from salvo.methods.blackbox.base import ENGINE_KEYS

__all__ = ["BlackBoxRunner", "ENGINE_KEYS"]


class BlackBoxRunner:
    """Owns a black-box method and its compiled engine; recompiles only when engine keywords
    change between calls."""

    def __init__(
        self,
        method: Method,
        model: ov.Model,
        task: Task,
        postprocess_fn: Callable[[Any], Any],
        device_name: str,
    ) -> None:
        if method != Method.RISE:
            raise NotImplementedError(
                f"black-box method {method.name} is not available in this version of salvo "
                "(RISE is)"
            )
        if task != Task.CLASSIFICATION:
            raise NotImplementedError(
                f"black-box {method.name} for {task.name} is not available in this version of "
                "salvo"
            )
        self.method = method
        self.model = model
        self.task = task
        self.postprocess_fn = postprocess_fn
        self.device_name = device_name
        self._impl: Any = None
        self._engine_key: tuple | None = None

    def impl(self, engine_kwargs: dict[str, Any], progress: bool = True) -> Any:
        """The method object, compiled for these engine keywords (cached)."""
        from salvo.methods.blackbox.rise import RISE

        key = tuple(sorted((k, repr(v)) for k, v in engine_kwargs.items()))
        if self._impl is None or key != self._engine_key:
            self._impl = RISE(self.model, self.postprocess_fn, self.device_name,
                              progress=progress, **engine_kwargs)
            self._engine_key = key
        self._impl.progress = progress
        return self._impl
