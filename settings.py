"""Every `ANSIM_*` environment variable, read once into a frozen `Settings`.

Commands build it (`Settings.from_environment()`, through `open_workspace`) and pass it
down on the Workspace; services take the settings or the values they need. No other
module reads these variables. This module imports nothing of ansim, so every package,
the detector included, may depend on it.

| variable                 | field              | default                        |
|--------------------------|--------------------|--------------------------------|
| ANSIM_HOME               | home               | ~/.ansim                       |
| ANSIM_DB_URL             | db_url             | SQLite file in the home        |
| ANSIM_KEY_FILE           | key_file           | secret.key in the home         |
| ANSIM_AUDIT_KEY_FILE     | audit_key_file     | audit.key in the home          |
| ANSIM_ANALYST            | analyst            | the login name                 |
| ANSIM_SMTP_URL           | smtp_url           | none (notices are not sent)    |
| ANSIM_SMTP_PASSWORD      | smtp_password      | none (never shown in a repr)   |
| ANSIM_SMTP_PASSWORD_FILE | smtp_password_file | none (a 0600 file)             |
| ANSIM_NOTICE_FROM        | notice_from        | none (drafting refuses)        |
| ANSIM_NOTICE_ORG         | notice_org         | none ("Victim Support Center") |
| ANSIM_NOTICE_PHONE       | notice_phone       | none                           |
| ANSIM_ALLOW_LOOPBACK     | allow_loopback     | off (1 or 0)                   |
| ANSIM_RECHECK_USER_AGENT | recheck_user_agent | an ordinary browser's          |
| ANSIM_DESCRIPTOR_WEIGHTS | descriptor_weights | models/weights/descriptor.pt   |
| ANSIM_SHARED_DATA        | shared_data        | ../shared/data beside the tree |
| ANSIM_LANG               | lang               | the locale's (ko or en)        |
| ANSIM_SERVER             | server             | none (the CLI works embedded)  |
| ANSIM_SERVER_CA          | server_ca          | the system's CA certificates   |
| ANSIM_CLIENT_FILE        | client_file        | ~/.config/ansim/client.json    |
| ANSIM_INDEX_CACHE_DIR    | index_cache_dir    | ~/.cache/ansim/indexes         |
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "ANSIM_"
# Variables that changed their name: refused with the new name rather than ignored.
RENAMED = {"ANSIM_FETCH_ALLOW_LOOPBACK": "ANSIM_ALLOW_LOOPBACK"}
FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class SettingsError(ValueError):
    """An environment variable with a value ansim cannot use."""


def _default_home() -> Path:
    return Path.home() / ".ansim"


def _default_index_cache_dir() -> Path:
    return Path.home() / ".cache" / "ansim" / "indexes"


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)
    db_url: str | None = None
    key_file: Path | None = None
    audit_key_file: Path | None = None
    analyst: str = field(default_factory=getpass.getuser)
    smtp_url: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_password_file: Path | None = None
    notice_from: str | None = None
    notice_org: str | None = None
    notice_phone: str | None = None
    # Fetching from 127.0.0.0/8 and ::1 (tests, local use), for crawls, scans and
    # re-checks alike; private ranges stay refused.
    allow_loopback: bool = False
    # Re-checks fetch as an ordinary browser unless a host asks to be told (cloaking).
    recheck_user_agent: str | None = None
    descriptor_weights: Path | None = None
    shared_data: Path | None = None
    lang: str | None = None
    # The CLI as a client of `ansim serve`: its URL, a private CA, where the token is kept.
    server: str | None = None
    server_ca: Path | None = None
    client_file: Path | None = None
    # Where a Ray node keeps its replicas of a store's reference banks (read on the node
    # where an actor runs, from that node's environment; see pipeline.ray_engine).
    index_cache_dir: Path = field(default_factory=_default_index_cache_dir)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from `environ` (default: this process's environment); an empty
        variable counts as unset."""
        env = {k: v for k, v in (os.environ if environ is None else environ).items() if v}
        for old, new in RENAMED.items():
            if old in env:
                raise SettingsError(f"{old} is now called {new}: rename it")
        found = {
            "home": _path(env.get("ANSIM_HOME")),
            "db_url": env.get("ANSIM_DB_URL"),
            "key_file": _path(env.get("ANSIM_KEY_FILE")),
            "audit_key_file": _path(env.get("ANSIM_AUDIT_KEY_FILE")),
            "analyst": env.get("ANSIM_ANALYST"),
            "smtp_url": env.get("ANSIM_SMTP_URL"),
            "smtp_password": env.get("ANSIM_SMTP_PASSWORD"),
            "smtp_password_file": _path(env.get("ANSIM_SMTP_PASSWORD_FILE")),
            "notice_from": env.get("ANSIM_NOTICE_FROM"),
            "notice_org": env.get("ANSIM_NOTICE_ORG"),
            "notice_phone": env.get("ANSIM_NOTICE_PHONE"),
            "allow_loopback": _flag(env, "ANSIM_ALLOW_LOOPBACK"),
            "recheck_user_agent": env.get("ANSIM_RECHECK_USER_AGENT"),
            "descriptor_weights": _path(env.get("ANSIM_DESCRIPTOR_WEIGHTS")),
            "shared_data": _path(env.get("ANSIM_SHARED_DATA")),
            "lang": env.get("ANSIM_LANG"),
            "server": env.get("ANSIM_SERVER"),
            "server_ca": _path(env.get("ANSIM_SERVER_CA")),
            "client_file": _path(env.get("ANSIM_CLIENT_FILE")),
            "index_cache_dir": _path(env.get("ANSIM_INDEX_CACHE_DIR")),
        }
        return cls(**{name: value for name, value in found.items() if value is not None})


def variable(field_name: str) -> str:
    """The environment variable behind a field, for a child process's environment."""
    return PREFIX + {"lang": "LANG"}.get(field_name, field_name.upper())


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    value = env.get(name)
    if value is None:
        return None
    try:
        return FLAG_VALUES[value.strip().lower()]
    except KeyError:
        raise SettingsError(f"{name} must be 1 or 0, not {value!r}") from None
