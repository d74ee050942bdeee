"""`ansim user ...` and `ansim token ...`: the server's accounts and personal API tokens.

These act on the store directly (the operator of the machine that holds the store and key);
the server enforces roles for everything done through it.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from ansim.commands.common import JsonFlag, emit_json, out, refusals
from ansim.pipeline.workspaces import open_workspace
from ansim.server import accounts
from ansim.server.tables import ROLES
from rich.table import Table

user_app = typer.Typer(help="Server accounts and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="Personal API tokens (CLI, partners).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _print_users(users: list[dict]) -> None:
    table = Table("name", "role", "disabled", "locked until", "created by")
    for user in users:
        table.add_row(
            user["name"], user["role"], "yes" if user["disabled"] else "",
            (user["locked_until"] or "")[:19], user["created_by"],
        )  # fmt: skip
    out.print(table)


@user_app.command("add")
@refusals
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    password_stdin: PasswordStdin = False,
    json_out: JsonFlag = False,
) -> None:
    """Add an account. Example: `ansim user add alice --role analyst` (asks for a password).

    A `partner` account has no password: give it a token (`ansim token create`).
    """
    password = None if role == "partner" else _read_password(password_stdin)
    shown = accounts.add_user(open_workspace(), name, role, password)
    emit_json(shown) if json_out else out.print(f"user {name} added ({role})")


@user_app.command("list")
@refusals
def user_list(json_out: JsonFlag = False) -> None:
    """List accounts with their roles and state."""
    users = accounts.list_users(open_workspace())
    emit_json(users) if json_out else _print_users(users)


@user_app.command("disable")
@refusals
def user_disable(
    name: str,
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Disable an account (its sessions and tokens stop working at once)."""
    shown = accounts.set_disabled(open_workspace(), name, disabled=not enable)
    emit_json(shown) if json_out else out.print(
        f"user {name} {'enabled' if enable else 'disabled'}"
    )


@user_app.command("passwd")
@refusals
def user_passwd(
    name: str, password_stdin: PasswordStdin = False, json_out: JsonFlag = False
) -> None:
    """Set an account's password (also lifts a lock-out)."""
    shown = accounts.set_password(open_workspace(), name, _read_password(password_stdin))
    emit_json(shown) if json_out else out.print(f"password of {name} changed")


@token_app.command("create")
@refusals
def token_create(
    name: Annotated[str, typer.Option(help="What the token is for, e.g. laptop.")],
    user: Annotated[str | None, typer.Option(help="Whose token (default: you).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Create a token; it is shown once. Example: `ansim token create --name laptop`"""
    workspace = open_workspace()
    shown = accounts.create_token(workspace, user or workspace.actor, name)
    if json_out:
        emit_json(shown)
    else:
        out.print(f"token {shown['id']} for {shown['user']} (shown once, keep it secret):")
        out.print(shown["token"], highlight=False, soft_wrap=True)


@token_app.command("list")
@refusals
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List tokens (never the tokens themselves)."""
    tokens = accounts.list_tokens(open_workspace(), user)
    if json_out:
        emit_json(tokens)
        return
    table = Table("id", "user", "name", "created", "last used", "revoked")
    for t in tokens:
        table.add_row(
            str(t["id"]), t["user"], t["name"], t["created_at"][:19],
            (t["last_used_at"] or "")[:19], (t["revoked_at"] or "")[:19],
        )  # fmt: skip
    out.print(table)


@token_app.command("revoke")
@refusals
def token_revoke(token_id: int, json_out: JsonFlag = False) -> None:
    """Revoke a token at once."""
    shown = accounts.revoke_token(open_workspace(), token_id)
    emit_json(shown) if json_out else out.print(f"token {token_id} revoked")
