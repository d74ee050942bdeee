"""Crash-proof per-item work: hostile files, budgets, and workers killed mid-item."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ansim.casework import cases
from ansim.detector.errors import MediaError
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import ROBUST_OPTION
from ansim.pipeline import intake, scanning
from ansim.pipeline.workers import (
    WORKER_LOST,
    Budgets,
    CrashProofExecutor,
    ItemBudget,
    WorkerLost,
    WorkerPool,
    budgets_from_table,
    load_budgets,
)
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import ScannedItem
from PIL import Image
from sqlalchemy import select

from tests.helpers import photo_like

# PDQ alone: these tests are about the workers, and no worker need load the descriptor model.
PDQ_ONLY = HashOptions(extra={ROBUST_OPTION: False})


def malformed_tiff(path: Path) -> Path:
    """A valid TIFF whose next-IFD offset points far past the end: Pillow 13 raises
    TypeError("Missing dimensions"), not one of the errors it documents (found by fuzzing)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    entries = struct.unpack_from("<H", data, ifd)[0]
    struct.pack_into("<I", data, ifd + 2 + 12 * entries, 0x07000000)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A decompression bomb: ~80 KB on disk, 9000x9000 = 81 megapixels decoded."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("L", (9000, 9000)).save(path, optimize=True)
    return path.read_bytes()


def hostile_files(folder: Path, bomb_png: bytes) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"good": photo_like(folder / "good.jpg", seed=1)}
    files["bomb"] = folder / "bomb.png"
    files["bomb"].write_bytes(bomb_png)
    whole = files["good"].read_bytes()
    files["truncated"] = folder / "truncated.jpg"
    files["truncated"].write_bytes(whole[: len(whole) // 3])
    files["tiff"] = malformed_tiff(folder / "fuzzed.tif")
    files["empty"] = folder / "empty.jpg"
    files["empty"].write_bytes(b"")
    files["wrong_extension"] = folder / "photo.mp4"  # a PNG named as a video
    Image.open(photo_like(folder / "other.jpg", seed=2)).save(files["wrong_extension"], "PNG")
    (folder / "other.jpg").unlink()
    files["random"] = folder / "random.jpg"
    files["random"].write_bytes(np.random.default_rng(3).bytes(5000))
    return files


def test_bomb_is_small_on_disk(bomb_png: bytes) -> None:
    assert len(bomb_png) < 100_000


@pytest.mark.parametrize("workers", [0, 2])
def test_hostile_files_are_per_item_errors(
    ansim_home: Path, tmp_path: Path, bomb_png: bytes, workers: int
) -> None:
    workspace, _ = init_workspace()
    files = hostile_files(tmp_path / "dump", bomb_png)
    report = scanning.scan_paths(workspace, [tmp_path / "dump"], options=PDQ_ONLY, workers=workers)
    errors = {Path(f["path"]).name: f["error"] for f in report.failures}
    assert report.scanned == len(files)
    assert "81,000,000 pixels, over the limit of 50,000,000" in errors["bomb.png"]
    assert "corrupt or truncated" in errors["truncated.jpg"]
    assert errors["fuzzed.tif"] == "decoder failed on this image (TypeError: Missing dimensions)"
    assert "empty" in errors["empty.jpg"]
    assert "unsupported content" in errors["random.jpg"]
    assert set(errors) == {"bomb.png", "truncated.jpg", "fuzzed.tif", "empty.jpg", "random.jpg"}
    with workspace.session() as session:
        recorded = dict(session.execute(select(ScannedItem.location, ScannedItem.modality)).all())
    assert recorded[str(files["wrong_extension"])] == "image"
    assert recorded[str(files["good"])] == "image"
    assert recorded[str(files["tiff"])] is None


def test_ref_add_survives_a_fuzzed_tiff(ansim_home: Path, tmp_path: Path) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    good = photo_like(tmp_path / "a.jpg", seed=5)
    results = intake.add_reference_files(
        workspace, case_id, [malformed_tiff(tmp_path / "b.tif"), good], PDQ_ONLY, workers=1
    )
    by_name = {Path(r.path).name: r for r in results}
    assert "TypeError" in (by_name["b.tif"].error or "")
    assert by_name["a.jpg"].reference_id is not None


def test_memory_budget_refuses_what_the_pixel_cap_let_through(
    ansim_home: Path, tmp_path: Path, bomb_png: bytes
) -> None:
    """RLIMIT_AS: with the pixel cap raised, the 81 MP bomb still cannot take the memory."""
    workspace, _ = init_workspace()
    files = hostile_files(tmp_path / "dump", bomb_png)
    budgets = Budgets(image_max_pixels=200_000_000, memory_bytes={"image": 48 << 20})
    report = scanning.scan_paths(
        workspace, [files["bomb"], files["good"]], options=PDQ_ONLY, workers=1, budgets=budgets
    )
    [failure] = report.failures
    assert failure["path"] == str(files["bomb"])
    assert failure["error"] == "image needed more memory than its budget of 48 MiB; refused"
    assert report.scanned == 2  # the same worker went on with the next file


def big_photo(path: Path) -> Path:
    """A 4000x4000 PNG: small on disk, a few hundred ms to decode."""
    ramp = np.linspace(0, 255, 4000, dtype=np.uint8)
    Image.fromarray(np.add.outer(ramp, ramp // 2).astype(np.uint8)).save(path)
    return path


def test_worker_killed_mid_item_is_replaced_and_retried_next_scan(
    ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    folder = tmp_path / "dump"
    folder.mkdir()
    victim = big_photo(folder / "big.png")
    others = [photo_like(folder / f"p{i}.jpg", seed=10 + i) for i in range(3)]
    killed: list[int] = []

    def kill_on_big(path: Path, pid: int) -> None:
        if path == victim and len(killed) < kills_wanted:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    budgets = Budgets(max_item_kills=2)
    kills_wanted = 1
    report = scanning.scan_paths(
        workspace, [folder], options=PDQ_ONLY, workers=2, budgets=budgets, on_start=kill_on_big
    )
    assert killed
    [failure] = report.failures
    assert failure["path"] == str(victim)
    assert failure["error"].startswith(f"{WORKER_LOST}: the worker was killed by SIGKILL")
    assert report.scanned == 4  # every other file went on

    # The next scan of the folder tries it again (it failed only because its worker died).
    kills_wanted = 2
    report = scanning.scan_paths(
        workspace, [folder], options=PDQ_ONLY, workers=1, budgets=budgets, on_start=kill_on_big
    )
    assert len(killed) == 2 and len(report.failures) == 1

    # Two workers lost on it: it is not tried again, and the others still are.
    report = scanning.scan_paths(workspace, [folder], options=PDQ_ONLY, workers=1, budgets=budgets)
    [failure] = report.failures
    assert failure["error"] == "not tried again: hashing it cost 2 workers (the limit is 2)"
    assert report.scanned == 1 + len(others)
    with workspace.session() as session:
        errors = session.execute(
            select(ScannedItem.error).where(ScannedItem.location == str(victim))
        ).scalars()
        assert sum(1 for e in errors if e and e.startswith(WORKER_LOST)) == 2


def test_findings_equal_with_one_worker_and_several(
    ansim_home: Path, tmp_path: Path, bomb_png: bytes
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    (tmp_path / "refs").mkdir()
    refs = [photo_like(tmp_path / "refs" / f"r{i}.jpg", seed=20 + i) for i in range(3)]
    intake.add_reference_files(workspace, case_id, refs, PDQ_ONLY, workers=2)
    dump = tmp_path / "dump"
    dump.mkdir()
    for i, ref in enumerate(refs):
        Image.open(ref).resize((300, 225)).save(dump / f"copy{i}.jpg", quality=80)
    for i in range(3):
        photo_like(dump / f"other{i}.jpg", seed=40 + i)
    hostile_files(dump / "bad", bomb_png)

    def findings(workers: int) -> tuple[list[tuple[str, int]], list[str]]:
        report = scanning.scan_paths(
            workspace, [dump], dry_run=True, options=PDQ_ONLY, workers=workers
        )
        return (
            sorted((m.location, m.reference_id) for m in report.matches),
            sorted(f["path"] for f in report.failures),
        )

    one = findings(1)
    assert len(one[0]) == 3 and len(one[1]) == 5
    # 0: in this process; 1 and 2: matched here, hashed in workers; 3: matched in workers.
    assert findings(2) == one == findings(0) == findings(scanning.PARENT_MATCHES_FOR_WORKERS + 1)


# --- the pool itself -------------------------------------------------------------------


def sleep_work(seconds: float, budget: ItemBudget) -> float:
    budget.begin("text")
    time.sleep(seconds)
    return seconds


def spin_work(seconds: float, budget: ItemBudget) -> str:
    budget.begin("page")
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "spun"


def test_pool_kills_a_hung_item_and_goes_on() -> None:
    budgets = Budgets(wall_s={"text": 1.0})
    with WorkerPool(sleep_work, 1, budgets=budgets) as pool:
        outcomes = {o.key: o for o in pool.run([("hang", 60.0), ("quick", 0.0)])}
        assert pool.replaced == 1
    assert outcomes["hang"].lost == "text ran past its wall-clock budget of 1 s"
    assert outcomes["quick"].value == 0.0


def test_pool_cpu_budget_is_an_item_error() -> None:
    budgets = Budgets(cpu_s={"page": 1.0}, wall_s={"page": 60.0})
    with WorkerPool(spin_work, 1, budgets=budgets) as pool:
        outcomes = {o.key: o for o in pool.run([("spin", 30.0), ("short", 0.0)])}
        assert pool.replaced == 0  # the worker itself survived its item's budget
    assert outcomes["spin"].error == "page used up its CPU budget of 1 s; refused"
    assert outcomes["short"].value == "spun"


def started_at(seconds: float, budget: ItemBudget) -> float:
    """When (wall clock) the worker started this item, after sleeping `seconds`."""
    started = time.time()
    time.sleep(seconds)
    return started


def test_a_freed_worker_starts_its_next_item_while_the_caller_handles_a_result() -> None:
    handled_at: dict[str, float] = {}
    with WorkerPool(started_at, 1) as pool:
        outcomes = []
        for outcome in pool.run([("a", 0.0), ("b", 0.0), ("c", 0.0)]):
            assert outcome is not None
            time.sleep(0.3)  # the caller recording what came back
            handled_at[outcome.key] = time.time()
            outcomes.append(outcome)
    started = {o.key: o.value for o in outcomes}
    assert [o.key for o in outcomes] == ["a", "b", "c"]
    # The worker took b (and c) before the caller was done with a (and b).
    assert started["b"] < handled_at["a"] and started["c"] < handled_at["b"]


def test_pool_ticks_while_no_item_ends() -> None:
    with WorkerPool(sleep_work, 1) as pool:
        outcomes = list(pool.run([("slow", 1.0)], tick_s=0.05))
    assert outcomes[-1] is not None and outcomes[-1].value == 1.0
    assert None in outcomes[:-1]
    with WorkerPool(sleep_work, 1) as pool:
        assert None not in list(pool.run([("slow", 0.2)]))  # no ticks unless asked


def test_a_scanned_file_is_reported_once_its_batch_committed(
    ansim_home: Path, tmp_path: Path
) -> None:
    """Files are committed in batches; `on_item` sees a file only once it is in the store,
    seen from another connection, whichever process matched it."""
    workspace, _ = init_workspace()
    folder = tmp_path / "dump"
    folder.mkdir()
    for i in range(4):
        photo_like(folder / f"p{i}.jpg", seed=60 + i)
    (folder / "empty.jpg").write_bytes(b"")
    for scans_before, workers in enumerate((0, 1, scanning.PARENT_MATCHES_FOR_WORKERS + 1)):
        reported: list[Path] = []

        def committed(
            path: Path,
            matches: object,
            error: str | None,
            reported: list[Path] = reported,
            scans_before: int = scans_before,
        ) -> None:
            with workspace.store.read_session() as session:
                rows = session.execute(
                    select(ScannedItem.id).where(ScannedItem.location == str(path))
                ).all()
            assert len(rows) == scans_before + 1, path
            reported.append(path)

        report = scanning.scan_paths(
            workspace, [folder], options=PDQ_ONLY, workers=workers, on_item=committed
        )
        assert report.scanned == len(reported) == 5 and report.errors == 1


def test_budgets_from_settings(tmp_path: Path) -> None:
    assert load_budgets(tmp_path) == Budgets()
    (tmp_path / "settings.toml").write_text(
        "[budgets]\nimage_max_pixels = 80_000_000\nwall_s = {video = 900}\n"
    )
    budgets = load_budgets(tmp_path)
    assert budgets.image_max_pixels == 80_000_000
    assert budgets.wall_s["video"] == 900 and budgets.wall_s["image"] == 120
    with pytest.raises(ValueError, match="unknown budget"):
        budgets_from_table({"images": 3}, "settings.toml")
    with pytest.raises(ValueError, match="positive"):
        budgets_from_table({"cpu_s": {"image": -1}}, "settings.toml")


def test_hash_command_goes_on_past_hostile_files(tmp_path: Path, bomb_png: bytes) -> None:
    files = hostile_files(tmp_path / "dump", bomb_png)
    env = {**os.environ, "ANSIM_HOME": str(tmp_path / "home")}
    ansim = str(Path(sys.executable).parent / "ansim")
    done = subprocess.run(
        [ansim, "hash", str(tmp_path / "dump"), "--workers", "2", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    results = {Path(r["path"]).name: r for r in json.loads(done.stdout)}
    assert list(results) == sorted(results)  # the order given (folders expand sorted)
    assert "TypeError" in results["fuzzed.tif"]["error"]
    assert results["photo.mp4"]["modality"] == "image"
    assert results["good.jpg"]["signals"]["pdq"]
    assert len(results) == len(files)


def die_or_square(number: int) -> int:
    if number == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
    if number == 4:
        raise MediaError("four is not media")
    return number * number


def test_executor_for_the_crawl_survives_a_killed_worker() -> None:
    """What the crawl gets from `run_in_executor`: a lost worker fails its own call only."""

    async def crawl_like(executor: CrashProofExecutor) -> list[object]:
        loop = asyncio.get_running_loop()
        calls = [loop.run_in_executor(executor, die_or_square, n) for n in range(8)]
        return await asyncio.gather(*calls, return_exceptions=True)

    executor = CrashProofExecutor(2)
    try:
        results = asyncio.run(crawl_like(executor))
    finally:
        executor.shutdown()
    assert isinstance(results[3], WorkerLost) and "SIGKILL" in str(results[3])
    assert isinstance(results[4], MediaError) and str(results[4]) == "four is not media"
    assert [r for i, r in enumerate(results) if i not in (3, 4)] == [0, 1, 4, 25, 36, 49]
