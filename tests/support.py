"""What the tests share besides fixtures: constants, the planted models' postprocess, the one
way to skip (for a missing optional package, naming it and its install command) and the check
that every skip is such a skip. ``import support`` works from every test module
(pyproject's pytest ``pythonpath``); the fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

#: ``precision=`` / ``inference_precision=`` for results that must be reproducible.
F32 = "f32"
#: The same as an OpenVINO compile config.
F32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
#: ImageNet's "espresso", the top-1 class of the coffee photo.
ESPRESSO = 967

#: The install command of the reference toolkit (its declared dependencies pin an old OpenVINO).
REFERENCE_INSTALL = "pip install --no-deps openvino-xai==1.1.0"

#: How a skip names what is missing: the words of :class:`salvo.zoo.MissingZooPackageError`.
_MISSING = re.compile(
    r"needs the optional package '(?P<module>[A-Za-z_][\w.]*)', which is not installed\. "
    r"Install it with: (?P<command>pip install \S.*)"
)


def logits(outputs: Any) -> Any:
    """The planted models' (and the zoo classifiers') postprocess: the first output, as is."""
    return outputs[0]


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False


def missing_reason(module: str, command: str, what: str = "This test") -> str:
    """The skip reason for a missing optional package (what :func:`check_skip_reason` accepts).

    Parameters
    ----------
    module
        The importable module name.
    command
        The shell command that installs it (starts with ``pip install``).
    what
        What needs it.
    """
    return (f"{what} needs the optional package {module!r}, which is not installed. "
            f"Install it with: {command}")


def require(module: str, command: str, what: str = "This test") -> None:
    """Skip the calling test (or, at a module's top, the module) unless ``module`` is
    installed; the reason names it and the command that installs it."""
    if not is_installed(module):
        pytest.skip(missing_reason(module, command, what), allow_module_level=True)


def require_zoo(key: str) -> None:
    """Skip unless the optional zoo wheel of ``key`` (:data:`salvo.zoo.ZOO_PACKAGES`) is
    installed."""
    from salvo import zoo

    require(zoo.ZOO_MODULES[key], zoo.zoo_install_command([key]), f"The zoo model {key!r}")


def reference_toolkit() -> types.ModuleType:
    """Import the reference toolkit (openvino-xai 1.1) on today's OpenVINO, or skip.

    openvino-xai 1.1 imports ``openvino.runtime``, which OpenVINO 2026 removed (it re-exported
    the top-level API): modules under the old names point at the current ones. Tests only;
    salvo never patches OpenVINO.
    """
    require("openvino_xai", REFERENCE_INSTALL, "Comparing with the reference toolkit")
    import openvino
    import openvino.opset10
    import openvino.utils.data_helpers.wrappers as wrappers

    for name, target in [
        ("openvino.runtime", openvino),
        ("openvino.runtime.opset10", openvino.opset10),
        ("openvino.runtime.utils", openvino.utils),
        ("openvino.runtime.utils.data_helpers", openvino.utils.data_helpers),
        ("openvino.runtime.utils.data_helpers.wrappers", wrappers),
    ]:
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
        module.__path__ = []  # a package, so that submodules import
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
    return importlib.import_module("openvino_xai")


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Run the block without root's power to ignore file modes.

    As root, the effective user and group become ``nobody``'s (65534) for the block and root's
    again after it (the real ids stay root's, so that is allowed); as any other user nothing
    changes. Files the block must reach need to be readable by others: make them before.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


# ------------------------------------------------------------------------- the skip policy


def check_skip_reason(reason: str) -> str | None:
    """Why a skip reason breaks the policy, or ``None`` when it keeps it.

    A test may skip only because an optional package is missing: the reason must say so in
    the words of :func:`missing_reason` (``... needs the optional package 'name', which is not
    installed. Install it with: pip install ...``), and that package must really be missing.
    """
    found = _MISSING.search(reason)
    if found is None:
        return ("a skip must name a missing optional package and its install command "
                "(support.require / support.missing_reason), got: " + repr(reason))
    module = found["module"]
    if is_installed(module):
        return f"the skip names {module!r} as missing, but it is installed: {reason!r}"
    return None


def _skip_text(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _enforce(report: Any, where: str) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    problem = check_skip_reason(_skip_text(report.longrepr))
    if problem is not None:
        report.outcome = "failed"
        report.longrepr = f"skip policy ({where}): {problem}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Every test skipped at setup or call must keep :func:`check_skip_reason`, else it fails."""
    outcome = yield
    _enforce(outcome.get_result(), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """The same for a module skipped as it is collected (``pytest.importorskip`` at the top)."""
    outcome = yield
    _enforce(outcome.get_result(), collector.nodeid)
