"""ansim's command line: one command group per noun, each in `commands/<group>.py`.

Exit codes: 0 all good, 1 some items failed (or a check found problems), 2 the request
itself was refused (unknown id, bad value, no ansim home).
Every command that prints results takes --json; progress goes to stderr.

Start-up is kept short: a command group's module is imported (and its commands built) only
when that group is used, and command modules import detectors, indexes and the store inside
the commands that need them. `tests/commands/test_startup.py` checks that importing this
module loads none of them; `ansim bench startup` measures the time.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from ansim.commands import admin, client, matching, reporting, serve
from ansim.i18n import _, language
from typer.core import TyperGroup


@dataclass(frozen=True)
class LazyGroup:
    module: str
    attribute: str
    help: str

    def load(self) -> typer.Typer:
        return getattr(importlib.import_module(self.module), self.attribute)


# Name -> where its Typer app lives, and its one-line help (shown by `ansim --help` without
# importing the module).
GROUPS = {
    "case": LazyGroup(
        "ansim.commands.cases", "case_app", _("Support cases and the services given to them.")
    ),
    "ref": LazyGroup(
        "ansim.commands.references",
        "ref_app",
        _("References: what a victim reported, kept as fingerprints only."),
    ),
    "queue": LazyGroup("ansim.commands.queue", "queue_app", _("The takedown queue.")),
    "host": LazyGroup("ansim.commands.notices", "host_app", _("Hosts: where removal notices go.")),
    "notice": LazyGroup("ansim.commands.notices", "notice_app", _("Removal notices: draft, send.")),
    "crawl": LazyGroup(
        "ansim.commands.crawl", "crawl_app", _("Crawls: fetch sites, fingerprint what is there.")
    ),
    "evidence": LazyGroup(
        "ansim.commands.crawl", "evidence_app", _("Sealed WARC evidence of matches.")
    ),
    "audit": LazyGroup("ansim.commands.admin", "audit_app", _("The hash-chained audit log.")),
    "key": LazyGroup("ansim.commands.admin", "key_app", _("The data encryption key.")),
    "index": LazyGroup(
        "ansim.commands.admin", "index_app", _("The signal indexes (rebuildable from the store).")
    ),
    "log": LazyGroup("ansim.commands.admin", "log_app", _("Logs of the home: unexpected errors.")),
    "user": LazyGroup("ansim.commands.users", "user_app", _("Server accounts and their roles.")),
    "token": LazyGroup(
        "ansim.commands.users", "token_app", _("Personal API tokens (CLI, partners).")
    ),
    "bench": LazyGroup(
        "ansim.commands.bench", "bench_app", _("Benchmarks that measure precision and speed.")
    ),
    "model": LazyGroup(
        "ansim.commands.model",
        "model_app",
        _("Learned models: training the image copy descriptor."),
    ),
}


def localize(command: Any) -> None:
    """Help texts of a built command (and its subcommands) in the user's language: the
    docstrings and option helps are the catalogue's keys."""
    if language() == "en":
        return
    if command.help:
        command.help = _(command.help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _(param.help)
    for sub in (getattr(command, "commands", None) or {}).values():
        localize(sub)


class LazyGroups(TyperGroup):
    """The root command: each group in GROUPS stands in as a placeholder (its name and help,
    enough for the root's help and for "did you mean" suggestions) until it is used, when
    its module is imported and the group built."""

    listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            localize(command)
        self.placeholders = {
            name: TyperGroup(name=name, help=group.help) for name, group in GROUPS.items()
        }
        self.commands.update(self.placeholders)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None or command is not self.placeholders.get(cmd_name) or self.listing:
            return command
        built = typer.main.get_group(GROUPS[cmd_name].load())
        built.name, built.help = cmd_name, GROUPS[cmd_name].help
        built.rich_markup_mode = self.rich_markup_mode
        localize(built)
        self.commands[cmd_name] = built
        return built


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ansim {version('ansim')}")
        raise typer.Exit()


app = typer.Typer(
    cls=LazyGroups,
    help=_("ansim: find reposted victim material by fingerprint and drive its removal."),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    # A traceback's locals would print contact details, notes and keys.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help=_("Print the version and exit.")
        ),
    ] = False,
) -> None:
    """ansim: find reposted victim material by fingerprint and drive its removal."""


app.command("init")(admin.init)
app.command("hash")(matching.hash_command)
app.command("scan")(matching.scan)
app.command("report")(reporting.report)
app.command("serve")(serve.serve)
app.command("login")(client.login)
app.command("logout")(client.logout)


def localize_help_panels() -> None:
    """typer's own words on a help screen (panel titles, [required]) in the user's language.
    Only when help is about to be shown: loading typer's help renderer takes longer than a
    command's start may."""
    from typer import rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = _("Arguments")
    rich_utils.OPTIONS_PANEL_TITLE = _("Options")
    rich_utils.COMMANDS_PANEL_TITLE = _("Commands")
    rich_utils.ERRORS_PANEL_TITLE = _("Error")
    rich_utils.REQUIRED_LONG_STRING = _("[required]")
    rich_utils.DEFAULT_STRING = _("[default: {}]")


def coerce_only_given_values() -> None:
    """typer builds a pydantic TypeAdapter for every parameter it processes, also for one
    without a value (an option left out, `--help` unasked), which it then returns as None
    without asking the adapter (`typer._coercion.RuntimeParam.coerce`). Importing pydantic
    for that costs every command ~0.1 s CPU, as much as all of `case list` otherwise.
    Here the adapter is built when the first value comes: the same coercion, paid for only
    by commands given a value to coerce. (If typer's internals change, this steps aside.)"""
    try:
        from typer import _coercion, core
    except ImportError:
        return
    parameter = getattr(core, "_TyperParameter", None)
    if parameter is None or not hasattr(parameter, "get_runtime_param"):
        return

    @dataclass(frozen=True)
    class BuiltOnFirstValue(_coercion.RuntimeParam):
        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            built = _coercion.build_runtime_param(self.descriptor)
            param._runtime_param = built
            return built._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            descriptor = self.type_descriptor
            self._runtime_param = BuiltOnFirstValue(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                descriptor=descriptor,
            )
        return self._runtime_param

    parameter.get_runtime_param = get_runtime_param


def main() -> None:
    arguments = sys.argv[1:]
    # `ansim`, `ansim GROUP` and `--help` anywhere show help.
    shows_help = "--help" in arguments or (not arguments[1:] and arguments[:1] != ["--version"])
    if language() != "en" and shows_help:
        localize_help_panels()
    coerce_only_given_values()
    client.route(arguments)  # ANSIM_SERVER set: some commands act through the server
    try:
        app()
    except Exception as exc:  # a bug: the message may quote victim data, so it goes to the log
        sys.stderr.write(
            f"ansim: unexpected error ({type(exc).__name__}); details in {log_unexpected(exc)}\n"
        )
        sys.exit(1)


def log_unexpected(exc: BaseException) -> str:
    """Append the traceback to $ANSIM_HOME/logs/errors.log (0600, in a 0700 folder), its
    messages sealed: they may quote victim data."""
    from ansim.settings import Settings
    from ansim.store.error_log import record_error
    from ansim.store.home import resolve_home

    try:
        home = resolve_home(Settings.from_environment())
        return str(record_error(home.log_dir, home.key_file, exc))
    except (OSError, ValueError):
        return "nowhere (the log folder is not writable)"


if __name__ == "__main__":
    main()
