"""The crawl's recorder (items, matches, evidence, summary, log file), its hashing
workers (fingerprint and match, per-worker banks) and its history flushes, each alone."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ansim.crawler.fetch import Exchange, FetchResult
from ansim.detector.image_robust import (
    COARSE_LOCAL_FEATURES_OPTION,
    LOCAL_FEATURES_OPTION,
    descriptor_available,
)
from ansim.pipeline.crawl import CrawlOptions, start_run
from ansim.pipeline.crawl import hashing as crawl_hashing
from ansim.pipeline.crawl.hashing import HashingPlan, HashingWorkers
from ansim.pipeline.crawl.history import HistoryFlushes
from ansim.pipeline.crawl.recorder import Recorder
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import CrawlRun, Evidence

from tests.casework_fixtures import open_case_with_reference, reposted_copy
from tests.helpers import photo_like


@pytest.fixture
def workspace(ansim_home):
    ws, _ = init_workspace()
    yield ws
    ws.close()


def fetched(path: Path, url: str) -> FetchResult:
    """What the fetcher returns for `path` served at `url` (one exchange, body on disk)."""
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    exchange = Exchange(
        method="GET",
        url=url,
        request_headers=[("User-Agent", "test")],
        status=200,
        reason="OK",
        http_version="HTTP/1.1",
        response_headers=[("Content-Type", "image/jpeg")],
        fetched_at=datetime.now(UTC),
        resolved_ip="127.0.0.1",
        raw_path=path,
        raw_sha256=digest,
        raw_size=len(body),
    )
    return FetchResult(
        url=url,
        outcome="ok",
        final_url=url,
        status=200,
        content_type="image/jpeg",
        body_path=path,
        size=len(body),
        sha256=digest,
        exchanges=[exchange],
    )


def test_hashing_plans_follow_the_verification_mode() -> None:
    # Crawled images are only ever the query side: no half-size ORB keypoints in any mode.
    every = HashingPlan.for_verification("all", 1 << 20)
    assert every.hash_options.extra == {COARSE_LOCAL_FEATURES_OPTION: False}
    assert not every.rules.image_triage
    assert not every.lazy_local_features and every.hash_options.max_file_bytes == 1 << 20
    off = HashingPlan.for_verification("off", 1 << 20)
    assert off.hash_options.extra == {
        LOCAL_FEATURES_OPTION: False,
        COARSE_LOCAL_FEATURES_OPTION: False,
    }
    assert off.rules.image_triage
    assert not off.lazy_local_features
    # Triage needs a descriptor to find candidates; without one it is "all".
    triage = HashingPlan.for_verification("triage", 1 << 20)
    robust_here = descriptor_available()
    assert triage.lazy_local_features == robust_here == triage.rules.image_triage


def test_a_hashing_worker_matches_what_it_hashes_then_lets_its_banks_go(
    workspace, tmp_path: Path
) -> None:
    _case, reference_id, reference = open_case_with_reference(workspace, tmp_path, seed=11)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    unrelated = photo_like(tmp_path / "unrelated.png", seed=12)
    plan = HashingPlan.for_verification("all", 64 << 20)

    async def both() -> list:
        with HashingWorkers(workspace.home, plan, processes=1) as workers:
            found = [await workers.fingerprint(p) for p in (copy, unrelated)]
            assert workspace.home in crawl_hashing._matching_banks  # opened once, kept
        return found

    (copy_signals, copy_findings, _), (_, unrelated_findings, _) = asyncio.run(both())
    assert copy_signals.pdq and copy_signals.sha256 == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert reference_id in {f.reference_id for f in copy_findings}
    assert unrelated_findings == []
    assert workspace.home not in crawl_hashing._matching_banks


def test_a_match_is_recorded_with_evidence_and_the_history_takes_its_signals(
    workspace, tmp_path: Path
) -> None:
    case_id, reference_id, reference = open_case_with_reference(workspace, tmp_path, seed=21)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    unrelated = photo_like(tmp_path / "unrelated.png", seed=22)
    run_id = start_run(workspace, CrawlOptions(seeds=["https://forum.example/"]))
    plan = HashingPlan.for_verification("all", 64 << 20)
    recorder = Recorder(workspace, run_id, plan.rules)
    recorded = []
    for path in (copy, unrelated):
        url = f"https://cdn.example/{path.name}"
        signals, findings, _ = crawl_hashing.fingerprint_and_match(
            path, plan.hash_options, workspace.home, plan.rules, False
        )
        with workspace.session() as session:
            recorded.append(
                recorder.record_media(session, url, signals, findings, fetched(path, url), None)
            )
    crawl_hashing.release_matching_banks(workspace.home)
    (copy_item, copy_matched), (_, unrelated_matched) = recorded
    assert (copy_matched, unrelated_matched) == (True, False)
    with workspace.session() as session:
        [evidence] = session.query(Evidence).all()
        assert (evidence.item_id, evidence.media_url) == (copy_item, "https://cdn.example/copy.jpg")
    assert recorder.summary.evidence == 1 and recorder.summary.matches == 0

    written = recorder.take_written()
    assert [bool(matches) for _, matches in written] == [True, False]
    assert recorder.take_written() == []
    for _, matches in written:
        if matches:
            recorder.note_matches(matches)
    summary = recorder.summary
    assert summary.matches == 1 and summary.match_list[0]["reference_id"] == reference_id
    assert summary.match_list[0]["case_id"] == case_id and len(summary.takedowns) == 1

    history = HistoryFlushes(workspace.home, every_rows=10_000)
    for item, _ in written:
        history.add(item.signals)
    rows = len(history)
    assert rows >= 2
    history.flush()  # fewer than every_rows: they wait
    assert len(history) == rows and sum(history.banks.sizes().values()) == 0
    history.flush(force=True)
    pdq_rows = sum(row.kind == "pdq" for item, _ in written for row in item.signals)
    assert len(history) == 0 and history.banks.sizes()["pdq"] == pdq_rows == 2


def test_the_run_logs_to_its_own_file_and_ends_with_its_summary(workspace) -> None:
    run_id = start_run(workspace, CrawlOptions(seeds=["https://forum.example/"]))
    recorder = Recorder(workspace, run_id, HashingPlan.for_verification("all", 1).rules)
    root = logging.getLogger("ansim")
    handlers = list(root.handlers)
    with recorder.logging_to_file():
        logging.getLogger("ansim.crawl").info("a line for the run's file")
    assert root.handlers == handlers
    log_path = Path(recorder.summary.log_path)
    assert "a line for the run's file" in log_path.read_text()
    recorder.summary.pages = 3
    recorder.close_run(finished=False)  # stopped early: left for --resume
    with workspace.session() as session:
        run = session.get(CrawlRun, run_id)
        assert (run.status, run.log_path) == ("running", str(log_path))
        assert '"pages": 3' in run.summary
    recorder.close_run(finished=True)
    with workspace.session() as session:
        assert session.get(CrawlRun, run_id).status == "finished"
