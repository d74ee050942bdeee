"""How long `ansim` takes to start: `--help`, `--version`, a group's help, and commands that
match nothing (listing cases, queue items, references, hosts; verifying the audit chain),
each run as a fresh process N times.

Wall time depends on how busy the machine is; CPU time (user + system of the child) much
less, so both are reported. Target: <= 0.5 s for every command here (ARCHITECTURE.md).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ansim.settings import variable

TARGET_S = 0.5

# (what it shows, arguments, environment overrides). The home is an initialised, empty one.
COMMANDS: list[tuple[str, list[str], dict[str, str]]] = [
    ("version", ["--version"], {}),
    ("help", ["--help"], {}),
    ("help, plain (no rich)", ["--help"], {"TYPER_USE_RICH": "0"}),
    ("group help", ["case", "--help"], {}),
    ("command help", ["scan", "--help"], {}),
    ("case list", ["case", "list"], {}),
    ("queue list", ["queue", "list"], {}),
    ("ref list", ["ref", "list"], {}),
    ("host list", ["host", "list"], {}),
    ("audit verify", ["audit", "verify"], {}),
]


@dataclass
class Timing:
    name: str
    command: str
    runs: int
    wall_median_s: float
    wall_min_s: float
    cpu_median_s: float
    within_target: bool


def ansim_executable() -> str:
    return str(Path(sys.executable).parent / "ansim")


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run_startup_benchmark(runs: int = 5) -> list[Timing]:
    """Times every command `runs` times (after one untimed warm-up run of each)."""
    ansim = ansim_executable()
    with tempfile.TemporaryDirectory(prefix="ansim-startup-") as home:
        env = {**os.environ, variable("home"): str(Path(home) / "home")}
        env.pop(variable("db_url"), None)
        subprocess.run([ansim, "init"], env=env, capture_output=True, check=True, timeout=300)
        timings = []
        for name, args, extra in COMMANDS:
            argv, run_env = [ansim, *args], {**env, **extra}
            _run_once(argv, run_env)
            samples = [_run_once(argv, run_env) for _ in range(runs)]
            walls, cpus = [w for w, _ in samples], [c for _, c in samples]
            timings.append(
                Timing(
                    name=name,
                    command="ansim " + " ".join(args),
                    runs=runs,
                    wall_median_s=round(statistics.median(walls), 3),
                    wall_min_s=round(min(walls), 3),
                    cpu_median_s=round(statistics.median(cpus), 3),
                    within_target=statistics.median(walls) <= TARGET_S,
                )
            )
    return timings


def as_rows(timings: list[Timing]) -> list[dict[str, object]]:
    return [asdict(t) for t in timings]
