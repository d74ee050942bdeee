"""Crawls through the store: matches queued with evidence, content de-dup, robots, the
hostile site end to end, the crawl lock, resume after kill -9 at random moments, scan URL,
and retro-hunt of new references against the crawl history."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ansim.casework import queue
from ansim.casework.cases import open_case
from ansim.casework.errors import CaseworkError
from ansim.pipeline import crawl as crawling
from ansim.pipeline import evidence_service, intake
from ansim.pipeline.workspaces import init_workspace, open_workspace
from ansim.store.tables import (
    AuditEntry,
    CrawlRun,
    CrawlUrl,
    Evidence,
    ScannedItem,
    Signal,
    Takedown,
)
from PIL import Image
from sqlalchemy import func, select

from tests.crawl_site import CrawlSite
from tests.localserve import LocalServer

QUICK = dict(allow_loopback=True, min_delay_s=0.0, hash_processes=1, max_depth=10)


@pytest.fixture
def site(tmp_path: Path):
    generated = CrawlSite(tmp_path / "site", pages=20, per_page=2, planted=2)
    with LocalServer(generated.app) as server:
        generated.server = server
        yield generated


@pytest.fixture
def workspace(ansim_home: Path, monkeypatch: pytest.MonkeyPatch):
    # A retro-hunt fetches its candidates again: from the local site, on 127.0.0.1.
    monkeypatch.setenv("ANSIM_ALLOW_LOOPBACK", "1")
    ws, _ = init_workspace()
    yield ws
    ws.close()


def add_refs(workspace, files: list[Path]) -> tuple[str, list[intake.IntakeResult]]:
    case_id = open_case(workspace, "other")
    return case_id, intake.add_reference_files(workspace, case_id, files)


def crawl_options(site, **extra) -> crawling.CrawlOptions:
    return crawling.CrawlOptions(seeds=[site.server.url("/p/0.html")], **{**QUICK, **extra})


def test_crawl_queues_planted_copies_with_evidence(site, workspace, tmp_path: Path) -> None:
    case_id, refs = add_refs(workspace, site.reference_files)
    summary = crawling.run_crawl(workspace, crawl_options(site))
    assert summary.pages == site.pages
    found = {m["url"].split(site.server.base_url)[1] for m in summary.match_list}
    assert found == set(site.planted_paths)
    # Every page and media URL fetched exactly once; the shared logo once for 20 pages.
    for path in site.page_paths + site.media_paths:
        assert site.hits[path] == 1, path
    assert site.hits["/robots.txt"] == 1
    items = queue.list_queue(workspace, case_id=case_id)
    assert len(items) == 2
    shown = queue.show_item(workspace, items[0]["id"])
    assert len(shown["evidence"]) == 1 and shown["evidence"][0]["page_url"].endswith(".html")
    exported = evidence_service.export_evidence(
        workspace, shown["evidence"][0]["id"], tmp_path / "out"
    )
    manifest = json.loads(Path(exported["files"][1]).read_text())
    assert {r["role"] for r in manifest["records"]} == {"page", "media"}
    assert all(r["resolved_ip"] == "127.0.0.1" for r in manifest["records"])
    # Hash-only: nothing but sealed evidence stays on disk.
    evidence_files = list((workspace.home.root / "evidence").iterdir())
    assert len(evidence_files) == 4  # 2 bundles x (WARC + manifest)


def test_hashing_processes_match_what_they_hash(site, workspace) -> None:
    # Two real worker processes (as a nightly crawl runs): each opens the store and the
    # reference banks itself and sends back signals and matches.
    _, refs = add_refs(workspace, site.reference_files)
    summary = crawling.run_crawl(workspace, crawl_options(site, hash_processes=2))
    found = {m["url"].split(site.server.base_url)[1] for m in summary.match_list}
    assert found == set(site.planted_paths)
    assert {m["reference_id"] for m in summary.match_list} <= {r.reference_id for r in refs}


def test_identical_content_at_many_urls_is_hashed_once(site, workspace) -> None:
    for n in range(2, 8):  # six URLs, one file
        site.images[n] = site.images[1]
    summary = crawling.run_crawl(workspace, crawl_options(site))
    assert summary.media_duplicate_content >= 6
    assert summary.media_hashed == summary.media - summary.media_duplicate_content


def test_content_an_earlier_crawl_saw_is_not_hashed_again_until_a_new_reference(
    site, workspace
) -> None:
    first = crawling.run_crawl(workspace, crawl_options(site))
    assert first.media_hashed > 0
    again = crawling.run_crawl(workspace, crawl_options(site))
    assert again.media_hashed == 0
    assert again.media_duplicate_content == first.media_hashed
    # Earlier items were never matched against a newer reference: hashed again.
    add_refs(workspace, site.reference_files)
    after_reference = crawling.run_crawl(workspace, crawl_options(site))
    assert after_reference.media_hashed == first.media_hashed
    found = {m["url"].split(site.server.base_url)[1] for m in after_reference.match_list}
    assert found == set(site.planted_paths)


def test_second_crawl_of_one_home_is_refused_while_one_runs(site, workspace) -> None:
    with crawling.crawl_lock(workspace), pytest.raises(CaseworkError, match="another crawl"):
        crawling.run_crawl(workspace, crawl_options(site))


def test_retro_hunt_finds_what_was_crawled_before(site, workspace) -> None:
    crawling.run_crawl(workspace, crawl_options(site))
    case_id, results = add_refs(workspace, site.reference_files)
    hunted = {m.location.split(site.server.base_url)[1] for r in results for m in r.retro_matches}
    assert hunted == set(site.planted_paths)
    assert len(queue.list_queue(workspace, case_id=case_id)) == 2
    # An unrelated new reference finds nothing.
    from tests.helpers import photo_like

    _case, unrelated = add_refs(
        workspace, [photo_like(Path(site.reference_files[0]).parent / "u.png", 4242)]
    )
    assert unrelated[0].retro_matches == []


def _plant_hard_copies(site, shared_data: Path) -> Path:
    """Copies of one photo that PDQ misses at /m/4 (crop40), /m/5 (crop20 in a phone
    screenshot) and /m/6 (pad20 then a camera tilt); returns the photo."""
    from ansim.benchmarks.image_transforms import HARD_TRANSFORMS

    folder = shared_data / "images" / "bsds500" / "test"
    photo, background = folder / "100007.jpg", folder / "100039.jpg"
    if not (photo.is_file() and background.is_file()):
        pytest.skip("bsds500/test photos missing")
    source = Image.open(photo).convert("RGB")
    backgrounds = [Image.open(background).convert("RGB")]
    for n, name in ((4, "crop40"), (5, "crop20+screenshot"), (6, "pad20+perspective")):
        copy = HARD_TRANSFORMS[name](source, random.Random(1), backgrounds)
        buffer = io.BytesIO()
        copy.save(buffer, "JPEG", quality=85)
        site.images[n] = buffer.getvalue()
    return photo


def test_retro_hunt_finds_crawled_crops_pads_and_screenshots_that_pdq_misses(
    site, workspace, shared_data: Path
) -> None:
    photo = _plant_hard_copies(site, shared_data)
    crawling.run_crawl(workspace, crawl_options(site))
    fetched_by_crawl = site.hits["/m/5.img"]

    _case, results = add_refs(workspace, [photo])
    hunted = {m.location.split(site.server.base_url)[1]: m for m in results[0].retro_matches}
    assert set(hunted) == {"/m/4.img", "/m/5.img", "/m/6.img"}
    for match in hunted.values():
        assert match.signal != "pdq"  # found by the robust matcher, not by PDQ
        assert "fired" in match.explanation
    # The history keeps no ORB features: the screenshot was verified on its bytes fetched again.
    assert "verification" in hunted["/m/5.img"].signal
    assert "fetched again" in hunted["/m/5.img"].explanation
    assert site.hits["/m/5.img"] == fetched_by_crawl + 1
    assert results[0].retro_not_online == []


def test_retro_hunt_records_a_candidate_gone_from_its_url(
    site, workspace, shared_data: Path
) -> None:
    photo = _plant_hard_copies(site, shared_data)
    crawling.run_crawl(workspace, crawl_options(site))
    del site.images[5]  # taken down since the crawl: 404 when fetched again

    _case, results = add_refs(workspace, [photo])
    hunted = {m.location.split(site.server.base_url)[1] for m in results[0].retro_matches}
    assert "/m/5.img" not in hunted
    gone = {r.location.split(site.server.base_url)[1]: r for r in results[0].retro_not_online}
    assert gone["/m/5.img"].verdict == "gone" and gone["/m/5.img"].reason == "HTTP 404"
    assert gone["/m/5.img"].last_seen.startswith("20")
    assert gone["/m/5.img"].evidence_bundles == []  # not matched when crawled: no bundle
    assert results[0].as_dict()["crawled_not_online"][0]["verdict"] == "gone"
    with workspace.session() as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.action == "retrohunt.refetch")
        ).scalars()
        assert list(actions) == ["retrohunt.refetch"]


def test_crawl_history_keeps_no_orb_features_and_under_1kb_per_image(site, workspace) -> None:
    crawling.run_crawl(workspace, crawl_options(site))  # "all": ORB for every image
    with workspace.session() as session:
        per_item = session.execute(
            select(
                Signal.item_id,
                func.sum(
                    func.length(func.coalesce(Signal.value, ""))
                    + func.length(func.coalesce(Signal.blob, b""))
                ),
            )
            .join(ScannedItem, Signal.item_id == ScannedItem.id)
            .where(ScannedItem.modality == "image")
            .group_by(Signal.item_id)
        ).all()
        kinds = set(
            session.execute(select(Signal.kind).where(Signal.item_id.is_not(None))).scalars()
        )
        descriptor_blobs = set(
            session.execute(
                select(func.length(Signal.blob)).where(
                    Signal.item_id.is_not(None), Signal.kind == "descriptor"
                )
            ).scalars()
        )
    assert len(per_item) >= 10
    assert "orb" not in kinds and "pdq" in kinds
    assert max(size for _item, size in per_item) <= 1024
    assert descriptor_blobs <= {128}  # int8, where the descriptor model is installed


def test_retro_hunt_finds_a_crawled_audio_clip_of_a_new_reference(
    site, workspace, shared_data: Path, tmp_path: Path
) -> None:
    from tests.audio_helpers import INDEXED, load_mono, recording, write_wav

    source = recording(shared_data, INDEXED[2])  # 46 s of strings
    samples, rate = load_mono(source)
    clip = samples[20 * rate : 30 * rate] + np.random.default_rng(5).normal(0, 0.01, 10 * rate)
    site.images[7] = write_wav(tmp_path / "clip.wav", clip, rate).read_bytes()
    crawling.run_crawl(workspace, crawl_options(site))

    _case, results = add_refs(workspace, [source])
    hunted = {m.location.split(site.server.base_url)[1]: m for m in results[0].retro_matches}
    assert set(hunted) == {"/m/7.img"}
    assert hunted["/m/7.img"].signal == "audio"
    # Told from the copy's side: the whole clip is the item, 0:20-0:30 the reference.
    explanation = hunted["/m/7.img"].explanation
    assert "of the item matches 0:2" in explanation, explanation


def test_retro_hunt_finds_a_crawled_clip_and_thumbnail_of_a_new_video(
    site, workspace, tmp_path: Path
) -> None:
    import av
    from ansim.benchmarks.video_dataset import cut_clip

    from tests.video_media import photos, slideshow

    video = slideshow(tmp_path / "reported.mp4", photos(tmp_path / "stills", 8), 32, seed=4)
    site.images[3] = cut_clip(video, tmp_path / "clip.mp4", start_s=12.2, length_s=10).read_bytes()
    with av.open(str(video)) as container:
        frame = next(f for f in container.decode(video=0) if f.time >= 25.0)
    thumbnail = io.BytesIO()
    frame.to_image().save(thumbnail, "JPEG", quality=85)
    site.images[9] = thumbnail.getvalue()
    crawling.run_crawl(workspace, crawl_options(site))

    _case, results = add_refs(workspace, [video])
    hunted = {m.location.split(site.server.base_url)[1]: m for m in results[0].retro_matches}
    assert set(hunted) == {"/m/3.img", "/m/9.img"}
    clip, still = hunted["/m/3.img"], hunted["/m/9.img"]
    # Told as a crawl tells it: the crawled clip is the query, 0:12-0:22 of the reference.
    assert clip.signal == "vpdq" and "= reference 0:1" in clip.explanation, clip.explanation
    assert still.signal == "pdq" and "frame at 0:2" in still.explanation, still.explanation
    other = slideshow(tmp_path / "other.mp4", photos(tmp_path / "other", 8, 100), 32, seed=5)
    assert add_refs(workspace, [other])[1][0].retro_matches == []


def test_scan_url_checks_a_page_and_a_media_url(site, workspace) -> None:
    case_id, _refs = add_refs(workspace, site.reference_files)
    planted_page = site.server.url(f"/p/{site.pages - 1}.html")
    planted_media = site.server.url(site.planted_paths[1])
    summary = crawling.scan_urls(workspace, [planted_page, planted_media], allow_loopback=True)
    assert {m["url"] for m in summary.match_list} == {
        site.server.url(p) for p in site.planted_paths
    }
    assert site.hits["/p/0.html"] == 0  # depth 0: links are not followed


def test_ssrf_and_loopback_refused_without_allow_loopback(site, workspace) -> None:
    summary = crawling.run_crawl(workspace, crawl_options(site, allow_loopback=False))
    assert summary.outcomes == {"blocked_address": 1}
    assert sum(site.hits.values()) == 0


def test_hostile_site_crawl_ends_with_every_outcome_counted(hostile_site, workspace) -> None:
    options = crawling.CrawlOptions(
        seeds=[hostile_site.url("/")],
        max_pages=40,
        max_depth=3,
        max_response_bytes=4 << 20,
        total_timeout_s=2,
        read_timeout_s=1,
        retries=1,
        **{k: v for k, v in QUICK.items() if k != "max_depth"},
    )
    started = time.monotonic()
    summary = crawling.run_crawl(workspace, options)
    assert time.monotonic() - started < 60
    outcomes = summary.outcomes
    for expected in ("redirect_loop", "too_many_redirects", "too_large", "timeout",
                     "blocked_address", "http_error", "connection_error", "bad_encoding",
                     "robots_disallowed", "media_error", "ok"):  # fmt: skip
        assert outcomes[expected] >= 1, (expected, outcomes)
    assert outcomes.get("internal_error", 0) == 0
    assert hostile_site.hits["/private/page"] == 0 and hostile_site.hits["/private/secret.png"] == 0
    # The pagination trap is cut by depth and page limits, not followed forever.
    assert summary.pages <= 40
    with workspace.session() as session:
        pending = session.execute(
            select(func.count(CrawlUrl.id)).where(
                CrawlUrl.state == "pending", CrawlUrl.kind == "media"
            )
        ).scalar_one()
    assert pending == 0


def _crawl_process(home: Path, seed: str, resume: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "cli", "crawl", "run", "--json", "--allow-loopback", "--delay",
            "0", "--max-depth", "10", "--workers", "4", "--hash-processes", "1"]  # fmt: skip
    args += ["--resume"] if resume else ["--seeds", seed]
    env = {**os.environ, "ANSIM_HOME": str(home)}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _done_count(workspace) -> int:
    with workspace.store.session() as session:
        return session.execute(
            select(func.count(CrawlUrl.id)).where(CrawlUrl.state != "pending")
        ).scalar_one()


def _unfinished_runs(workspace) -> int:
    with workspace.store.session() as session:
        return session.execute(
            select(func.count(CrawlRun.id)).where(CrawlRun.status != "finished")
        ).scalar_one()


def test_resume_after_kill_loses_and_duplicates_nothing(site, workspace, ansim_home) -> None:
    case_id, _refs = add_refs(workspace, site.reference_files)
    rng = random.Random(int(os.environ.get("ANSIM_TEST_SEED", "7")))
    total_urls = len(site.page_paths) + len(site.media_paths)
    kills = 0
    process = _crawl_process(ansim_home, site.server.url("/p/0.html"), resume=False)
    for _ in range(2):
        target = rng.randint(1, total_urls - 5)
        deadline = time.monotonic() + 60
        while _done_count(workspace) < target and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(rng.uniform(0.005, 0.05))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        if not _unfinished_runs(workspace):
            # Killed while exiting, after its last batch had committed: nothing to resume.
            process = None
            break
        process = _crawl_process(ansim_home, "", resume=True)
    if process is not None:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
    assert kills >= 1
    workspace = open_workspace()
    with workspace.store.session() as session:
        rows = session.execute(select(CrawlUrl.url, CrawlUrl.state)).all()
        items = session.execute(select(ScannedItem.location)).scalars().all()
        takedowns = session.execute(select(Takedown.location)).scalars().all()
        evidence = session.execute(select(Evidence.takedown_id)).scalars().all()
    urls = [u for u, _ in rows]
    assert len(urls) == len(set(urls)) == total_urls  # nothing lost, nothing twice
    assert {state for _, state in rows} == {"done"}
    media_items = [loc for loc in items if "/m/" in loc]
    assert len(media_items) == len(set(media_items)) == len(site.media_paths)
    assert sorted(t.split(site.server.base_url)[1] for t in takedowns) == sorted(site.planted_paths)
    assert sorted(evidence) == sorted(set(evidence)) and len(evidence) == 2
    # A URL is fetched again only if it was in flight when the process died.
    assert all(site.hits[p] <= 1 + kills for p in site.page_paths + site.media_paths)
    # Under load the last kill can land while the resumed process is exiting; the data
    # checks above are the guarantee, the summary flag is only read when one was printed.
    if process is not None and out.strip():
        assert json.loads(out)["resumed"] is True
