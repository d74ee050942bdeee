"""`ansim crawl ...` and `ansim evidence ...`: nightly crawls and their sealed WARC evidence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import (
    AllowLoopback,
    Engine,
    ImageVerification,
    JsonFlag,
    RayAddress,
    emit_json,
    err,
    out,
    refusals,
)
from ansim.commands.display import counts, print_fields
from ansim.commands.workspace import open_workspace
from ansim.i18n import _
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

if TYPE_CHECKING:
    from ansim.pipeline.crawl import CrawlSummary

crawl_app = typer.Typer(
    help="Crawls: fetch sites, fingerprint what is there.", no_args_is_help=True
)

evidence_app = typer.Typer(help="Sealed WARC evidence of matches.", no_args_is_help=True)


def print_crawl_summary(data: dict[str, Any], json_out: bool, verb: str) -> None:
    """A crawl's or URL scan's summary (`CrawlSummary.as_dict()`, here or from a server)."""
    if json_out:
        emit_json(data)
        return
    for m in data["match_list"]:
        out.print(Text(_("match") + " ", style="bold") + Text(m["url"]), highlight=False)
        out.print(
            "  "
            + _("case {case}, reference {reference}: {why}; queue item {item}").format(
                case=m["case_id"],
                reference=m["reference_id"],
                why=m["explanation"],
                item=m["takedown_id"],
            ),
            highlight=False,
        )
    print_fields(
        out,
        [
            (_("run"), str(data["run_id"])),
            (_("pages"), f"{data['pages']} {verb}"),
            (
                _("media"),
                _("{media} ({hashed} fingerprinted, {duplicate} duplicate content)").format(
                    media=data["media"],
                    hashed=data["media_hashed"],
                    duplicate=data["media_duplicate_content"],
                ),
            ),
            (_("matches"), str(data["matches"])),
            (_("queue items"), str(len(data["takedowns"]))),
            (_("time"), f"{data['elapsed_s']:.1f} s"),
            (_("outcomes"), counts(data["outcomes"])),
            (_("log"), str(data["log_path"])),
        ],
    )


def read_seeds(seeds: list[str]) -> list[str]:
    """URLs as given; a name that is not a URL is a file with one URL per line."""
    urls: list[str] = []
    for seed in seeds:
        if "://" in seed:
            urls.append(seed)
            continue
        try:
            lines = Path(seed).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CaseworkError(
                _("seed {seed!r} is neither a URL nor a readable file").format(seed=seed)
            ) from exc
        urls += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return urls


@crawl_app.command("run")
@refusals
def crawl_run(
    seeds: Annotated[
        list[str] | None, typer.Option("--seeds", help="Seed URLs, or files of URLs.")
    ] = None,
    max_pages: Annotated[int, typer.Option(help="Stop after this many pages.")] = 1000,
    max_depth: Annotated[int, typer.Option(help="Links followed from the seeds.")] = 3,
    scope: Annotated[str, typer.Option(help="same-site or allow-list.")] = "same-site",
    allow_host: Annotated[
        list[str] | None, typer.Option("--allow-host", help="Host (and subdomains) in scope.")
    ] = None,
    ignore_robots: Annotated[
        list[str] | None,
        typer.Option("--ignore-robots-for", help="Host whose robots.txt is overridden (logged)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last unfinished crawl.")
    ] = False,
    delay: Annotated[
        float, typer.Option(help="Minimum seconds between requests to a host.")
    ] = 0.25,
    host_concurrency: Annotated[int, typer.Option(help="Parallel requests per host.")] = 4,
    workers: Annotated[int, typer.Option(help="Pages in flight at once.")] = 16,
    hash_processes: Annotated[
        int, typer.Option(help="Fingerprinting processes (0: one per CPU, 1: in-process).")
    ] = 0,
    max_response_mb: Annotated[int, typer.Option(help="Cap per response, MiB.")] = 64,
    max_crawl_gb: Annotated[float, typer.Option(help="Cap on bytes fetched per crawl, GiB.")] = 20,
    image_verification: ImageVerification = "all",
    engine: Engine = "local",
    address: RayAddress = None,
    allow_loopback: AllowLoopback = False,
    json_out: JsonFlag = False,
) -> None:
    """Crawl from seed URLs: fetch pages (robots.txt, politeness, SSRF guard), fingerprint
    every image/video/audio and page text, queue matches with sealed WARC evidence.

    The frontier lives in the store: after any interruption (even kill -9) `--resume`
    continues without losing or duplicating anything. A log file is written per run.

    Examples: `ansim crawl run --seeds https://forum.example/ --max-pages 500`,
    `ansim crawl run --seeds seeds.txt --scope allow-list --allow-host img.example`,
    `ansim crawl run --resume --json`
    """
    from ansim.pipeline import crawl as crawling

    workspace = open_workspace()
    options = None
    if not resume:
        if not seeds:
            raise CaseworkError(_("give --seeds (URLs or files of URLs), or --resume"))
        options = crawling.CrawlOptions(
            seeds=read_seeds(seeds),
            max_pages=max_pages,
            max_depth=max_depth,
            scope=scope,
            allow_hosts=allow_host or [],
            allow_loopback=allow_loopback or workspace.settings.allow_loopback,
            ignore_robots_hosts=ignore_robots or [],
            max_response_bytes=max_response_mb << 20,
            max_crawl_bytes=int(max_crawl_gb * (1 << 30)),
            workers=workers,
            host_concurrency=host_concurrency,
            min_delay_s=delay,
            hash_processes=hash_processes,
            image_verification=image_verification,
            engine=engine,
            ray_address=address,
        )
        options.check()
        if engine == "ray":
            from ansim.pipeline.ray_engine import ray_available

            if not ray_available():
                raise CaseworkError(_("--engine ray needs Ray: pip install -e '.[cluster]'"))
    progress = Progress(
        TextColumn("crawling"),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task("crawl", total=None, stats="")

        def show(summary: CrawlSummary) -> None:
            stats = (
                f"{summary.pages} pages, {summary.media} media, {summary.matches} matches, "
                f"{sum(summary.outcomes.values())} urls finished"
            )
            progress.update(task, stats=stats)

        summary = crawling.run_crawl(workspace, options, resume=resume, on_progress=show)
    print_crawl_summary(summary.as_dict(), json_out, verb=_("crawled"))
    failures = {"internal_error", "media_error"}
    raise typer.Exit(1 if any(summary.outcomes.get(k) for k in failures) else 0)


@evidence_app.command("export")
@refusals
def evidence_export(
    evidence_id: int,
    out_dir: Annotated[Path, typer.Argument(help="Folder for the WARC file and its manifest.")],
    json_out: JsonFlag = False,
) -> None:
    """Decrypt one evidence bundle (listed by `ansim queue show ID`) for police or lawyers:
    the WARC file and its manifest of SHA-256 digests, fetch times and resolved IPs.
    Every digest is checked on the way out; the export is audited.

    Example: `ansim evidence export 3 ~/handover/C-2026-0001/`
    """
    from ansim.pipeline import evidence_service

    result = evidence_service.export_evidence(open_workspace(), evidence_id, out_dir)
    if json_out:
        emit_json(result)
    else:
        print_fields(
            out,
            [
                (_("wrote"), [str(path) for path in result["files"]]),
                ("WARC SHA-256", _("{digest} (verified)").format(digest=result["warc_sha256"])),
            ],
        )
