"""What the review console needs beyond casework's queue service: filtered, paged listings
without victim details, claims with expiry, and the matched media from sealed evidence.

Media is decrypted into memory only, re-encoded by Pillow (no metadata, no polyglot
survives) and never written to disk. The veiled rendering is made here, on the server, so
the unblurred picture leaves the server only on a reveal, which is audited.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import EvidenceError, EvidenceStore, iter_unsealed
from ansim.server.tables import ReviewClaim
from ansim.store import audit
from ansim.store.tables import (
    Case,
    Confirmation,
    Evidence,
    Match,
    Reference,
    Takedown,
    TakedownEvent,
    utcnow,
)
from PIL import Image, ImageFilter, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

PAGE_SIZE = 25
CLAIM_FOR = timedelta(minutes=10)
VEILED_PIXELS = 24  # the veiled picture is this many pixels across before smoothing
MAX_MEDIA_BYTES = 64 << 20
STRIP_FRAMES = 6
STRIP_HEIGHT = 120
# Larger pictures are refused before decoding (decompression bombs); checked here rather
# than by changing Pillow's process-wide limit, which the detectors set for themselves.
MAX_REVIEW_PIXELS = 60_000_000


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    case_id: str | None = None
    host: str | None = None
    signal: str | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1

    @classmethod
    def from_query(cls, params: Any) -> QueueFilter:
        def text(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            return value[:255] or None

        def day(name: str) -> date | None:
            value = text(name)
            if value is None:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError as exc:
                raise CaseworkError(f"{name} must be a date like 2026-12-01") from exc

        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError as exc:
            raise CaseworkError("page must be a number") from exc
        return cls(
            text("status"), text("case"), text("host"), text("signal"), day("since"),
            day("until"), page,
        )  # fmt: skip

    def query_string(self, **changes: Any) -> str:
        from urllib.parse import urlencode

        values = {
            "status": self.status, "case": self.case_id, "host": self.host,
            "signal": self.signal, "since": self.since, "until": self.until, "page": self.page,
        }  # fmt: skip
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _filtered(query: Any, wanted: QueueFilter, with_status: bool = True) -> Any:
    if with_status and wanted.status:
        query = query.where(Takedown.status == wanted.status)
    if wanted.case_id:
        query = query.where(Takedown.case_id == wanted.case_id)
    if wanted.host:
        query = query.where(Takedown.host == wanted.host)
    if wanted.signal:
        query = query.where(Match.signal == wanted.signal)
    if wanted.since:
        query = query.where(
            Takedown.detected_at >= datetime.combine(wanted.since, datetime.min.time(), UTC)
        )
    if wanted.until:
        end = datetime.combine(wanted.until, datetime.min.time(), UTC) + timedelta(days=1)
        query = query.where(Takedown.detected_at < end)
    return query


def list_page(workspace: Workspace, wanted: QueueFilter) -> dict[str, Any]:
    """One page of queue items (case ids and match facts only), the total, and counts by
    status under the other filters."""
    with workspace.store.read_session() as session:
        base = select(Takedown, Match).join(Match, Match.id == Takedown.match_id)
        total = session.execute(
            _filtered(
                select(func.count(Takedown.id)).join(Match, Match.id == Takedown.match_id), wanted
            )
        ).scalar_one()
        counts = dict(
            session.execute(
                _filtered(
                    select(Takedown.status, func.count(Takedown.id))
                    .join(Match, Match.id == Takedown.match_id)
                    .group_by(Takedown.status),
                    wanted,
                    with_status=False,
                )
            ).all()
        )
        rows = session.execute(
            _filtered(base, wanted)
            .order_by(Takedown.id)
            .offset((wanted.page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        ids = [t.id for t, _ in rows]
        confirmed_by = _confirmations(session, ids)
        claims = {
            c.takedown_id: c
            for c in session.execute(
                select(ReviewClaim).where(ReviewClaim.takedown_id.in_(ids))
            ).scalars()
        }
        now = utcnow()
        items = [
            {
                "id": t.id,
                "status": t.status,
                "case_id": t.case_id,
                "host": t.host,
                "signal": m.signal,
                "distance": m.distance,
                "score": m.score,
                "detected_at": _aware(t.detected_at),
                "confirmations": len(confirmed_by.get(t.id, [])),
                "claimed_by": (
                    claims[t.id].account
                    if t.id in claims and _aware(claims[t.id].expires_at) > now
                    else None
                ),
            }
            for t, m in rows
        ]
        signals = sorted(s for (s,) in session.execute(select(Match.signal).distinct()))
    return {
        "items": items,
        "total": total,
        "counts": counts,
        "signals": signals,
        "pages": max(1, -(-total // PAGE_SIZE)),
    }


def _confirmations(session: Session, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for takedown_id, analyst in session.execute(
        select(Confirmation.takedown_id, Confirmation.analyst)
        .where(Confirmation.takedown_id.in_(ids))
        .order_by(Confirmation.id)
    ):
        found.setdefault(takedown_id, []).append(analyst)
    return found


def item_facts(workspace: Workspace, takedown_id: int) -> dict[str, Any]:
    """The facts a reviewer reads before seeing anything: match, host, URL, history."""
    from ansim.casework.confirmations import policy

    with workspace.store.read_session() as session:
        takedown = session.get(Takedown, takedown_id)
        if takedown is None:
            raise NotFound(f"unknown queue item {takedown_id}")
        match = session.get(Match, takedown.match_id)
        reference = session.get(Reference, takedown.reference_id)
        case = session.get(Case, takedown.case_id)
        required = policy(session).required(case.case_type) if case else 1
        reappearances = session.execute(
            select(func.count(Takedown.id)).where(
                Takedown.location == takedown.location, Takedown.case_id == takedown.case_id
            )
        ).scalar_one()
        events = session.execute(
            select(TakedownEvent)
            .where(TakedownEvent.takedown_id == takedown_id)
            .order_by(TakedownEvent.id)
        ).scalars()
        evidence = session.execute(
            select(Evidence.id)
            .where(Evidence.takedown_id == takedown_id)
            .order_by(Evidence.id.desc())
        ).scalar()
        return {
            "id": takedown.id,
            "status": takedown.status,
            "case_id": takedown.case_id,
            "case_type": case.case_type if case else None,
            "reference_id": takedown.reference_id,
            "reference_label": reference.label if reference else None,
            "reference_modality": reference.modality if reference else None,
            "signal": match.signal if match else None,
            "distance": match.distance if match else None,
            "score": match.score if match else None,
            "explanation": match.explanation if match else "",
            "region": region_points(match.region if match else None),
            "host": takedown.host,
            "location": takedown.location,
            "first_seen": _aware(takedown.detected_at),
            "generation": takedown.generation,
            "seen_times": reappearances,
            "reason": takedown.reason,
            "confirmed_by": _confirmations(session, [takedown_id]).get(takedown_id, []),
            "confirmations_required": required,
            "history": [
                {"at": _aware(e.at), "from": e.from_status, "to": e.to_status, "by": e.actor}
                for e in events
            ],
            "has_media": evidence is not None,
        }


def region_points(stored: str | None) -> str | None:
    """The stored region as an SVG polygon's points in a 0..100 viewBox over the item, or
    None. Points come from the store (numbers only), are re-checked as numbers and clipped
    a little outside the frame so a wildly off corner cannot stretch the drawing."""
    if not stored:
        return None
    try:
        corners = [(float(x), float(y)) for x, y in json.loads(stored)]
    except (TypeError, ValueError):
        return None
    if len(corners) != 4 or not all(math.isfinite(v) for c in corners for v in c):
        return None
    return " ".join(
        f"{min(max(x, -0.5), 1.5) * 100:.2f},{min(max(y, -0.5), 1.5) * 100:.2f}" for x, y in corners
    )


def claim(workspace: Workspace, takedown_id: int, account: str) -> dict[str, Any]:
    """Hand the item to `account` until CLAIM_FOR from now, unless another holds it."""
    now = utcnow()
    with workspace.session() as session:
        if session.get(Takedown, takedown_id) is None:
            raise NotFound(f"unknown queue item {takedown_id}")
        held = session.get(ReviewClaim, takedown_id, with_for_update=True)
        if held is not None and held.account != account and _aware(held.expires_at) > now:
            return {"held": False, "holder": held.account, "until": _aware(held.expires_at)}
        if held is None:
            held = ReviewClaim(takedown_id=takedown_id, account=account, expires_at=now + CLAIM_FOR)
            session.add(held)
            audit.record(session, account, "review.claim", f"takedown:{takedown_id}")
        else:
            if held.account != account:
                audit.record(session, account, "review.claim", f"takedown:{takedown_id}")
            held.account, held.expires_at = account, now + CLAIM_FOR
        return {"held": True, "holder": account, "until": held.expires_at}


def require_claim(workspace: Workspace, takedown_id: int, account: str) -> None:
    with workspace.store.read_session() as session:
        held = session.get(ReviewClaim, takedown_id)
    if held is None or held.account != account or _aware(held.expires_at) <= utcnow():
        raise CaseworkError(
            f"item {takedown_id} is not claimed by you (or your claim expired): open it again"
        )


def release(workspace: Workspace, takedown_id: int, account: str) -> None:
    with workspace.session() as session:
        held = session.get(ReviewClaim, takedown_id, with_for_update=True)
        if held is not None and held.account == account:
            session.delete(held)


def next_unclaimed(workspace: Workspace, account: str) -> int | None:
    """The oldest new item that nobody else holds and this account has not confirmed."""
    now = utcnow()
    with workspace.store.read_session() as session:
        mine = select(Confirmation.takedown_id).where(Confirmation.analyst == account)
        candidates = session.execute(
            select(Takedown.id, ReviewClaim.account, ReviewClaim.expires_at)
            .outerjoin(ReviewClaim, ReviewClaim.takedown_id == Takedown.id)
            .where(Takedown.status == "new", Takedown.id.not_in(mine))
            .order_by(Takedown.id)
            .limit(200)
        ).all()
    for takedown_id, holder, until in candidates:
        if holder is None or holder == account or _aware(until) <= now:
            return takedown_id
    return None


def _media_bytes(workspace: Workspace, takedown_id: int) -> bytes:
    """The matched media's bytes from the newest sealed evidence bundle, in memory."""
    with workspace.store.read_session() as session:
        row = session.execute(
            select(Evidence).where(Evidence.takedown_id == takedown_id).order_by(Evidence.id.desc())
        ).scalar()
    if row is None:
        raise NotFound(f"queue item {takedown_id} has no sealed evidence to show")
    store = EvidenceStore(workspace.home.root / "evidence", workspace.cipher.fernet())
    warc_path, _ = store.paths(row.bundle_id)
    try:
        warc = b"".join(iter_unsealed(warc_path, store.fernet))
    except (EvidenceError, FileNotFoundError) as exc:
        raise CaseworkError(f"evidence of item {takedown_id} cannot be opened: {exc}") from exc
    if hashlib.sha256(warc).hexdigest() != row.warc_sha256:
        raise CaseworkError(f"evidence of item {takedown_id} differs from its recorded digest")
    payload = None
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type != "response":
            continue
        if record.rec_headers.get_header("WARC-Target-URI") == row.media_url or payload is None:
            body = record.content_stream().read(MAX_MEDIA_BYTES + 1)
            if record.rec_headers.get_header("WARC-Target-URI") == row.media_url:
                payload = body
    if not payload:
        raise CaseworkError(f"evidence of item {takedown_id} holds no media response")
    return payload


_QUERY_RANGE = re.compile(r"query (\d+(?::\d\d){1,2})-(\d+(?::\d\d){1,2}) =")


def _seconds(clock: str) -> float:
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return float(total)


def aligned_range(explanation: str) -> tuple[float, float] | None:
    """The item's aligned time range from a video match's explanation (`query 0:12-0:40 =`)."""
    found = _QUERY_RANGE.search(explanation or "")
    return (_seconds(found.group(1)), _seconds(found.group(2))) if found else None


def keyframe_strip(raw: bytes, around: tuple[float, float] | None) -> Image.Image:
    """A muted strip of STRIP_FRAMES frames spread over the aligned range (or the whole
    video), decoded from memory with PyAV (the sound is never decoded)."""
    import av

    try:
        with av.open(io.BytesIO(raw)) as container:
            stream = container.streams.video[0]
            frames = [
                (float(frame.time or 0.0), frame.to_image().convert("RGB"))
                for frame in container.decode(stream)
            ]
    except (av.FFmpegError, IndexError) as exc:
        raise CaseworkError("the video cannot be decoded for review") from exc
    if not frames:
        raise CaseworkError("the video has no frames to show")
    start, end = around if around else (frames[0][0], frames[-1][0])
    wanted = [start + (end - start) * i / max(1, STRIP_FRAMES - 1) for i in range(STRIP_FRAMES)]
    chosen = [min(frames, key=lambda f, t=t: abs(f[0] - t))[1] for t in wanted]
    thumbs = [
        f.resize((max(1, round(f.width * STRIP_HEIGHT / f.height)), STRIP_HEIGHT)) for f in chosen
    ]
    strip = Image.new("RGB", (sum(t.width for t in thumbs) + 4 * (len(thumbs) - 1), STRIP_HEIGHT))
    x = 0
    for thumb in thumbs:
        strip.paste(thumb, (x, 0))
        x += thumb.width + 4
    return strip


_AUDIO_RANGE = re.compile(r"audio (\d+:\d\d(?:\.\d+)?)-(\d+:\d\d(?:\.\d+)?) of the item")
SPECTROGRAM_RATE = 16000
SPECTROGRAM_SIZE = (900, 200)


def audio_range(explanation: str) -> tuple[float, float] | None:
    """The item's matched segment from an audio match's explanation (`audio 0:03.5-0:12.0`)."""
    found = _AUDIO_RANGE.search(explanation or "")
    if not found:
        return None
    start, end = (float(m) * 60 + float(s) for m, s in (g.split(":") for g in found.groups()))
    return start, end


def spectrogram(raw: bytes, around: tuple[float, float] | None) -> Image.Image:
    """The matched segment (or the whole track) as a log-magnitude spectrogram, low
    frequencies at the bottom, decoded from memory with PyAV."""
    import av

    try:
        with av.open(io.BytesIO(raw)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SPECTROGRAM_RATE)
            chunks = [
                resampled.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for resampled in resampler.resample(frame)
            ]
    except (av.FFmpegError, IndexError) as exc:
        raise CaseworkError("the audio cannot be decoded for review") from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if around:
        samples = samples[int(around[0] * SPECTROGRAM_RATE) : int(around[1] * SPECTROGRAM_RATE)]
    window, hop = 512, 256
    if len(samples) < window:
        raise CaseworkError("the matched audio is too short to show")
    starts = range(0, len(samples) - window + 1, hop)
    frames = np.stack([samples[i : i + window] for i in starts]) * np.hanning(window)
    power = np.log1p(np.abs(np.fft.rfft(frames, axis=1)).T)
    scaled = (255 * power / max(float(power.max()), 1e-9)).astype(np.uint8)[::-1]
    return Image.fromarray(scaled, mode="L").resize(SPECTROGRAM_SIZE).convert("RGB")


def render_media(
    workspace: Workspace, takedown_id: int, veiled: bool, greyscale: bool = True
) -> tuple[bytes, str]:
    """(PNG bytes, media type): the picture re-encoded (for a video match, a strip of
    keyframes over the aligned range; for audio, a spectrogram of the matched segment),
    veiled (tiny, smoothed, grey unless the reviewer chose colour) or whole."""
    raw = _media_bytes(workspace, takedown_id)
    facts = item_facts(workspace, takedown_id)
    if facts["reference_modality"] == "video":
        image = keyframe_strip(raw, aligned_range(facts["explanation"]))
    elif facts["reference_modality"] == "audio":
        image = spectrogram(raw, audio_range(facts["explanation"]))
    else:
        try:
            with Image.open(io.BytesIO(raw)) as picture:
                if picture.width * picture.height > MAX_REVIEW_PIXELS:
                    raise Image.DecompressionBombError(f"{picture.width}x{picture.height}")
                picture.load()
                image = picture.convert("RGB")
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise CaseworkError(
                f"item {takedown_id}'s media is not a picture the console shows"
            ) from exc
    if veiled:
        width, height = image.size
        scale = VEILED_PIXELS / max(width, height)
        small = (image.convert("L") if greyscale else image).resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX
        )
        image = small.resize((width, height), Image.Resampling.BILINEAR).filter(
            ImageFilter.GaussianBlur(radius=max(width, height) / 60)
        )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), "image/png"


def audit_reveal(workspace: Workspace, takedown_id: int, account: str, shift_count: int) -> None:
    with workspace.session() as session:
        audit.record(
            session,
            account,
            "review.reveal",
            f"takedown:{takedown_id}",
            {"shift_reveals": shift_count},
        )


def audit_skip(workspace: Workspace, takedown_id: int, account: str) -> None:
    with workspace.session() as session:
        audit.record(session, account, "review.skip", f"takedown:{takedown_id}")


def case_takedowns(workspace: Workspace, case_id: str) -> list[dict[str, Any]]:
    """A case's queue items with their timelines (the supervisor's case page)."""
    with workspace.store.read_session() as session:
        takedowns = session.execute(
            select(Takedown).where(Takedown.case_id == case_id).order_by(Takedown.id)
        ).scalars()
        return [
            {
                "id": t.id,
                "status": t.status,
                "host": t.host,
                "location": t.location,
                "timeline": [
                    {
                        "at": _aware(e.at),
                        "from": e.from_status,
                        "to": e.to_status,
                        "by": e.actor,
                        "note": e.note,
                    }
                    for e in t.events
                ],
            }  # fmt: skip
            for t in takedowns
        ]
