"""The PNG of `ansim report --plot`: status counts, daily activity, time to removal, hosts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
from ansim.casework.lifecycle import as_utc  # noqa: E402
from ansim.casework.reporting import HOUR, ItemHistory, daily_counts, in_window  # noqa: E402

STATUS_COLOURS = {
    "new": "#9e9e9e",
    "confirmed": "#64b5f6",
    "rejected": "#bdbdbd",
    "notice_sent": "#1976d2",
    "still_online": "#ef6c00",
    "escalated": "#c62828",
    "removed": "#2e7d32",
    "reappeared": "#8e24aa",
}
TOP_HOSTS = 10


def plot_report(
    report: dict[str, Any],
    items: Sequence[ItemHistory],
    since: datetime,
    until: datetime,
    path: Path | BinaryIO,
) -> Path | BinaryIO:
    """Draw the four figures into `path`: a file, or a buffer for a page served from
    memory (`ansim serve`'s report page)."""
    chosen = [item for item in items if in_window(item.detected_at, since, until)]
    figure, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    _status_bars(axes[0][0], report["by_status"])
    _daily_activity(axes[0][1], chosen, since, until)
    _removal_curve(axes[1][0], chosen, report)
    _hosts(axes[1][1], report["by_host"])
    window = f"{as_utc(since):%Y-%m-%d} to {as_utc(until):%Y-%m-%d}"
    figure.suptitle(
        f"Takedowns detected {window}: {report['items']} items, {report['cases']} cases",
        fontsize=14,
    )
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
    return path


def _status_bars(axis: plt.Axes, by_status: dict[str, int]) -> None:
    statuses = list(by_status)
    bars = axis.bar(
        statuses,
        [by_status[s] for s in statuses],
        color=[STATUS_COLOURS.get(s, "grey") for s in statuses],
    )
    axis.bar_label(bars)
    axis.set_title("Items by current status")
    axis.set_ylabel("items")
    axis.tick_params(axis="x", rotation=30)


def _daily_activity(
    axis: plt.Axes, items: Sequence[ItemHistory], since: datetime, until: datetime
) -> None:
    days, detected = daily_counts((i.detected_at for i in items), since, until)
    _, noticed = daily_counts((i.first_notice_at for i in items if i.first_notice_at), since, until)
    _, removed = daily_counts((i.removed_at for i in items if i.removed_at), since, until)
    axis.bar(days, detected, width=0.8, color="#90caf9", label="detected")
    axis.plot(days, noticed, color="#1976d2", marker=".", label="first notice sent")
    axis.plot(days, removed, color="#2e7d32", marker=".", label="verified removed")
    axis.set_title("Activity per day (UTC)")
    axis.set_ylabel("items")
    axis.legend(loc="upper left")
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    axis.tick_params(axis="x", rotation=30)


def _removal_curve(axis: plt.Axes, items: Sequence[ItemHistory], report: dict[str, Any]) -> None:
    removal = report["detection_to_removal"]
    days = sorted(
        max((as_utc(i.removed_at) - as_utc(i.detected_at)) / HOUR, 0.0) / 24
        for i in items
        if i.removed_at is not None
    )
    if days:
        share = np.arange(1, len(days) + 1) / len(days)
        axis.step(days, share, where="post", color="#2e7d32")
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xticks([0, 1, 3, 7, 14, 42, 90])
        axis.xaxis.set_major_formatter(mticker.ScalarFormatter())
    for mark, label in ((1, "24 h"), (3, "3 days"), (42, "42 days")):
        axis.axvline(mark, color="grey", linestyle=":", linewidth=1)
        axis.text(mark, 0.02, f" {label}", color="grey", fontsize=8)
    median = removal["median_hours"]
    summary = (
        f"removed: {removal['count']}, median {median / 24:.1f} d, "
        f"p90 {removal['p90_hours'] / 24:.1f} d\n"
        f"reappeared: {report['reappearance']['reappeared']}"
        if median is not None
        else "no verified removals in this window"
    )
    axis.set_title("Time from detection to verified removal")
    axis.set_xlabel("days since detection")
    axis.set_ylabel("share of removed items")
    axis.set_ylim(0, 1.05)
    axis.text(0.98, 0.05, summary, transform=axis.transAxes, ha="right", va="bottom", fontsize=9)


def _hosts(axis: plt.Axes, by_host: dict[str, int]) -> None:
    top = list(by_host.items())[:TOP_HOSTS][::-1]
    if top:
        bars = axis.barh([host for host, _ in top], [count for _, count in top], color="#5c6bc0")
        axis.bar_label(bars)
    axis.set_title(f"Items by host (top {TOP_HOSTS})")
    axis.set_xlabel("items")
