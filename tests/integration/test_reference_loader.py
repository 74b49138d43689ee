"""The one loader of the reference toolkit (openvino-xai 1.1): it imports on today's OpenVINO and
leaves OpenVINO's namespace as it found it.

Each check runs in a fresh interpreter: ``sys.modules`` is process-wide, and another test may
have imported the toolkit already.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import salvo

#: Where the salvo under test was imported from (a checkout or an installed wheel), so that the
#: child process imports the same one.
PYTHON = Path(salvo.__file__).resolve().parent.parent

needs_reference = pytest.mark.skipif(
    importlib.util.find_spec("openvino_xai") is None,
    reason="the reference toolkit openvino-xai is not installed "
           "(pip install --no-deps openvino-xai==1.1.0)")


def _run(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(PYTHON), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_NAMESPACE = """
import importlib, json, sys
import openvino
def namespace():
    names = sorted(k for k in sys.modules if k.startswith("openvino.runtime"))
    attribute = hasattr(openvino, "runtime")
    try:
        importlib.import_module("openvino.runtime")
        importable = True
    except ImportError:
        importable = False
    return {"in_sys_modules": names, "attribute": attribute, "importable": importable}
"""


@needs_reference
@pytest.mark.parametrize("loader", ["salvo.testing.reference", "salvo.cli.reference"])
def test_loading_the_reference_leaves_openvino_as_it_was(loader):
    got = _run(_NAMESPACE + f"""
before = namespace()
from {loader} import load_reference
xai = load_reference()
after = namespace()
print(json.dumps({{"before": before, "after": after, "name": xai.__name__}}))
""")
    assert got["name"] == "openvino_xai"
    assert got["after"] == got["before"]
    assert got["after"]["in_sys_modules"] == []


@needs_reference
def test_the_reference_explains_after_the_stand_ins_are_gone():
    """Its modules imported lazily (white-box and black-box methods, metrics) were imported
    while the stand-ins were there: building and calling its Explainers works afterwards."""
    got = _run("""
import json, sys, logging
import numpy as np
from salvo.testing.reference import load_reference
from salvo.testing.planted import planted_cnn, planted_image
xai = load_reference()
logging.getLogger("openvino_xai").setLevel(logging.ERROR)
pm = planted_cnn(size=56, static_batch=False)
x = planted_image(pm, "random", seed=1).astype(np.float32)
white = xai.Explainer(model=pm.model, task=xai.Task.CLASSIFICATION,
                      explain_mode=xai.explainer.ExplainMode.WHITEBOX,
                      explain_method=xai.Method.ACTIVATIONMAP)
black = xai.Explainer(model=pm.model, task=xai.Task.CLASSIFICATION,
                      postprocess_fn=lambda o: o[0],
                      explain_mode=xai.explainer.ExplainMode.BLACKBOX,
                      explain_method=xai.Method.RISE)
w = white(x, targets=-1, resize=False, colormap=False)
b = black(x, targets=0, num_masks=8, resize=False, colormap=False)
print(json.dumps({"white": len(w.saliency_map), "black": sorted(map(str, b.saliency_map)),
                  "runtime_left": [k for k in sys.modules if k.startswith("openvino.runtime")]}))
""")
    assert got["white"] == 1 and got["black"] == ["0"]
    assert got["runtime_left"] == []


def test_without_the_reference_the_loader_says_how_to_install_it(monkeypatch):
    from salvo.cli import reference as cli_reference
    from salvo.testing import reference

    monkeypatch.setattr(reference.importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino_xai" else
                        importlib.util.find_spec(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps openvino-xai==1\.1\.0"):
        reference.load_reference()
    assert cli_reference.load_reference() is None
