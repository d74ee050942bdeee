"""`ansim report`: the support center's figures over a period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from ansim.commands.common import JsonFlag, emit_json, out, refusals
from ansim.commands.display import print_fields, when
from ansim.commands.workspace import open_workspace
from ansim.i18n import _
from rich.text import Text


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
    print_report(shown)


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 48:
        return _("{hours:.1f} h").format(hours=value)
    return _("{days:.1f} days").format(days=value / 24)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def print_report(shown: dict[str, Any]) -> None:
    since, until = (shown["window"][key] for key in ("since", "until"))
    out.print(
        Text(
            _("Takedowns detected {since} to {until}: {items} items in {cases} cases").format(
                since=when(since) if since else _("from the start"),
                until=when(until),
                items=shown["items"],
                cases=shown["cases"],
            ),
            style="bold",
        ),
        highlight=False,
    )
    notice, removal = shown["detection_to_notice"], shown["detection_to_removal"]
    again = shown["reappearance"]
    fields = [
        (title, ", ".join(f"{_(k)} {v}" for k, v in shown[key].items()) or "-")
        for title, key in (
            (_("by status"), "by_status"),
            (_("by case type"), "by_case_type"),
            (_("by host"), "by_host"),
            (_("services"), "services_by_kind"),
        )
    ]
    fields += [
        (
            _("detection -> notice"),
            _("{count} items, median {median}, p90 {p90}").format(
                count=notice["count"],
                median=_hours(notice["median_hours"]),
                p90=_hours(notice["p90_hours"]),
            ),
        ),
        (
            _("detection -> removal"),
            [
                _("{count} items, median {median}, p90 {p90}").format(
                    count=removal["count"],
                    median=_hours(removal["median_hours"]),
                    p90=_hours(removal["p90_hours"]),
                ),
                _("within 24 h {day}, within 3 days {days}, over 42 days {over}").format(
                    day=_share(removal["share_within_24h"]),
                    days=_share(removal["share_within_3_days"]),
                    over=_share(removal["share_over_42_days"]),
                ),
                _("still online after 42 days: {count}").format(count=removal["open_over_42_days"]),
            ],
        ),
        (
            _("reappeared"),
            _("{reappeared} of {removed} removed ({rate})").format(
                reappeared=again["reappeared"], removed=again["removed"], rate=_share(again["rate"])
            ),
        ),
    ]
    if shown["clock_skew_events"]:
        fields.append((_("events stamped before detection"), str(shown["clock_skew_events"])))
    if shown.get("plot"):
        fields.append((_("plot"), str(shown["plot"])))
    print_fields(out, fields, indent=2)
