"""Test support stays out of the runtime API: the test hooks live in ``salvo.testing.hooks``,
the stub of the compiled module lists every binding, and ``Accumulator.maps`` (what
``on_check`` callbacks read) checks its argument."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import salvo
from salvo import _native
from salvo.methods.black_box.rise import Accumulator

PACKAGE = Path(salvo.__file__).parent
STUB = PACKAGE / "_native.pyi"
HOOKS = ("_rise_grid", "_parallel_selftest", "direct_minimize")


def _stub_names() -> set[str]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_stub_lists_every_binding_and_nothing_else():
    bound = {n for n in dir(_native) if not n.startswith("__")}
    assert _stub_names() == bound


def test_the_stub_and_the_type_marker_sit_in_the_package():
    # pyproject's wheel.packages ships the whole folder, so what is here is in the wheel
    assert STUB.is_file()
    assert (PACKAGE / "py.typed").is_file()


def test_test_hooks_are_private_or_in_salvo_testing():
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert public == {"HAS_TARGET_CLONES", "fill_masked", "build_simd_level",
                      "runtime_simd_level", "rise_masks", "rise_hash", "accumulate_weighted"}
    from salvo.kernels import direct

    assert not hasattr(direct, "direct_minimize")
    from salvo.testing import hooks

    assert set(hooks.__all__) == {"direct_minimize", "parallel_selftest", "rise_grid"}


def test_no_runtime_module_calls_a_test_hook():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "testing":
            continue
        text = path.read_text(encoding="utf-8")
        for hook in HOOKS:
            if re.search(rf"\b{re.escape(hook)}\b", text):
                offenders.append(f"{path.relative_to(PACKAGE)}: {hook}")
        for node in ast.walk(ast.parse(text)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(PACKAGE)}: imports {n}" for n in names
                          if n == "salvo.testing" or n.startswith("salvo.testing.")]
    assert offenders == []


def test_hooks_give_what_the_kernels_use():
    from salvo.kernels import rise_masks
    from salvo.testing.hooks import direct_minimize, parallel_selftest, rise_grid

    grid, dy, dx = rise_grid(5, 3, 4, 0.5, 16, 16)
    assert grid.shape == (4, 4) and grid.dtype == np.uint8 and set(np.unique(grid)) <= {0, 1}
    assert 0 <= dy < 4 and 0 <= dx < 4
    # an all-off grid gives an all-zero mask, whatever the shift
    off = [i for i in range(200) if not rise_grid(5, i, 4, 0.1, 16, 16)[0].any()]
    assert off, "prob 0.1 on 16 cells leaves some grid empty within 200 masks"
    assert not rise_masks(5, off[0], 1, 4, 0.1, 16, 16).any()
    assert parallel_selftest(10, -1, 2) == 10
    with pytest.raises(RuntimeError, match="task 4 failed"):
        parallel_selftest(10, 4, 2)
    best = direct_minimize(lambda p: ((p - 0.25) ** 2).sum(axis=1), np.zeros(2), np.ones(2), 60)
    assert best.nfev == 60 and np.abs(best.x - 0.25).max() < 0.05
    with pytest.raises(ValueError, match="one search"):
        direct_minimize(lambda p: p[:, 0], np.zeros((2, 2)), np.ones((2, 2)), 10)


def _accumulator() -> Accumulator:
    rng = np.random.default_rng(0)
    acc = Accumulator(2, 9)
    acc.add((rng.random((40, 9)) < 0.5).astype(np.float32), rng.random((40, 2)))
    acc.finish()
    return acc


@pytest.mark.parametrize("estimator", ["centred", "PLAIN", "", None, 1])
def test_accumulator_maps_names_a_bad_estimator(estimator):
    with pytest.raises(ValueError, match=r"estimator must be one of \('centered', 'plain'\)"):
        _accumulator().maps(estimator)


def test_accumulator_maps_of_both_estimators_differ_by_the_mask_sum_times_the_mean():
    acc = _accumulator()
    plain = acc.maps("plain").astype(np.float64)
    centered = acc.maps("centered").astype(np.float64)
    mean = acc.score_sum / acc.count
    np.testing.assert_allclose(plain - centered, mean[:, None] * acc.mask_sum[None, :],
                               rtol=1e-5, atol=1e-5)
