"""`ansim report`: the support center's figures over a period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from ansim.commands.common import JsonFlag, emit_json, out, refusals
from ansim.commands.workspace import open_workspace


@refusals
def report(
    since: Annotated[
        str | None, typer.Option(help="From this date (UTC), e.g. 2026-03-01.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this date (default: now).")] = None,
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw the figures into this PNG.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Takedown figures: items by status, case type and host; services by kind; time to
    notice and to removal (median, p90, share within 24 h / 3 days / over 42 days);
    reappearance rate.

    Example: `ansim report --since 2026-03-01 --until 2026-04-01 --plot march.png`
    """
    from ansim.casework import report_service

    shown = report_service.build_report(
        open_workspace(),
        report_service.parse_moment(since) if since else None,
        report_service.parse_moment(until) if until else None,
        case_id,
        plot,
    )
    if json_out:
        emit_json(shown)
        return
    _print_report(shown)


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _print_report(shown: dict[str, Any]) -> None:
    since, until = (
        (shown["window"][key] or "")[:16].replace("T", " ") for key in ("since", "until")
    )
    out.print(
        f"[bold]Takedowns detected {since or 'from the start'} to {until}[/bold]: "
        f"{shown['items']} items in {shown['cases']} cases",
        highlight=False,
    )
    for title, key in (
        ("by status", "by_status"),
        ("by case type", "by_case_type"),
        ("by host", "by_host"),
        ("services", "services_by_kind"),
    ):
        counts = ", ".join(f"{k} {v}" for k, v in shown[key].items()) or "-"
        out.print(f"  {title}: {counts}", highlight=False)
    notice, removal = shown["detection_to_notice"], shown["detection_to_removal"]
    out.print(
        f"  detection -> notice: {notice['count']} items, median {_hours(notice['median_hours'])}"
        f", p90 {_hours(notice['p90_hours'])}"
    )
    out.print(
        f"  detection -> removal: {removal['count']} items, median "
        f"{_hours(removal['median_hours'])}, p90 {_hours(removal['p90_hours'])}; within 24 h "
        f"{_share(removal['share_within_24h'])}, within 3 days "
        f"{_share(removal['share_within_3_days'])}, over 42 days "
        f"{_share(removal['share_over_42_days'])}; still online after 42 days: "
        f"{removal['open_over_42_days']}"
    )
    again = shown["reappearance"]
    out.print(
        f"  reappeared: {again['reappeared']} of {again['removed']} removed "
        f"({_share(again['rate'])})"
    )
    if shown["clock_skew_events"]:
        out.print(
            f"  [yellow]{shown['clock_skew_events']} events stamped before detection[/yellow]"
        )
    if shown.get("plot"):
        out.print(f"  plot: {shown['plot']}", highlight=False)
