"""ansim's command line: one command group per noun, each in `commands/<group>.py`.

Exit codes: 0 all good, 1 some items failed (or a check found problems), 2 the request
itself was refused (unknown id, bad value, no ansim home).
Every command that prints results takes --json; progress goes to stderr.
"""

from __future__ import annotations

import sys

import typer
from ansim.commands import (
    admin,
    bench,
    bench_serve,
    cases,
    client,
    crawl,
    matching,
    model,
    notices,
    queue,
    references,
    reporting,
    serve,
    users,
)

app = typer.Typer(
    help="ansim: find reposted victim material by fingerprint and drive its removal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
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
app.add_typer(admin.index_app, name="index")
app.add_typer(bench.bench_app, name="bench")
app.add_typer(model.model_app, name="model")
app.add_typer(users.user_app, name="user")
app.add_typer(users.token_app, name="token")
app.command("serve")(serve.serve)
bench.bench_app.command("serve")(bench_serve.bench_serve)
app.command("login")(client.login)
app.command("logout")(client.logout)


def main() -> None:
    client.route(sys.argv[1:])  # ANSIM_SERVER set: some commands act through the server
    app()


if __name__ == "__main__":
    main()
