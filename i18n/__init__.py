"""One message catalogue for everything a person reads: the command line and the web console.

Messages are written in English in the code, wrapped in `_()`; `ko.py` holds their Korean.
The language comes from `ANSIM_LANG` (ko or en), else from the locale (`LC_ALL`,
`LC_MESSAGES`, `LANG`): Korean where the locale is Korean, English otherwise.
A message missing from the catalogue is shown in English; `tests/test_i18n.py` fails on it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache

from ansim.settings import Settings, SettingsError

LANGUAGES = ("ko", "en")


@cache
def language() -> str:
    """ko or en, decided once per process."""
    try:
        chosen = (Settings.from_environment().lang or "").strip().lower()
    except SettingsError:  # refused later, with its message, when the command opens its home
        chosen = ""
    if chosen[:2] in LANGUAGES:
        return chosen[:2]
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable, "")
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return "en"


@cache
def _catalogue() -> dict[str, str]:
    if language() == "en":
        return {}
    from ansim.i18n.ko import MESSAGES

    return MESSAGES


def _(message: str) -> str:
    """The message in the user's language (English when it has no translation)."""
    return _catalogue().get(message, message)


def local_time(value: datetime | str | None, with_time: bool = True) -> str:
    """A stored moment (UTC; naive means UTC) as the user's local time, short: minutes, no
    seconds or zone; as Korean writes dates (2026.12.03 17:02) or ISO (2026-12-03 17:02)."""
    if value is None or value == "":
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone()
    day = moment.strftime("%Y.%m.%d" if language() == "ko" else "%Y-%m-%d")
    return f"{day} {moment:%H:%M}" if with_time else day
