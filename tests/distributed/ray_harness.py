"""Running real Ray clusters in tests without touching anything else on the machine.

Ray listens on every interface and advertises the machine's network address, even when told
``127.0.0.1``. The tests therefore run every Ray process inside a network namespace they create
with only the loopback interface up (``ip netns add``; iproute2, as root), where the only address
is ``127.0.0.1``. :class:`NetNamespace` makes one, runs commands in it, lists its processes and
deletes it; :class:`TestCluster` starts a multi-node ``ray.cluster_utils.Cluster`` in it (in a
child process, :data:`CLUSTER_SCRIPT`) and stops it with ``Cluster.shutdown()``, then kills
whatever process is left in the namespace, by its id, and deletes the namespace — also when
starting fails. Nothing here ever runs ``ray stop`` (which kills Ray processes by name, other
users' included).

A cluster never runs outside its namespace: without ``ip`` (Debian: ``apt-get install
iproute2``) or the rights to add a namespace (root), :class:`NetNamespace` raises and the tests
fail, saying which.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import salvo

#: The folder the tests' salvo is imported from (a checkout's ``python/`` or site-packages):
#: every process the tests start, Ray's workers included, imports the same salvo.
SALVO_PARENT = str(Path(salvo.__file__).resolve().parents[1])
CLUSTER_SCRIPT = Path(__file__).with_name("ray_cluster_main.py")


def child_environment() -> dict[str, str]:
    """The environment of every process the tests start: the tests' salvo first, Ray's usage
    statistics off, no ``RAY_ADDRESS`` from outside."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SALVO_PARENT, env.get("PYTHONPATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.pop("RAY_ADDRESS", None)
    return env


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


class NetNamespace:
    """A network namespace of this test run (``salvo-test-PID-XXXXXX``) with only ``lo`` up.

    Raises
    ------
    RuntimeError
        ``ip`` is not installed, or the namespace cannot be made (not root) or set up; nothing
        is left behind.
    """

    def __init__(self) -> None:
        self.name = f"salvo-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.available = False
        if shutil.which("ip") is None:
            raise RuntimeError("the Ray tests run their clusters in a network namespace and "
                               "need iproute2's ip: apt-get install iproute2")
        made = _run(["ip", "netns", "add", self.name])
        if made.returncode != 0:
            raise RuntimeError("the Ray tests run their clusters in a network namespace: "
                               f"ip netns add {self.name} failed (root is needed): "
                               f"{made.stderr.strip()}")
        self.available = True
        up = _run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"])
        if up.returncode != 0:
            self.delete()
            raise RuntimeError(f"could not bring lo up in {self.name}: {up.stderr.strip()}")

    @property
    def prefix(self) -> list[str]:
        """What a command is prefixed with to run inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def pids(self) -> list[int]:
        """The processes inside the namespace."""
        if not self.available:
            return []
        listed = _run(["ip", "netns", "pids", self.name])
        return [int(p) for p in listed.stdout.split()]

    def kill_all(self) -> list[int]:
        """SIGKILL every process inside the namespace (by id); return their ids."""
        killed = []
        for _ in range(5):
            pids = [p for p in self.pids() if p != os.getpid()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
        return killed

    def delete(self) -> None:
        """Delete the namespace (once)."""
        if self.available:
            _run(["ip", "netns", "delete", self.name])
            self.available = False


class TestCluster:
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` nodes with ``cpus`` CPUs each, in its own
    network namespace; :meth:`close` stops it and removes everything it started."""

    __test__ = False  # not a test class

    def __init__(self, folder: Path, nodes: int = 2, cpus: int = 1, timeout: float = 120) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.env = child_environment()
        self.info_path = folder / "cluster.json"
        self.log_path = folder / "cluster.log"
        self.process: subprocess.Popen | None = None
        self.node_pids: list[int] = []
        self.address = ""
        self.netns = NetNamespace()
        try:
            self._start(nodes, cpus, timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, nodes: int, cpus: int, timeout: float) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [*self.netns.prefix, sys.executable, str(CLUSTER_SCRIPT), str(nodes), str(cpus),
             str(self.info_path)],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.info_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the Ray cluster did not start:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray cluster did not start in {timeout} s:\n{self.log()}")
            time.sleep(0.2)
        info = json.loads(self.info_path.read_text())
        self.address = info["address"]
        self.node_pids = info["pids"]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    @property
    def prefix(self) -> list[str]:
        return self.netns.prefix

    def pids(self) -> list[int]:
        """The processes in the cluster's namespace (its nodes, workers, drivers)."""
        return self.netns.pids()

    def run(self, args: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
        """Run ``python ARGS`` next to the cluster (in its namespace); kill it by id on
        timeout."""
        proc = self.start(args, **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"python {' '.join(args)} did not end in {timeout} s:\n"
                                 f"{out}\n{err}") from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def start(self, args: list[str], **kwargs) -> subprocess.Popen:
        """Start ``python ARGS`` in the namespace, in a session of its own (a signal sent to
        it reaches it alone)."""
        return subprocess.Popen([*self.prefix, sys.executable, *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, **kwargs)

    def close(self) -> list[int]:
        """``Cluster.shutdown()`` (the child process does it when its stdin closes; a cluster
        that never came up is killed at once), then kill any process left in the namespace, by
        id, and delete the namespace. Returns the ids of the processes killed that way."""
        if self.process is not None:
            try:
                if not self.address:  # still starting: it would not read its stdin
                    self.process.kill()
                elif self.process.stdin is not None:
                    self.process.stdin.close()
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            if self.process.stdin is not None and not self.process.stdin.closed:
                self.process.stdin.close()
        killed = self.netns.kill_all()
        self.netns.delete()
        return killed
