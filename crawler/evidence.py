"""Evidence of a match, fit for police and lawyers: a WARC file (written by warcio) with
the request and response of the page and of the media, and a manifest of SHA-256
digests, fetch times and resolved IPs. Both are encrypted at rest with the Fernet key
that protects case contacts; plaintext never touches the disk until `export`.

Encrypted files are a sequence of Fernet tokens over 1 MiB chunks, each chunk prefixed
with its sequence number and a last-chunk flag inside the token, so a reordered,
truncated or spliced file fails to decrypt instead of yielding a different WARC.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import urlsplit

from ansim.crawler.fetch import Exchange, FetchResult
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

MAGIC = b"ANSIM-SEALED-1\n"
SEAL_CHUNK_BYTES = 1 << 20
_CHUNK_HEADER = struct.Struct(">QB")  # sequence number, is-last flag
_TOKEN_LENGTH = struct.Struct(">I")
# Hop-by-hop framing that aiohttp already undid; the recorded payload is de-chunked.
_REWRITTEN_HEADERS = {"transfer-encoding"}


class EvidenceError(Exception):
    """An evidence file is missing, cannot be decrypted, or does not match its manifest."""


class SealedWriter(io.RawIOBase):
    """A write-only file object that encrypts everything written to it, chunk by chunk."""

    def __init__(self, target: BinaryIO, fernet: Fernet | MultiFernet) -> None:
        self._target = target
        self._fernet = fernet
        self._buffer = bytearray()
        self._sequence = 0
        self._target.write(MAGIC)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._buffer += data
        while len(self._buffer) > SEAL_CHUNK_BYTES:
            self._emit(bytes(self._buffer[:SEAL_CHUNK_BYTES]), last=False)
            del self._buffer[:SEAL_CHUNK_BYTES]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._target.flush()
        super().close()

    def _emit(self, chunk: bytes, last: bool) -> None:
        token = self._fernet.encrypt(_CHUNK_HEADER.pack(self._sequence, last) + chunk)
        self._target.write(_TOKEN_LENGTH.pack(len(token)) + token)
        self._sequence += 1


def iter_unsealed(path: Path, fernet: Fernet | MultiFernet) -> Iterator[bytes]:
    """The plaintext of a sealed file, chunk by chunk; raises EvidenceError if tampered."""
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise EvidenceError(f"{path.name} is not a sealed ansim evidence file")
        expected = 0
        while True:
            length_bytes = handle.read(_TOKEN_LENGTH.size)
            if not length_bytes:
                raise EvidenceError(f"{path.name} is truncated (no final chunk)")
            (length,) = _TOKEN_LENGTH.unpack(length_bytes)
            token = handle.read(length)
            try:
                plain = fernet.decrypt(token)
            except InvalidToken as exc:
                raise EvidenceError(
                    f"{path.name}: chunk {expected} does not decrypt (wrong key or tampered)"
                ) from exc
            sequence, last = _CHUNK_HEADER.unpack_from(plain)
            if sequence != expected:
                raise EvidenceError(f"{path.name}: chunks out of order")
            yield plain[_CHUNK_HEADER.size :]
            expected += 1
            if last:
                if handle.read(1):
                    raise EvidenceError(f"{path.name}: data after the final chunk")
                return


def unseal_to(path: Path, out: IO[bytes], fernet: Fernet | MultiFernet) -> str:
    """Decrypt `path` into `out`; returns the SHA-256 of the plaintext."""
    digest = hashlib.sha256()
    for chunk in iter_unsealed(path, fernet):
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class BundleInfo:
    bundle_id: str
    warc_path: Path
    manifest_path: Path
    warc_sha256: str
    records: int


def open_private(path: Path) -> BinaryIO:
    """Open `path` for writing as a new 0600 file (evidence is victim media; the crawler
    sits below the store, so this is its own copy of store.private_files.open_private)."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def bundle_paths(root: Path, bundle_id: str) -> tuple[Path, Path]:
    """The sealed WARC and manifest of a bundle."""
    if not bundle_id or "/" in bundle_id or bundle_id.startswith("."):
        raise EvidenceError(f"bad evidence id {bundle_id!r}")
    return root / f"{bundle_id}.warc.gz.sealed", root / f"{bundle_id}.manifest.json.sealed"


def evidence_key_context(bundle_id: str) -> str:
    """Associated data of a bundle's key, encrypted in its evidence row."""
    return f"evidence:{bundle_id}:key"


def seal_bundle(
    root: Path, fetches: list[tuple[str, FetchResult]], note: str = ""
) -> tuple[BundleInfo, bytes]:
    """A bundle sealed with a key of its own; returns (bundle, its key). Destroying that key
    (the evidence row's copy) makes every copy of the files unreadable."""
    key = Fernet.generate_key()
    return EvidenceStore(root, Fernet(key)).write_bundle(fetches, note), key


def shred_bundle(root: Path, bundle_id: str) -> int:
    """Unlink a bundle's files (its key is destroyed with its rows); returns files removed."""
    removed = 0
    for path in bundle_paths(root, bundle_id):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


class EvidenceStore:
    """Sealed WARC bundles under one directory, one bundle per match (or per takedown)."""

    def __init__(self, root: Path, fernet: Fernet | MultiFernet) -> None:
        self.root = root
        self.fernet = fernet

    def paths(self, bundle_id: str) -> tuple[Path, Path]:
        return bundle_paths(self.root, bundle_id)

    def write_bundle(
        self, fetches: list[tuple[str, FetchResult]], note: str = "", bundle_id: str | None = None
    ) -> BundleInfo:
        """Record every exchange of each (role, fetch) pair, e.g. ("page", ...), ("media", ...).

        Each fetch's bodies must still be on disk (call before `FetchResult.discard`).
        """
        bundle_id = bundle_id or uuid.uuid4().hex
        warc_path, manifest_path = self.paths(bundle_id)
        private_dir(self.root)
        records: list[dict[str, Any]] = []
        digest = _DigestingWriter()
        with open_private(warc_path) as raw, SealedWriter(raw, self.fernet) as sealed:
            digest.target = sealed
            writer = WARCWriter(digest, gzip=True)
            writer.write_record(
                writer.create_warcinfo_record(
                    f"{bundle_id}.warc.gz",
                    {"software": "ansim crawler (warcio)", "format": "WARC File Format 1.0",
                     "description": note or "ansim match evidence"},
                )
            )  # fmt: skip
            for role, fetch in fetches:
                for position, exchange in enumerate(fetch.exchanges):
                    final = position == len(fetch.exchanges) - 1
                    records.append(
                        _write_exchange(writer, exchange, role, fetch if final else None)
                    )
        manifest = {
            "bundle_id": bundle_id,
            "created_at": datetime.now(UTC).isoformat(),
            "note": note,
            "warc": {"file": f"{bundle_id}.warc.gz", "sha256": digest.hexdigest(),
                     "bytes": digest.size},
            "records": records,
        }  # fmt: skip
        with open_private(manifest_path) as raw, SealedWriter(raw, self.fernet) as sealed:
            sealed.write(json.dumps(manifest, indent=2).encode())
        return BundleInfo(bundle_id, warc_path, manifest_path, digest.hexdigest(), len(records))

    def manifest(self, bundle_id: str) -> dict[str, Any]:
        _, manifest_path = self.paths(bundle_id)
        if not manifest_path.exists():
            raise EvidenceError(f"no evidence bundle {bundle_id}")
        return json.loads(b"".join(iter_unsealed(manifest_path, self.fernet)))

    def export(
        self, bundle_id: str, out_dir: Path, expected_sha256: str | None = None
    ) -> list[Path]:
        """Decrypt the WARC and manifest into `out_dir` (0600 files, the folder 0700 when
        created here), checking every digest on the way, and, when the caller knows them
        from its own records, that the files are the bundle it asked for."""
        warc_path, _ = self.paths(bundle_id)
        manifest = self.manifest(bundle_id)
        if manifest.get("bundle_id") != bundle_id:
            raise EvidenceError(f"the files of bundle {bundle_id} hold another bundle")
        if expected_sha256 is not None and manifest["warc"]["sha256"] != expected_sha256:
            raise EvidenceError(f"bundle {bundle_id} is not the one recorded (SHA-256 differs)")
        if not out_dir.exists():
            private_dir(out_dir)
        warc_out = out_dir / f"{bundle_id}.warc.gz"
        with open_private(warc_out) as out:
            sha = unseal_to(warc_path, out, self.fernet)
        if sha != manifest["warc"]["sha256"]:
            raise EvidenceError(f"{warc_out.name}: SHA-256 {sha} differs from the manifest")
        if expected_sha256 is not None and sha != expected_sha256:
            raise EvidenceError(f"{warc_out.name}: SHA-256 {sha} differs from the record")
        verify_warc(warc_out, manifest)
        manifest_out = out_dir / f"{bundle_id}.manifest.json"
        with open_private(manifest_out) as out:
            out.write(json.dumps(manifest, indent=2).encode())
        return [warc_out, manifest_out]


def verify_warc(warc_path: Path, manifest: dict[str, Any]) -> None:
    """Every record the manifest lists is in the WARC with the same payload digest."""
    expected = {r["warc_record_id"]: r for r in manifest["records"]}
    found: set[str] = set()
    with open(warc_path, "rb") as handle:
        for record in ArchiveIterator(handle):
            record_id = record.rec_headers.get_header("WARC-Record-ID")
            entry = expected.get(record_id)
            if entry is None:
                continue
            # raw_stream: the payload as received (content_stream would undo its gzip).
            payload = hashlib.sha256(record.raw_stream.read()).hexdigest()
            if record.rec_type == "response" and payload != entry["payload_sha256"]:
                raise EvidenceError(f"record {record_id} ({entry['url']}): payload digest differs")
            found.add(record_id)
    missing = set(expected) - found
    if missing:
        raise EvidenceError(f"{len(missing)} manifest record(s) missing from the WARC")


class _DigestingWriter:
    """Passes writes through while hashing them (the plaintext WARC's SHA-256)."""

    def __init__(self) -> None:
        self.target: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        assert self.target is not None
        self._digest.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        assert self.target is not None
        self.target.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _write_exchange(
    writer: WARCWriter, exchange: Exchange, role: str, final_fetch: FetchResult | None
) -> dict[str, Any]:
    parts = urlsplit(exchange.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    date = exchange.fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    request = writer.create_warc_record(
        exchange.url,
        "request",
        http_headers=StatusAndHeaders(
            f"{exchange.method} {target} {exchange.http_version}",
            exchange.request_headers,
            is_http_request=True,
        ),
        warc_headers_dict={"WARC-Date": date},
    )
    response_headers = [
        (f"X-Archive-Orig-{k}" if k.lower() in _REWRITTEN_HEADERS else k, v)
        for k, v in exchange.response_headers
    ]
    warc_headers = {"WARC-Date": date}
    if exchange.resolved_ip:
        warc_headers["WARC-IP-Address"] = exchange.resolved_ip
    http_headers = StatusAndHeaders(
        f"{exchange.status} {exchange.reason}".strip(),
        response_headers,
        protocol=exchange.http_version,
    )
    has_body = exchange.raw_path is not None
    body: BinaryIO = open(exchange.raw_path, "rb") if has_body else io.BytesIO(b"")  # noqa: SIM115
    try:
        response = writer.create_warc_record(
            exchange.url,
            "response",
            payload=body,
            length=exchange.raw_size if exchange.raw_path is not None else 0,
            http_headers=http_headers,
            warc_headers_dict=warc_headers,
        )
        request.rec_headers.add_header(
            "WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID")
        )
        writer.write_record(request)
        writer.write_record(response)
    finally:
        body.close()
    return {
        "role": role,
        "url": exchange.url,
        "warc_record_id": response.rec_headers.get_header("WARC-Record-ID"),
        "request_record_id": request.rec_headers.get_header("WARC-Record-ID"),
        "fetched_at": exchange.fetched_at.isoformat(),
        "resolved_ip": exchange.resolved_ip,
        "status": exchange.status,
        "content_type": _first(exchange.response_headers, "content-type"),
        "payload_sha256": exchange.raw_sha256 or hashlib.sha256(b"").hexdigest(),
        "payload_bytes": exchange.raw_size,
        # The decoded content (Content-Encoding undone): what the detector fingerprinted.
        "content_sha256": final_fetch.sha256 if final_fetch else None,
        "final": final_fetch is not None,
    }


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)
