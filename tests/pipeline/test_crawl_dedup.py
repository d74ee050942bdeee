"""The crawl's content de-dup, layer by layer (see ContentDedup's docstring)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from ansim.casework.cases import open_case
from ansim.detector.signals import MediaSignals
from ansim.pipeline.crawl.dedup import ContentDedup, UnwrittenContent, has_prefix
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import Match, Reference, ScannedItem, utcnow


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content(digest: str | None) -> UnwrittenContent:
    signals = MediaSignals(modality="image", sha256=digest, md5="0" * 32, size=1, mime="image/png")
    return UnwrittenContent(signals, findings=[])


@pytest.fixture
def workspace(ansim_home):
    ws, _ = init_workspace()
    yield ws
    ws.close()


def test_a_second_copy_waits_while_the_first_is_fingerprinted(workspace) -> None:
    dedup = ContentDedup(workspace.store)
    order: list[str] = []

    async def first() -> None:
        with dedup.fingerprinting(sha("a")):
            await asyncio.sleep(0)  # the second copy gets to run meanwhile
            await asyncio.sleep(0)
            order.append("first done")

    async def second() -> None:
        await dedup.wait_for_first(sha("a"))
        order.append("second asks")

    async def both() -> None:
        task = asyncio.create_task(first())
        await asyncio.sleep(0)
        assert sha("a") in dedup.hashing
        await asyncio.gather(second(), task)

    asyncio.run(both())
    assert order == ["first done", "second asks"]
    assert dedup.hashing == {}


def test_content_in_the_open_batch_is_found_until_the_batch_is_written(workspace) -> None:
    dedup = ContentDedup(workspace.store)
    first = content(sha("b"))
    dedup.fingerprinted(first)
    dedup.fingerprinted(content(sha("b")))  # a later copy does not replace the first
    dedup.fingerprinted(content(None))  # nothing to key it by
    assert dedup.in_batch(sha("b")) is first
    assert list(dedup.unwritten) == [sha("b")]
    dedup.batch_written()
    assert dedup.in_batch(sha("b")) is None


def test_only_unmatched_media_written_in_this_run_is_a_duplicate(workspace) -> None:
    dedup = ContentDedup(workspace.store)
    dedup.written(sha("c"), 7, "image", matched=False)
    dedup.written(sha("d"), 8, "image", matched=True)
    dedup.written(sha("e"), 9, "text", matched=False)
    assert dedup.unmatched_item(sha("c")) == 7
    assert dedup.unmatched_item(sha("d")) is None
    assert dedup.unmatched_item(sha("e")) is None
    assert dedup.unmatched_item(None) is None


def test_earlier_crawls_count_until_a_newer_reference(workspace) -> None:
    case_id = open_case(workspace, "other")
    long_ago = utcnow() - timedelta(days=2)
    with workspace.session() as session:
        kept = ScannedItem(location="https://a.example/1", sha256=sha("kept"), scanned_at=long_ago)
        matched = ScannedItem(location="https://a.example/2", sha256=sha("hit"))
        failed = ScannedItem(location="https://a.example/3", sha256=sha("bad"), error="broken")
        session.add_all([kept, matched, failed])
        session.flush()
        reference = Reference(
            case_id=case_id, modality="image", added_by="t", added_at=long_ago - timedelta(1)
        )
        session.add(reference)
        session.flush()
        session.add(Match(item_id=matched.id, reference_id=reference.id, signal="pdq"))
        kept_id = kept.id

    dedup = ContentDedup(workspace.store)
    dedup.load_earlier()
    # Layer 4: prefixes of every error-free item; a failed scan's bytes are not among them.
    assert has_prefix(dedup.earlier_prefixes, sha("kept"))
    assert has_prefix(dedup.earlier_prefixes, sha("hit"))
    assert not has_prefix(dedup.earlier_prefixes, sha("bad"))
    assert not has_prefix(dedup.earlier_prefixes, sha("never seen"))
    # Layer 5: the store says which of them matched nothing.
    assert dedup.unmatched_item(sha("kept")) == kept_id
    assert dedup.unmatched_item(sha("hit")) is None
    assert dedup.unmatched_item(sha("bad")) is None

    # A reference added after the item: the item was never searched for it.
    with workspace.session() as session:
        session.add(Reference(case_id=case_id, modality="image", added_by="t"))
    dedup.load_earlier()
    assert not has_prefix(dedup.earlier_prefixes, sha("kept"))
    assert dedup.unmatched_item(sha("kept")) is None
