"""Test support stays out of the runtime API (the test hooks live in ``salvo.testing.hooks``,
the stub of the compiled module lists every binding, ``Accumulator.maps`` -- what ``on_check``
callbacks read -- checks its argument), and the suite's skip policy holds: a test may skip only
for a missing optional package, named with its install command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import salvo
from salvo import _native, zoo
from salvo.methods.black_box.rise import Accumulator
from support import check_skip_reason, missing_reason

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
                      "runtime_simd_level", "rise_masks", "rise_hash", "accumulate_weighted",
                      "balanced_block_length"}
    from salvo.kernels import direct

    assert not hasattr(direct, "direct_minimize")
    from salvo.testing import hooks

    assert set(hooks.__all__) == {"direct_minimize", "parallel_selftest", "rise_grid"}


#: The one runtime use of salvo.testing: ``salvo bench --compare-reference`` loads the reference
#: toolkit through the loader the tests and benchmarks use (its ``openvino.runtime`` stand-ins
#: exist only while the toolkit imports), rather than keeping a second loader in the runtime.
ALLOWED_TESTING_IMPORTS = {("cli/reference.py", "salvo.testing.reference")}


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
            where = path.relative_to(PACKAGE).as_posix()
            offenders += [f"{where}: imports {n}" for n in names
                          if (n == "salvo.testing" or n.startswith("salvo.testing."))
                          and (where, n) not in ALLOWED_TESTING_IMPORTS]
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


# ------------------------------------------------------------------------- the skip policy


def test_a_skip_reason_must_name_a_missing_package_and_its_command():
    assert check_skip_reason(missing_reason("no_such_module_x", "pip install no-such-x")) is None
    # the zoo's own error reads the same
    error = zoo.MissingZooPackageError("no_such_module_x", "pip install --no-deps x==1", "The zoo")
    assert check_skip_reason(str(error)) is None
    for reason in ("root ignores modes", "GPU is present here", "AISE is not implemented yet",
                   "could not import 'no_such_module_x': No module named 'no_such_module_x'",
                   "needs the optional package 'no_such_module_x', which is not installed."):
        assert "must name a missing optional package" in check_skip_reason(reason), reason
    installed = check_skip_reason(missing_reason("numpy", "pip install numpy"))
    assert "'numpy' as missing, but it is installed" in installed


def test_a_run_fails_every_test_that_skips_for_another_reason(pytester):
    pytester.makeconftest("from support import pytest_make_collect_report, "
                          "pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(
        test_tests="""
        import pytest
        from support import missing_reason, require

        def test_environment():
            pytest.skip("root ignores modes")

        @pytest.mark.skipif(True, reason="a slow machine")
        def test_marker():
            pass

        @pytest.fixture
        def broken():
            try:
                raise RuntimeError("a regression")
            except RuntimeError as exc:
                pytest.skip(str(exc))

        def test_fixture_turns_an_error_into_a_skip(broken):
            pass

        def test_names_an_installed_package():
            pytest.skip(missing_reason("numpy", "pip install numpy"))

        def test_missing_package():
            require("no_such_module_x", "pip install no-such-x")

        def test_installed_package_runs():
            require("numpy", "pip install numpy")

        @pytest.mark.xfail(reason="a known bug", strict=True)
        def test_expected_failure():
            assert False
        """,
        test_module_skip="""
        import pytest

        pytest.importorskip("no_such_module_x")

        def test_never_collected():
            pass
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA", "--continue-on-collection-errors")
    # a skip at setup (a marker, a fixture) becomes an error, one in the test a failure
    result.assert_outcomes(passed=1, skipped=1, failed=2, xfailed=1, errors=3)
    for line in ("*skip policy*root ignores modes*", "*skip policy*a slow machine*",
                 "*skip policy*a regression*", "*'numpy' as missing, but it is installed*",
                 "*skip policy*could not import 'no_such_module_x'*"):
        result.stdout.fnmatch_lines([line])


# ------------------------------------------------------------------------------ OpenCV


def test_salvo_depends_on_the_headless_opencv_only():
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    opencv = [r for r in wanted if r.lower().startswith("opencv")]
    assert opencv == ["opencv-python-headless>=4.8"]


@pytest.mark.parametrize("installed, conflict", [
    ({"opencv-python-headless": "5.1.0.95"}, False),
    ({"opencv-python-headless": "5.1.0.95", "opencv-python": "4.13.0.92"}, True),
    ({"opencv-contrib-python": "4.13.0.92"}, False),
    ({}, False),
])
def test_info_names_the_opencv_packages_and_a_clash(monkeypatch, installed, conflict):
    from importlib import metadata

    from salvo import _info

    def version(name):
        if name in installed:
            return installed[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_info.metadata, "version", version)
    info = _info.build_info()
    assert info["opencv"] == (", ".join(f"{k} {v}" for k, v in installed.items()) or None)
    assert ("opencv_conflict" in info) == conflict
    if conflict:
        assert "pip uninstall -y opencv-python-headless opencv-python" in info["opencv_conflict"]
