"""A multi-node Ray cluster for the tests (run by ``ray_harness.TestCluster``, inside its network
namespace): ``python ray_cluster_main.py NODES CPUS INFO_FILE``.

Starts ``ray.cluster_utils.Cluster`` with NODES nodes of CPUS CPUs each (every node on
127.0.0.1), writes ``{"address", "pids"}`` to INFO_FILE once all nodes are up, and runs until its
standard input closes or it gets SIGTERM; then ``Cluster.shutdown()``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from ray.cluster_utils import Cluster


def main() -> None:
    nodes, cpus, info = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node_args = {"num_cpus": cpus, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True,
                      head_node_args={**node_args, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        pids = [proc.process.pid for node in cluster.list_all_nodes()
                for procs in node.all_processes.values() for proc in procs]
        tmp = info + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"address": cluster.address, "pids": pids}, fh)
        os.replace(tmp, info)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
