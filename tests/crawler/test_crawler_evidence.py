"""Evidence bundles: WARC request/response records sealed at rest, manifest digests, and
a decrypted export that a third party can verify with ordinary WARC tools."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from ansim.crawler.evidence import EvidenceError, EvidenceStore
from cryptography.fernet import Fernet
from warcio.archiveiterator import ArchiveIterator

from tests.crawler_helpers import quick_fetcher


@pytest.fixture
def bundle(hostile_site, tmp_path: Path):
    key = Fernet(Fernet.generate_key())
    store = EvidenceStore(tmp_path / "evidence", key)

    async def go():
        async with quick_fetcher(work_dir=tmp_path / "work") as fetcher:
            page = await fetcher.fetch(hostile_site.url("/gzipped"))
            media = await fetcher.fetch(hostile_site.url("/img/0.png"))
            info = store.write_bundle([("page", page), ("media", media)], note="test match")
            return page, media, info

    page, media, info = asyncio.run(go())
    return store, key, page, media, info


def test_sealed_files_hold_no_plaintext(bundle, hostile_site) -> None:
    _store, _key, _page, _media, info = bundle
    for path in (info.warc_path, info.manifest_path):
        sealed = path.read_bytes()
        assert b"127.0.0.1" not in sealed and b"WARC/1.0" not in sealed
        assert b"\x89PNG" not in sealed


def test_export_round_trip_and_digests(bundle, hostile_site, tmp_path: Path) -> None:
    store, _key, page, media, info = bundle
    warc_file, manifest_file = store.export(info.bundle_id, tmp_path / "export")
    manifest = store.manifest(info.bundle_id)
    assert hashlib.sha256(warc_file.read_bytes()).hexdigest() == manifest["warc"]["sha256"]
    assert manifest_file.exists()
    records = {r["url"]: r for r in manifest["records"]}
    image_bytes = hostile_site.images[0]
    media_entry = records[media.final_url]
    assert media_entry["payload_sha256"] == hashlib.sha256(image_bytes).hexdigest()
    assert media_entry["content_sha256"] == media.sha256
    assert media_entry["resolved_ip"] == "127.0.0.1" and media_entry["status"] == 200
    assert records[page.final_url]["payload_sha256"] != records[page.final_url]["content_sha256"]

    seen = {}
    with open(warc_file, "rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type in ("request", "response"):
                seen.setdefault(record.rec_headers.get_header("WARC-Target-URI"), []).append(
                    (record.rec_type, record)
                )
            if record.rec_type == "response":
                body = record.content_stream().read()
                uri = record.rec_headers.get_header("WARC-Target-URI")
                assert record.rec_headers.get_header("WARC-IP-Address") == "127.0.0.1"
                if uri == media.final_url:
                    assert body == image_bytes
                else:
                    assert b"compressed page" in body  # warcio undoes the gzip
    assert sorted(kind for kind, _ in seen[media.final_url]) == ["request", "response"]


def test_wrong_key_and_tampering_are_detected(bundle, tmp_path: Path) -> None:
    store, _key, _page, _media, info = bundle
    with pytest.raises(EvidenceError, match="wrong key or tampered"):
        EvidenceStore(store.root, Fernet(Fernet.generate_key())).export(info.bundle_id, tmp_path)
    original = info.warc_path.read_bytes()
    info.warc_path.write_bytes(original[:-40])
    with pytest.raises(EvidenceError):
        store.export(info.bundle_id, tmp_path / "truncated")
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 1
    info.warc_path.write_bytes(bytes(flipped))
    with pytest.raises(EvidenceError):
        store.export(info.bundle_id, tmp_path / "flipped")


def test_unknown_or_unsafe_bundle_ids_are_refused(bundle, tmp_path: Path) -> None:
    store = bundle[0]
    with pytest.raises(EvidenceError, match="no evidence bundle"):
        store.manifest("does-not-exist")
    with pytest.raises(EvidenceError, match="bad evidence id"):
        store.manifest("../etc/passwd")
