"""`ansim bench serve`: HMA lookups a second against a large PDQ bank (see
benchmarks/serve_load.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from ansim.commands.common import JsonFlag, emit_json, err, out, refusals


@refusals
def bench_serve(
    entries: Annotated[int, typer.Option(help="PDQ hashes in the bank.")] = 1_000_000,
    seconds: Annotated[float, typer.Option(help="How long to send lookups.")] = 20.0,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
    home: Annotated[
        Path | None, typer.Option(help="Where to build the bench home (default: a temp dir).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Start `ansim serve` on a synthetic bank and measure `/m/lookup` requests/s and p99.

    Example: `ansim bench serve --entries 1000000 --seconds 20`
    """
    from ansim.benchmarks.serve_load import run

    with tempfile.TemporaryDirectory(prefix="ansim-bench-serve-") as scratch:
        root = home or Path(scratch) / "home"
        err.print(f"building a {entries:,}-entry PDQ bank in {root} ...")
        result = run(root, entries, seconds, concurrency).as_dict()
    if json_out:
        emit_json(result)
        return
    out.print(
        f"{result['requests_per_second']} lookups/s over {result['seconds']} s "
        f"({result['requests']} requests, {result['errors']} errors, {concurrency} in flight); "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; bank of {entries:,} "
        f"(built in {result['build_s']} s, server ready in {result['index_load_s']} s); "
        f"near copies found {result['near_copies_found']}/{result['near_copies_sent']}"
    )
    raise typer.Exit(1 if result["errors"] else 0)
