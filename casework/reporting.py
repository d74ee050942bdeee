"""Report figures over takedown histories: counts, times to notice and removal, reappearance.

Pure: takes `ItemHistory` and `ServiceRecord` values (the store builds them) and returns
plain dicts, so every figure can be checked against hand-computed values.

Definitions (the report prints them too):
- An item is in the window when it was detected in [since, until).
- Durations run from detection to the first notice / the first verified removal, in hours.
- Median and p90 use linear interpolation between closest ranks (numpy's default).
- Shares "removed within 24 h / 3 days" and "over 42 days" are of the removed items
  (including those that later reappeared). Items still awaiting removal more than 42 days
  after detection, as of `until`, are counted apart as `open_over_42_days`.
- Reappearance rate: items that reappeared / items that were ever removed.
- An event stamped before its item's detection (clock skew) counts as zero hours and is
  counted in `clock_skew_events`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from ansim.casework.lifecycle import AWAITING_REMOVAL, STATUSES, as_utc

HOUR = timedelta(hours=1)
WITHIN_24H = timedelta(hours=24)
WITHIN_3D = timedelta(days=3)
OVER_42D = timedelta(days=42)


@dataclass(frozen=True)
class ItemHistory:
    takedown_id: int
    case_id: str
    case_type: str
    host: str | None
    status: str
    detected_at: datetime
    first_notice_at: datetime | None = None
    removed_at: datetime | None = None
    reappeared: bool = False


@dataclass(frozen=True)
class ServiceRecord:
    case_id: str
    kind: str
    given_on: datetime


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear"))


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def in_window(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    moment = as_utc(moment)
    if since is not None and moment < as_utc(since):
        return False
    return not (until is not None and moment >= as_utc(until))


def _hours(start: datetime, end: datetime) -> tuple[float, bool]:
    """Hours from start to end, clamped at zero; the flag says whether it was negative."""
    delta = as_utc(end) - as_utc(start)
    return max(delta / HOUR, 0.0), delta < timedelta(0)


def _duration_summary(hours: list[float]) -> dict[str, Any]:
    return {
        "count": len(hours),
        "median_hours": percentile(hours, 50),
        "p90_hours": percentile(hours, 90),
    }


def compute_report(
    items: Iterable[ItemHistory],
    services: Iterable[ServiceRecord] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every figure of `ansim report`. `now` (default: until) dates the 42-day open count."""
    chosen = [item for item in items if in_window(item.detected_at, since, until)]
    as_of = as_utc(now or until) if (now or until) else None
    skewed = 0
    to_notice: list[float] = []
    to_removal: list[float] = []
    for item in chosen:
        if item.first_notice_at is not None:
            hours, negative = _hours(item.detected_at, item.first_notice_at)
            to_notice.append(hours)
            skewed += negative
        if item.removed_at is not None:
            hours, negative = _hours(item.detected_at, item.removed_at)
            to_removal.append(hours)
            skewed += negative
    removed = len(to_removal)
    within_24h = sum(hours <= WITHIN_24H / HOUR for hours in to_removal)
    within_3d = sum(hours <= WITHIN_3D / HOUR for hours in to_removal)
    over_42d = sum(hours > OVER_42D / HOUR for hours in to_removal)
    open_over_42d = (
        sum(
            item.status in AWAITING_REMOVAL and as_of - as_utc(item.detected_at) > OVER_42D
            for item in chosen
        )
        if as_of is not None
        else None
    )
    reappeared = sum(item.reappeared for item in chosen if item.removed_at is not None)
    by_status = Counter(item.status for item in chosen)
    chosen_services = [s for s in services if in_window(s.given_on, since, until)]
    return {
        "window": {
            "since": as_utc(since).isoformat() if since else None,
            "until": as_utc(until).isoformat() if until else None,
        },
        "items": len(chosen),
        "cases": len({item.case_id for item in chosen}),
        "by_status": {status: by_status[status] for status in STATUSES if by_status[status]},
        "by_case_type": dict(sorted(Counter(item.case_type for item in chosen).items())),
        "by_host": dict(Counter(item.host or "(no host)" for item in chosen).most_common()),
        "services_by_kind": dict(sorted(Counter(s.kind for s in chosen_services).items())),
        "detection_to_notice": _duration_summary(to_notice),
        "detection_to_removal": {
            **_duration_summary(to_removal),
            "share_within_24h": share(within_24h, removed),
            "share_within_3_days": share(within_3d, removed),
            "share_over_42_days": share(over_42d, removed),
            "open_over_42_days": open_over_42d,
        },
        "reappearance": {
            "removed": removed,
            "reappeared": reappeared,
            "rate": share(reappeared, removed),
        },
        "clock_skew_events": skewed,
    }


def daily_counts(
    moments: Iterable[datetime], since: datetime, until: datetime
) -> tuple[list[datetime], list[int]]:
    """Events per UTC day from since to until (for the plots)."""
    start = as_utc(since).replace(hour=0, minute=0, second=0, microsecond=0)
    days = max(1, int(np.ceil((as_utc(until) - start) / timedelta(days=1))))
    counts = [0] * days
    for moment in moments:
        offset = (as_utc(moment) - start) // timedelta(days=1)
        if 0 <= offset < days:
            counts[offset] += 1
    return [start + timedelta(days=d) for d in range(days)], counts
