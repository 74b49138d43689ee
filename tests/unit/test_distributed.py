"""salvo.distributed without a cluster: Ray stays out of ``import salvo``, a clear error when
Ray is missing, the ``--ray`` options and their checks, the sizing of the actor pool, dataset
row names and :func:`salvo.distributed.explain_dataset`'s argument checks. (The runs themselves
are in tests/distributed, on a real cluster.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import salvo
from salvo.cli.explain import check_explain_flags
from salvo.cli.parser import build_parser
from salvo.distributed.cluster import RayOptions, plan_pool
from salvo.distributed.run import dataset_name
from salvo.errors import UsageError

# child processes import the salvo these tests import (a checkout's or an installed one)
SALVO_PARENT = str(Path(salvo.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SALVO_PARENT,
                                                    os.environ.get("PYTHONPATH", "")])}


def python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=ENV, timeout=300, check=False)


def test_ray_is_imported_only_when_a_ray_run_starts():
    done = python(
        "import sys\n"
        "import salvo, salvo.distributed, salvo.cli\n"
        "from salvo.cli.parser import build_parser\n"
        "build_parser().parse_args(['explain', 'm', 'x', '--out', 'o', '--ray'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow')))\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


NO_RAY = """
import sys
sys.modules["ray"] = None  # import ray raises ImportError
from salvo.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ray_missing_is_a_one_line_error_with_the_install_command(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    done = python(NO_RAY, "explain", "zoo:efficientnet_lite0", str(tmp_path / "a.png"),
                  "--out", str(tmp_path / "out"), "--ray")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "pip install 'salvo-xai[ray]'" in done.stderr and "--ray" in done.stderr
    assert not (tmp_path / "out").exists(), "nothing was created"
    api = python("import sys\nsys.modules['ray'] = None\n"
                 "from salvo.distributed import explain_dataset\n"
                 "try:\n    explain_dataset('zoo:efficientnet_lite0', sys.argv[1], sys.argv[2])\n"
                 "except Exception as exc:\n    print(type(exc).__name__, exc)\n",
                 str(tmp_path / "a.png"), str(tmp_path / "out"))
    assert api.stdout.startswith("UsageError") and "salvo-xai[ray]" in api.stdout


def parse(*argv: str):
    args = build_parser().parse_args(["explain", "m.xml", *argv])
    args.argv = list(argv)
    return args


def test_the_ray_options_parse():
    assert parse("x.jpg", "--out", "o").ray is None
    assert parse("x.jpg", "--out", "o", "--ray").ray == ""
    args = parse("x.jpg", "--ray=head:6379", "--out", "o", "--ray-workers", "3",
                 "--ray-cpus", "0.5", "--ray-batch", "4")
    assert RayOptions.from_args(args) == RayOptions("head:6379", 3, 0.5, 4)
    assert RayOptions.from_args(parse("x.jpg", "--out", "o", "--ray")) == RayOptions()
    for address in ("auto", "local", "ray://head:10001", "10.0.0.1:6379", "[::1]:6379"):
        assert RayOptions.from_args(parse("x.jpg", "--out", "o", "--ray", address)).address \
            == address


@pytest.mark.parametrize(("argv", "message"), [
    (["--ray-workers", "2"], "--ray-workers is for --ray runs"),
    (["--ray-cpus", "1"], "--ray-cpus is for --ray runs"),
    (["--ray", "--ray-workers", "0"], "--ray-workers must be >= 1, got 0"),
    (["--ray", "--ray-batch", "0"], "--ray-batch must be >= 1, got 0"),
    (["--ray", "--ray-cpus", "-1"], "--ray-cpus must be >= 0, got -1.0"),
])
def test_bad_ray_options_are_named(argv, message):
    with pytest.raises(UsageError, match=message):
        check_explain_flags(parse("x.jpg", "--out", "o", *argv))


def test_an_image_taken_as_the_address_is_refused(tmp_path):
    image = tmp_path / "b.jpg"
    image.write_bytes(b"x")
    args = parse("a.jpg", "--out", "o", "--ray", str(image))
    assert args.ray == str(image), "argparse takes the word after --ray as its ADDRESS"
    with pytest.raises(UsageError, match="put --ray after the images, or write --ray=ADDRESS"):
        check_explain_flags(args)
    with pytest.raises(UsageError, match="expected a Ray address"):
        RayOptions.from_args(parse("a.jpg", "--out", "o", "--ray", "not an address"))


def test_an_output_uri_is_refused():
    with pytest.raises(UsageError, match="--out 's3://bucket/maps' is a URI"):
        check_explain_flags(parse("x.jpg", "--out", "s3://bucket/maps", "--ray"))


class FakeConnection:
    def __init__(self, *cpus: float) -> None:
        self._nodes = [{"Alive": True, "Resources": {"CPU": c}} for c in cpus] + [
            {"Alive": False, "Resources": {"CPU": 64}}]

    def nodes(self):
        return [n for n in self._nodes if n["Alive"]]


def test_the_pool_has_one_actor_per_node_and_several_batches_each():
    pool = plan_pool(RayOptions(), FakeConnection(2, 2), 36)
    assert (pool.workers, pool.batch, pool.cpus, pool.note) == (2, 5, 1.0, "")  # ceil(36 / 8)
    assert plan_pool(RayOptions(), FakeConnection(8, 8, 8), 10_000).batch == 16, "capped"
    assert plan_pool(RayOptions(), FakeConnection(2, 2, 2, 2), 3).workers == 3, \
        "no more actors than batches"
    assert plan_pool(RayOptions(), FakeConnection(4), None).batch == 8
    assert plan_pool(RayOptions(workers=3, batch=2, cpus=0.5), FakeConnection(2), 100) \
        .workers == 3


def test_a_pool_that_cannot_be_placed_is_refused():
    with pytest.raises(UsageError, match=r"3 Ray actors of 1 CPU\(s\) do not fit .*\(1, 1 CPUs\)"):
        plan_pool(RayOptions(workers=3), FakeConnection(1, 1), 100)
    with pytest.raises(UsageError, match="do not fit"):
        plan_pool(RayOptions(cpus=4), FakeConnection(2, 2), 100)
    assert plan_pool(RayOptions(workers=5, cpus=0), FakeConnection(1), 100).workers == 5


def test_a_dataset_on_small_nodes_leaves_its_read_tasks_a_cpu():
    pool = plan_pool(RayOptions(), FakeConnection(1, 1), None, reading=True)
    assert pool.cpus == 0 and "reserve no CPU" in pool.note
    assert plan_pool(RayOptions(), FakeConnection(1, 1), 20).cpus == 1, \
        "files are no read stage: one CPU each is fine"
    assert plan_pool(RayOptions(), FakeConnection(2, 1), None, reading=True).cpus == 1
    warned = plan_pool(RayOptions(cpus=1), FakeConnection(1, 1), None, reading=True)
    assert warned.cpus == 1 and "waits for ever" in warned.note


def test_dataset_rows_are_named_by_name_else_path():
    assert dataset_name("sub/a.jpg", "/data/x.jpg", None) == "sub/a.jpg"
    assert dataset_name(None, "/data/photos/sub/a.jpg", "/data/photos") == "sub/a.jpg"
    assert dataset_name(None, "/data/photos/sub/a.jpg", "/data/photos/") == "sub/a.jpg"
    assert dataset_name(None, "/elsewhere/a.jpg", "/data/photos") == "elsewhere/a.jpg"
    assert dataset_name(None, "s3://bucket/a/b.jpg", None) == "bucket/a/b.jpg"
    assert dataset_name("", "/x/y.png", None) == "x/y.png"
    with pytest.raises(ValueError, match="needs a 'name' or a 'path'"):
        dataset_name(None, None, None)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"num_maskz": 3}, TypeError, "unexpected keyword argument 'num_maskz'"),
    ({"out": "x"}, TypeError, "multiple values|unexpected keyword argument 'out'"),
    ({"num_masks": "many"}, TypeError, "num_masks must be an int, got str 'many'"),
    ({"num_masks": True}, TypeError, "num_masks must be an int, got bool True"),
    ({"save_raw": 1}, TypeError, "save_raw must be True or False, got 1"),
    ({"method": "gradcam"}, ValueError, "method must be one of"),
    ({"max_size": -1}, ValueError, "max_size: expected a whole number >= 0"),
    ({"workers": 1.5}, TypeError, "workers must be an int, got float 1.5"),
    ({"param": [3]}, TypeError, "param must be 'KEY=VALUE' strings"),
])
def test_explain_dataset_names_a_bad_argument(tmp_path, kwargs, error, message):
    from salvo.distributed import explain_dataset

    with pytest.raises(error, match=message):
        explain_dataset("zoo:efficientnet_lite0", str(tmp_path), str(tmp_path / "out"),
                        **kwargs)
    assert not (tmp_path / "out").exists()


def test_explain_dataset_takes_paths_or_a_dataset(tmp_path):
    from salvo.distributed import explain_dataset

    with pytest.raises(TypeError, match="images must be a path, a list of paths or a "
                                        "ray.data.Dataset, got int"):
        explain_dataset("zoo:efficientnet_lite0", 3, tmp_path / "out")
    with pytest.raises(ValueError, match="images is empty"):
        explain_dataset("zoo:efficientnet_lite0", [], tmp_path / "out")
    with pytest.raises(ValueError, match="root is for a ray.data.Dataset"):
        explain_dataset("zoo:efficientnet_lite0", [str(tmp_path)], tmp_path / "out", root="/")
