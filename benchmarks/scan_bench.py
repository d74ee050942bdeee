"""`ansim bench scan`: the full robust scan of one folder, with one worker, with the
default (one per core) and optionally through Ray (`--engine ray`), beside a plain
single-process pdqhash loop and imagehash's pHash over the same files in the same run.

Each ansim scan runs in its own scratch home with the same few references registered (so
matching has banks to search), counts its worker start-up (imports, the descriptor model)
in its time as an analyst would wait for it, and records every file as `ansim scan` does.
Each scan starts its own forkserver, so the second scan does not inherit the first one's
imports. CPU seconds count this process and every worker (reaped through the forkserver).
"""

from __future__ import annotations

import multiprocessing.forkserver
import os
import resource
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ansim.casework.files import expand_paths
from ansim.detector.hashing import HashOptions
from ansim.detector.sniff import IMAGE_MIMES, sniff_file
from ansim.pipeline import intake, scanning
from ansim.pipeline.workers import default_workers
from ansim.pipeline.workspaces import init_workspace
from ansim.settings import variable
from ansim.store.home import Home
from PIL import Image

REFERENCES = 5


def image_files(folder: Path, limit: int) -> list[Path]:
    files = [p for p in expand_paths([folder]) if sniff_file(p).mime in IMAGE_MIMES]
    return files[:limit]


def resized_copies(files: list[Path], folder: Path, long_side: int) -> list[Path]:
    """The files re-encoded as a forum dump holds photos: JPEG (quality 90), scaled (up or
    down, Lanczos) so that their long side is `long_side` pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for number, path in enumerate(files):
        copy = folder / f"{number:04d}-{path.stem}.jpg"
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        scale = long_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb.resize(size, Image.LANCZOS).save(copy, quality=90)
        copies.append(copy)
    return copies


def plain_pdqhash(files: list[Path]) -> None:
    """The naive peer: decode at full size, PDQ of the pixels, nothing else."""
    import pdqhash

    for path in files:
        with Image.open(path) as image:
            pdqhash.compute(np.asarray(image.convert("RGB")))


def imagehash_phash(files: list[Path]) -> None:
    import imagehash

    for path in files:
        with Image.open(path) as image:
            imagehash.phash(image)


@contextmanager
def scratch_workspace(root: Path, references: list[Path]) -> Any:
    home = Home(root=root, db_url=f"sqlite:///{root / 'ansim.db'}")
    workspace, _ = init_workspace(home)
    previous = os.environ.get(variable("home"))
    os.environ[variable("home")] = str(root)
    try:
        from ansim.casework import cases

        case_id = cases.open_case(workspace, "other")
        intake.add_reference_files(workspace, case_id, references, HashOptions())
        yield workspace
    finally:
        if previous is None:
            os.environ.pop(variable("home"), None)
        else:
            os.environ[variable("home")] = previous


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def _cpu_seconds() -> float:
    """This process's CPU and its reaped children's (the forkserver, and through it the
    workers, once it is stopped)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _stop_forkserver() -> None:
    """Stop multiprocessing's forkserver (private API: the stdlib offers no public one), so
    that the next scan starts its own and pays its imports, and this one's CPU, its
    workers' included, is reaped into this process's children."""
    server = multiprocessing.forkserver._forkserver
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()


def timed_cpu(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (this process and its workers) and the result."""
    _stop_forkserver()
    cpu = _cpu_seconds()
    seconds, result = timed(run)
    _stop_forkserver()
    return seconds, _cpu_seconds() - cpu, result


def ray_scan_row(
    root: Path, files: list[Path], references: list[Path], address: str
) -> tuple[dict[str, Any], list[tuple[str, int, str, float]]]:
    """In a child that joins the cluster at `address` (Ray reads the cluster's token when
    it is first imported): the scan through Ray actors, its wall and CPU seconds here."""
    with scratch_workspace(root, references) as workspace:
        cpu = _cpu_seconds()
        seconds, report = timed(
            lambda: scanning.scan_paths(workspace, files, engine="ray", address=address)
        )
        cpu = _cpu_seconds() - cpu
    row = {"seconds": seconds, "driver_cpu_s": cpu, "errors": report.errors}
    row["matches"] = len(report.matches)
    return row, _findings(report)


def _findings(report: scanning.ScanReport) -> list[tuple[str, int, str, float]]:
    return sorted((m.location, m.reference_id, m.signal, m.distance) for m in report.matches)


def ray_scan(
    out_dir: Path, files: list[Path], references: list[Path], nodes: int
) -> tuple[dict[str, Any], list[tuple[str, int, str, float]]]:
    """The scan on a local cluster of `nodes` one-CPU nodes started for it; CPU seconds
    are the driver's and the nodes' (actors, raylets, the head's services)."""
    from ansim.benchmarks.ray_cluster import in_child_on_local_cluster

    (row, findings), usage = in_child_on_local_cluster(
        nodes, ray_scan_row, out_dir / "home-ray", files, references
    )
    row["cluster_cpu_s"] = round(usage.children_cpu_s, 2)
    row["cpu_s"] = row["driver_cpu_s"] + usage.children_cpu_s
    return row, findings


def run_scan_bench(
    folder: Path,
    out_dir: Path,
    limit: int,
    workers: int | None = None,
    ray_nodes: int = 0,
    long_side: int | None = None,
) -> dict[str, Any]:
    """`ray_nodes` > 0 adds the scan through Ray actors on a local cluster of that many
    one-CPU nodes (its start-up not counted: a cluster is up before an analyst scans).
    `long_side`: every run reads JPEG copies of the images at that long side instead
    (`resized_copies`, made before any run is timed)."""
    files = image_files(folder, limit)
    if not files:
        raise ValueError(f"no images under {folder}")
    if long_side is not None:
        files = resized_copies(files, out_dir / f"photos-{long_side}px", long_side)
    workers = workers or default_workers()
    references = files[:REFERENCES]
    rows: dict[str, dict[str, Any]] = {}
    seconds, cpu, _ = timed_cpu(lambda: plain_pdqhash(files))
    rows["pdqhash loop (1 process, full decode, PDQ only)"] = {"seconds": seconds, "cpu_s": cpu}
    seconds, cpu, _ = timed_cpu(lambda: imagehash_phash(files))
    rows["imagehash pHash (1 process)"] = {"seconds": seconds, "cpu_s": cpu}
    findings: dict[str, list[tuple[str, int, str, float]]] = {}
    for count in sorted({1, workers}):
        label = f"ansim scan --workers {count} (robust: PDQ, descriptor, ORB; recorded)"
        first: list[float] = []
        with scratch_workspace(out_dir / f"home-{count}", references) as workspace:
            started = time.perf_counter()

            def recorded(*_args: Any, started: float = started, first: list = first) -> None:
                if not first:
                    first.append(time.perf_counter() - started)

            seconds, cpu, report = timed_cpu(
                lambda ws=workspace, n=count, on_item=recorded: scanning.scan_paths(
                    ws, files, workers=n, on_item=on_item
                )
            )
        rows[label] = {
            "seconds": seconds,
            "cpu_s": cpu,
            "first_file_s": round(first[0], 2) if first else None,
            "errors": report.errors,
            "matches": len(report.matches),
        }
        findings[label] = _findings(report)
    if ray_nodes:
        label = f"ansim scan --engine ray ({ray_nodes} local nodes of 1 CPU)"
        rows[label], findings[label] = ray_scan(out_dir, files, references, ray_nodes)
    baseline = rows["pdqhash loop (1 process, full decode, PDQ only)"]["seconds"]
    for row in rows.values():
        row["images_per_s"] = round(len(files) / row["seconds"], 2)
        row["images_per_cpu_s"] = round(len(files) / row["cpu_s"], 2)
        row["vs_pdqhash_loop"] = round(baseline / row["seconds"], 3)
        row["seconds"] = round(row["seconds"], 2)
        row["cpu_s"] = round(row["cpu_s"], 2)
    return {
        "folder": str(folder),
        "long_side": long_side,
        "images": len(files),
        "cores": default_workers(),
        "workers": workers,
        "references": len(references),
        "same_findings": all(f == next(iter(findings.values())) for f in findings.values()),
        "rows": rows,
        "findings": next(iter(findings.values())),
    }
