"""Report figures on a seeded history, against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ansim.casework.reporting import ItemHistory, ServiceRecord, compute_report, daily_counts

H = timedelta(hours=1)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def item(
    n: int,
    detected: datetime,
    status: str,
    notice_h: float | None = None,
    removed_h: float | None = None,
    reappeared: bool = False,
    case_type: str = "digital-sex-crime",
    host: str | None = "a.example",
) -> ItemHistory:
    return ItemHistory(
        takedown_id=n,
        case_id=f"C-2026-{n % 3:04d}",
        case_type=case_type,
        host=host,
        status=status,
        detected_at=detected,
        first_notice_at=None if notice_h is None else detected + notice_h * H,
        removed_at=None if removed_h is None else detected + removed_h * H,
        reappeared=reappeared,
    )


SEEDED = [
    item(1, MARCH + 1 * H, "removed", 2, 10),
    item(2, MARCH + 2 * H, "reappeared", 5, 20, reappeared=True),
    item(3, MARCH + 3 * H, "removed", 1, 30, host="b.example"),
    item(4, MARCH + 4 * H, "removed", 3, 60, case_type="stalking"),
    item(5, MARCH + 5 * H, "removed", 4, 100, host="b.example"),
    item(6, datetime(2026, 1, 10, tzinfo=UTC), "removed", 10, 1100),
    item(7, datetime(2026, 2, 1, tzinfo=UTC), "still_online", 6, host="c.example"),
    item(8, datetime(2026, 3, 20, tzinfo=UTC), "notice_sent", 8),
    item(9, datetime(2026, 3, 25, tzinfo=UTC), "new", host=None),
    item(10, datetime(2026, 3, 25, tzinfo=UTC), "rejected", case_type="other"),
    item(11, datetime(2025, 12, 20, tzinfo=UTC), "removed", 1, 2),  # before the window
    item(12, datetime(2026, 3, 28, tzinfo=UTC), "notice_sent", -0.5),  # a skewed clock
]
SERVICES = [
    ServiceRecord("C-2026-0001", "counseling", MARCH),
    ServiceRecord("C-2026-0001", "deletion", MARCH + 3 * H),
    ServiceRecord("C-2026-0002", "counseling", datetime(2026, 2, 2, tzinfo=UTC)),
    ServiceRecord("C-2026-0002", "legal", datetime(2025, 11, 1, tzinfo=UTC)),  # outside
]


def test_seeded_history_matches_hand_computed_figures() -> None:
    report = compute_report(SEEDED, SERVICES, since=SINCE, until=UNTIL)
    assert report["items"] == 11  # item 11 was detected before the window
    assert report["cases"] == 3
    assert report["by_status"] == {
        "new": 1,
        "rejected": 1,
        "notice_sent": 2,
        "still_online": 1,
        "removed": 5,
        "reappeared": 1,
    }
    assert report["by_case_type"] == {"digital-sex-crime": 9, "other": 1, "stalking": 1}
    assert report["by_host"] == {"a.example": 7, "b.example": 2, "c.example": 1, "(no host)": 1}
    assert report["services_by_kind"] == {"counseling": 2, "deletion": 1}

    # Notice delays, sorted: 0 (skew clamped) 1 2 3 4 5 6 8 10 -> n = 9.
    # median = 4; p90 at rank 0.9 * 8 = 7.2 -> 8 + 0.2 * (10 - 8) = 8.4.
    notice = report["detection_to_notice"]
    assert notice == {"count": 9, "median_hours": 4.0, "p90_hours": pytest.approx(8.4)}

    # Removal delays, sorted: 10 20 30 60 100 1100 -> n = 6.
    # median = (30 + 60) / 2 = 45; p90 at rank 0.9 * 5 = 4.5 -> 100 + 0.5 * 1000 = 600.
    # <= 24 h: 10, 20 -> 2/6; <= 72 h: 10 20 30 60 -> 4/6; > 1008 h: 1100 -> 1/6.
    removal = report["detection_to_removal"]
    assert removal["count"] == 6
    assert removal["median_hours"] == 45.0
    assert removal["p90_hours"] == pytest.approx(600.0)
    assert removal["share_within_24h"] == pytest.approx(2 / 6)
    assert removal["share_within_3_days"] == pytest.approx(4 / 6)
    assert removal["share_over_42_days"] == pytest.approx(1 / 6)
    # Item 7 (still online, detected Feb 1: 59 days before Apr 1); item 8 is only 12 days old.
    assert removal["open_over_42_days"] == 1

    assert report["reappearance"] == {"removed": 6, "reappeared": 1, "rate": pytest.approx(1 / 6)}
    assert report["clock_skew_events"] == 1


def test_window_bounds_are_half_open() -> None:
    edge = [item(1, UNTIL, "new"), item(2, SINCE, "new")]
    assert compute_report(edge, since=SINCE, until=UNTIL)["items"] == 1


def test_naive_timestamps_are_read_as_utc() -> None:
    naive = [item(1, MARCH.replace(tzinfo=None), "removed", 1, 5)]
    report = compute_report(naive, since=SINCE, until=UNTIL)
    assert report["items"] == 1 and report["detection_to_removal"]["median_hours"] == 5.0


def test_empty_history_gives_empty_figures_not_errors() -> None:
    report = compute_report([], [], since=SINCE, until=UNTIL)
    assert report["items"] == 0
    assert report["detection_to_removal"]["median_hours"] is None
    assert report["detection_to_removal"]["share_within_24h"] is None
    assert report["reappearance"]["rate"] is None


def test_without_a_date_the_open_count_is_not_guessed() -> None:
    assert compute_report(SEEDED)["detection_to_removal"]["open_over_42_days"] is None


def test_daily_counts() -> None:
    days, counts = daily_counts(
        [MARCH, MARCH + 5 * H, MARCH + 30 * H, UNTIL], MARCH, MARCH + timedelta(days=3)
    )
    assert days[0] == MARCH and len(days) == 3
    assert counts == [2, 1, 0]


def test_plot_is_a_png(tmp_path) -> None:  # noqa: ANN001
    from ansim.casework.report_plot import plot_report

    report = compute_report(SEEDED, SERVICES, since=SINCE, until=UNTIL)
    path = plot_report(report, SEEDED, SINCE, UNTIL, tmp_path / "plots" / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
