"""The takedown lifecycle: which status may follow which, and who must confirm first.

    new ──> confirmed ──> notice_sent ──> removed ──> reappeared
     │                      ▲     │          ▲
     └─> rejected           │     ▼          │
                            └─ still_online ─┤
                                  │          │
                                  ▼          │
                              escalated ─────┘

The issue's edges, plus two it implies: a recheck of a `still_online` or `escalated` item
that finds the content gone must be able to record `removed` (otherwise content taken down
after the first failed recheck could only be "removed" by sending a needless notice first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ansim.casework.errors import CaseworkError
from ansim.store.tables import TAKEDOWN_STATUSES

STATUSES = TAKEDOWN_STATUSES

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"confirmed", "rejected"}),
    "confirmed": frozenset({"notice_sent"}),
    "rejected": frozenset(),
    "notice_sent": frozenset({"removed", "still_online"}),
    "still_online": frozenset({"notice_sent", "escalated", "removed"}),
    "escalated": frozenset({"removed"}),
    "removed": frozenset({"reappeared"}),
    "reappeared": frozenset(),
}

# Items a notice has gone out for and whose removal is not yet verified.
AWAITING_REMOVAL = ("notice_sent", "still_online", "escalated")


class LifecycleError(CaseworkError, ValueError):
    """A request the lifecycle refuses; the message says why, for the analyst."""


class InvalidTransition(LifecycleError):
    pass


class UnknownStatus(LifecycleError):
    pass


def check_status(status: str) -> str:
    if status not in TRANSITIONS:
        raise UnknownStatus(f"unknown status {status!r}; statuses are: {', '.join(STATUSES)}")
    return status


def allowed_next(status: str) -> frozenset[str]:
    return TRANSITIONS[check_status(status)]


def check_transition(item_id: int | str, from_status: str, to_status: str) -> None:
    """Raise unless `from_status -> to_status` is an edge of the lifecycle."""
    check_status(to_status)
    allowed = allowed_next(from_status)
    if to_status in allowed:
        return
    if to_status == from_status:
        raise InvalidTransition(f"queue item {item_id} is already {from_status}")
    hint = f"; from {from_status} it can become {', '.join(sorted(allowed))}" if allowed else ""
    raise InvalidTransition(
        f"queue item {item_id} is {from_status}; it cannot become {to_status}{hint}"
    )


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without tzinfo; everything ansim writes is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def transition_time(now: datetime, previous: datetime | None) -> datetime:
    """The timestamp for a new event: never before the item's previous event.

    Analysts on machines with skewed clocks share one PostgreSQL store; an event stamped
    before the one it follows would make durations negative and histories unreadable.
    """
    now = as_utc(now)
    if previous is None:
        return now
    return max(now, as_utc(previous))


# --- Confirmation ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmationPolicy:
    """How many distinct analysts must confirm an item before it is `confirmed`."""

    per_case_type: dict[str, int] = field(default_factory=dict)
    default: int = 1

    def required(self, case_type: str) -> int:
        return self.per_case_type.get(case_type, self.default)


@dataclass(frozen=True)
class ConfirmationOutcome:
    confirmed: bool
    analysts: tuple[str, ...]
    required: int

    @property
    def missing(self) -> int:
        return max(0, self.required - len(self.analysts))


def add_confirmation(
    item_id: int | str, earlier_analysts: Iterable[str], analyst: str, required: int
) -> ConfirmationOutcome:
    """One more analyst's confirmation; the item is confirmed once `required` distinct
    analysts have confirmed it. The same analyst twice counts once and is refused."""
    if required < 1:
        raise LifecycleError(f"confirmations required must be at least 1, not {required}")
    earlier = tuple(earlier_analysts)
    if analyst in earlier:
        raise InvalidTransition(
            f"queue item {item_id} was already confirmed by {analyst}; "
            f"it needs {required - len(earlier)} more analyst(s)"
        )
    analysts = (*earlier, analyst)
    return ConfirmationOutcome(len(analysts) >= required, analysts, required)
