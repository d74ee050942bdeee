"""ansim's command line: one command group per noun, each in `commands/<group>.py`.

Exit codes: 0 all good, 1 some items failed (or a check found problems), 2 the request
itself was refused (unknown id, bad value, no ansim home).
Every command that prints results takes --json; progress goes to stderr.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import UTC, datetime

import typer
from ansim.commands import (
    admin,
    bench,
    cases,
    crawl,
    matching,
    model,
    notices,
    queue,
    references,
    reporting,
)
from ansim.store.home import resolve_home
from ansim.store.private_files import private_dir

app = typer.Typer(
    help="ansim: find reposted victim material by fingerprint and drive its removal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    # A traceback's locals would print contact details, notes and keys.
    pretty_exceptions_show_locals=False,
)
app.command("init")(admin.init)
app.command("hash")(matching.hash_command)
app.command("scan")(matching.scan)
app.command("report")(reporting.report)
app.add_typer(cases.case_app, name="case")
app.add_typer(references.ref_app, name="ref")
app.add_typer(queue.queue_app, name="queue")
app.add_typer(notices.host_app, name="host")
app.add_typer(notices.notice_app, name="notice")
app.add_typer(crawl.crawl_app, name="crawl")
app.add_typer(crawl.evidence_app, name="evidence")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.key_app, name="key")
app.add_typer(admin.index_app, name="index")
app.add_typer(bench.bench_app, name="bench")
app.add_typer(model.model_app, name="model")


def main() -> None:
    try:
        app()
    except Exception as exc:  # a bug: the message may quote victim data, so it goes to the log
        sys.stderr.write(
            f"ansim: unexpected error ({type(exc).__name__}); details in {log_unexpected(exc)}\n"
        )
        sys.exit(1)


def log_unexpected(exc: BaseException) -> str:
    """Append the traceback to $ANSIM_HOME/logs/errors.log (0600, in a 0700 folder)."""
    try:
        log_dir = private_dir(resolve_home().log_dir)
        path = log_dir / "errors.log"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()}\n")
            handle.write("".join(traceback.format_exception(exc)))
        return str(path)
    except OSError:
        return "nowhere (the log folder is not writable)"


if __name__ == "__main__":
    main()
