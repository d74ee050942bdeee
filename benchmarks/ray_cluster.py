"""A real Ray cluster of several nodes on this machine (`ray start --head` plus `ray start
--address` for each further node, one CPU each, token authentication on), as the tests and
`ansim bench crawl --engine ray` run it. Each node keeps its replicas of the banks in its
own folder (the settings' `index_cache_dir` in the environment it was started with), as machines
that share nothing but the store would.

A driver joins it with `env` in its environment (the cluster's token): `joined()` sets it
for this process."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ansim.benchmarks.processes import PeakMemory, in_child
from ansim.settings import variable

RAY = Path(sys.executable).parent / "ray"
STARTED = "Ray runtime started"
START_TIMEOUT_S = 180


class ClusterStartFailed(RuntimeError):
    pass


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class LocalRayCluster:
    """`ray start --block` processes, each in its own process group: SIGTERM stops a node
    with everything it started, SIGKILL of the group is a node dying at once. Nodes are
    named "head", "second", "node3", ..."""

    def __init__(
        self, nodes: int = 2, object_store_mb: int = 200, env: dict[str, str] | None = None
    ) -> None:
        """`env`: more of the nodes' environment (e.g. the store's `PGPASSWORD`, which a
        crawl's calls do not carry)."""
        # Short: Ray's socket paths live under it and are limited to ~107 characters.
        self.root = Path(tempfile.mkdtemp(prefix="ansim-ray-", dir="/tmp"))
        self.object_store_mb = object_store_mb
        self.env = {
            **os.environ,
            # A cluster that runs code it is sent takes only callers holding its token.
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            # A dead node is noticed in seconds, not the default half minute.
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
            **(env or {}),
        }
        self.port, dashboard = free_ports(2)
        self.address = f"127.0.0.1:{self.port}"
        names = ["head", "second"] + [f"node{i + 1}" for i in range(2, nodes)]
        self.index_cache = {name: self.root / f"{name}-indexes" for name in names[:nodes]}
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self._start(
            "head",
            ["--head", "--port", str(self.port), "--temp-dir", str(self.root / "t")]
            + ["--include-dashboard", "false", "--dashboard-port", str(dashboard)],
        )
        for name in names[1:nodes]:
            self.add_node(name)

    @property
    def second(self) -> subprocess.Popen[bytes] | None:
        return self.nodes.get("second")

    def _start(self, name: str, args: list[str]) -> None:
        # The node's actors inherit its environment: their own replica folder.
        env = {**self.env, variable("index_cache_dir"): str(self.index_cache[name])}
        node_manager, object_manager, metrics, agent, agent_grpc, runtime_env = free_ports(6)
        log_path = self.root / f"{name}-{time.monotonic_ns()}.log"
        # Through this interpreter: the nodes run this tree's code whatever the script says.
        command = [sys.executable, str(RAY), "start", "--block", "--num-cpus", "1"]
        command += ["--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        command += ["--object-store-memory", str(self.object_store_mb << 20)]
        command += ["--node-manager-port", str(node_manager)]
        command += ["--object-manager-port", str(object_manager)]
        command += ["--metrics-export-port", str(metrics)]
        command += ["--dashboard-agent-listen-port", str(agent)]
        command += ["--dashboard-agent-grpc-port", str(agent_grpc)]
        command += ["--runtime-env-agent-port", str(runtime_env)]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command + args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
            )
        self.nodes[name] = process
        deadline = time.monotonic() + START_TIMEOUT_S
        while STARTED not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text(errors="replace")[-3000:]
                self.close()
                raise ClusterStartFailed(f"ray start {name} failed:\n{log}")
            time.sleep(0.5)

    def add_node(self, name: str = "second") -> None:
        self.index_cache.setdefault(name, self.root / f"{name}-indexes")
        self._start(name, ["--address", self.address])

    def kill_node(self, name: str = "second") -> None:
        process = self.nodes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)  # the node's raylet and workers at once
        process.wait()

    def close(self) -> None:
        # Further nodes first, the head last.
        for name in sorted(self.nodes, key=lambda n: n == "head"):
            process = self.nodes.pop(name)
            if process.poll() is not None:
                continue
            process.terminate()  # `ray start --block` stops what it started
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    @contextmanager
    def joined(self) -> Iterator[str]:
        """This process's environment holds the cluster's token (for `ray.init`) while
        inside; yields the address to join."""
        names = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED")
        saved = {name: os.environ.get(name) for name in names}
        os.environ.update({name: self.env[name] for name in names})
        try:
            yield self.address
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def in_child_on_local_cluster(
    nodes: int, function: Callable[..., Any], *args: Any
) -> tuple[Any, PeakMemory]:
    """`function(*args, address)` in a fresh process joined to a local cluster of `nodes`
    one-CPU nodes started for it (Ray reads the cluster's token at its first import, so
    the driver must be a process started after the cluster); its result, and the nodes'
    CPU and memory sampled while it ran. The cluster is stopped after."""
    cluster = LocalRayCluster(nodes=nodes)
    try:
        roots = [process.pid for process in cluster.nodes.values()]
        with cluster.joined() as address, PeakMemory(roots=roots) as usage:
            result = in_child(function, *args, address)
    finally:
        cluster.close()
    return result, usage
