"""Every allowed and every forbidden status pair of the takedown lifecycle."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from ansim.casework.lifecycle import (
    STATUSES,
    ConfirmationPolicy,
    InvalidTransition,
    LifecycleError,
    UnknownStatus,
    add_confirmation,
    check_transition,
    transition_time,
)

# Written out by hand from the issue (plus the two recheck edges lifecycle.py explains),
# so a change to the table has to change this test too.
ALLOWED = {
    ("new", "confirmed"),
    ("new", "rejected"),
    ("confirmed", "notice_sent"),
    ("notice_sent", "removed"),
    ("notice_sent", "still_online"),
    ("still_online", "notice_sent"),
    ("still_online", "escalated"),
    ("still_online", "removed"),
    ("escalated", "removed"),
    ("removed", "reappeared"),
}
ALL_PAIRS = list(itertools.product(STATUSES, STATUSES))


@pytest.mark.parametrize(("from_status", "to_status"), sorted(ALLOWED))
def test_allowed_edges_pass(from_status: str, to_status: str) -> None:
    check_transition(1, from_status, to_status)


@pytest.mark.parametrize(
    ("from_status", "to_status"), [pair for pair in ALL_PAIRS if pair not in ALLOWED]
)
def test_every_other_pair_is_refused(from_status: str, to_status: str) -> None:
    with pytest.raises(InvalidTransition, match=f"queue item 7 is .*{from_status}"):
        check_transition(7, from_status, to_status)


def test_notice_needs_confirmation_first() -> None:
    with pytest.raises(InvalidTransition, match="from new it can become confirmed, rejected"):
        check_transition(3, "new", "notice_sent")


@pytest.mark.parametrize(("from_status", "to_status"), [("new", "deleted"), ("gone", "new")])
def test_unknown_statuses_are_named(from_status: str, to_status: str) -> None:
    with pytest.raises(UnknownStatus, match="unknown status"):
        check_transition(1, from_status, to_status)


def test_two_analyst_policy_needs_two_distinct_people() -> None:
    policy = ConfirmationPolicy(per_case_type={"child-exploitation": 2})
    required = policy.required("child-exploitation")
    assert required == 2 and policy.required("stalking") == 1
    first = add_confirmation(5, [], "kim", required)
    assert not first.confirmed and first.missing == 1
    with pytest.raises(InvalidTransition, match="already confirmed by kim"):
        add_confirmation(5, first.analysts, "kim", required)
    second = add_confirmation(5, first.analysts, "lee", required)
    assert second.confirmed and second.analysts == ("kim", "lee")


def test_single_analyst_policy_confirms_at_once() -> None:
    assert add_confirmation(1, [], "kim", ConfirmationPolicy().required("other")).confirmed


def test_policy_below_one_is_refused() -> None:
    with pytest.raises(LifecycleError, match="at least 1"):
        add_confirmation(1, [], "kim", 0)


def test_transition_time_never_goes_before_the_previous_event() -> None:
    previous = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    skewed_now = previous - timedelta(minutes=3)
    assert transition_time(skewed_now, previous) == previous
    later = previous + timedelta(seconds=1)
    assert transition_time(later, previous) == later
    # SQLite gives naive datetimes back; they are UTC.
    assert transition_time(skewed_now, previous.replace(tzinfo=None)) == previous
