"""Output a person reads: labelled fields, rounded numbers, local times, and tables that keep
their id columns whole at any width (less important columns are dropped first).

`--json` output never comes through here: it keeps the full data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ansim.i18n import _, local_time
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# A field's value: one line, or lines shown indented under the label.
FieldValue = str | Sequence[str]


def number(value: float | int | None, digits: int = 1) -> str:
    """A distance or score for reading: `-` when absent, integers as they are."""
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}"


def when(value: datetime | str | None) -> str:
    return local_time(value)


def day(value: datetime | str | None) -> str:
    return local_time(value, with_time=False)


def yes_no(value: bool) -> str:
    return _("yes") if value else _("no")


def text_or_dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def counts(values: dict[str, int], separator: str = ", ") -> str:
    """`pdq 3, sha256 1` (a table cell takes one per line), or `-` when empty."""
    return separator.join(f"{key} {count}" for key, count in values.items()) or "-"


def print_fields(
    console: Console, fields: Iterable[tuple[str, FieldValue]], indent: int = 0
) -> None:
    """`label: value` lines with the values aligned; a list value goes on indented lines
    under its label (`-` when the list is empty)."""
    fields = list(fields)
    width = max((cell_len(label) for label, _value in fields), default=0)
    pad = " " * indent
    for label, value in fields:
        line = Text(pad)
        line.append(f"{label}:", style="bold")
        if isinstance(value, str):
            line.append(" " * (width - cell_len(label) + 1) + value)
            console.print(line, highlight=False, soft_wrap=True)
            continue
        if not value:
            line.append(" " * (width - cell_len(label) + 1) + "-")
        console.print(line, highlight=False, soft_wrap=True)
        for entry in value:
            console.print(Text(f"{pad}  {entry}"), highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Column:
    """A table column. `key` columns (ids) are never dropped nor cut; the others are dropped
    when the table does not fit, lowest `keep` first (ties: rightmost first)."""

    header: str
    key: bool = False
    keep: int = 0


# A wrapped column is never narrower than its longest word, up to this many cells (longer
# words, such as URLs, are folded).
LONGEST_UNBROKEN = 24


def fitted_table(
    console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> Table:
    """A table as wide as the console allows: id columns at full width, other columns
    wrapped between words, and the least important dropped (named in the caption) when
    even wrapped they do not fit."""
    natural = [widest_line([c.header, *(row[i] for row in rows)]) for i, c in enumerate(columns)]
    narrowest = [
        natural[i]
        if c.key
        else min(LONGEST_UNBROKEN, longest_word([c.header, *(r[i] for r in rows)]))
        for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))
    droppable = sorted(
        (i for i, c in enumerate(columns) if not c.key), key=lambda i: (columns[i].keep, -i)
    )
    dropped: list[int] = []
    while sum(narrowest[i] + 3 for i in shown) + 1 > console.width and droppable:
        victim = droppable.pop(0)
        shown.remove(victim)
        dropped.append(victim)
    caption = None
    if dropped:
        names = ", ".join(columns[i].header for i in sorted(dropped))
        caption = _("not shown at this width: {columns} (--json has everything)").format(
            columns=names
        )
    widths = {i: natural[i] for i in shown}
    # Wrap the widest wrapping column one cell at a time until the table fits.
    while sum(widths.values()) + 3 * len(shown) + 1 > console.width:
        wrappable = [i for i in shown if widths[i] > narrowest[i]]
        if not wrappable:
            break
        widest = max(wrappable, key=lambda i: (widths[i], i))
        widths[widest] -= 1
    table = Table(caption=caption, caption_justify="left")
    for i in shown:
        if columns[i].key:
            table.add_column(columns[i].header, no_wrap=True, width=widths[i])
        else:
            table.add_column(columns[i].header, overflow="fold", width=widths[i])
    for row in rows:
        table.add_row(*(Text(row[i]) for i in shown))
    return table


def widest_line(cells: Iterable[str]) -> int:
    return max((cell_len(line) for cell in cells for line in cell.splitlines()), default=1)


def longest_word(cells: Iterable[str]) -> int:
    return max((cell_len(word) for cell in cells for word in cell.split()), default=1)


def aligned(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Nested facts as `label: value` lines with aligned values (indented by print_fields)."""
    pairs = list(pairs)
    width = max((cell_len(label) for label, _value in pairs), default=0)
    return [f"{label}:{' ' * (width - cell_len(label) + 1)}{value}" for label, value in pairs]


def size(value: int | None) -> str:
    """Bytes for reading: 812 B, 70.4 KiB, 3.1 MiB."""
    if value is None:
        return "-"
    if value < 1024:
        return f"{value} B"
    amount = value / 1024
    for unit in ("KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


# Longer values (base64 signatures, frame lists) are cut in reading output; --json has them.
LONGEST_VALUE = 72


def plain(value: Any) -> str:
    """A scalar or list for reading: lists joined, long values cut with a pointer to --json."""
    if isinstance(value, list | tuple):
        text = ", ".join(plain(v) for v in value)
    elif isinstance(value, float):
        text = number(value, 3)
    else:
        text = text_or_dash(value)
    if len(text) > LONGEST_VALUE:
        return _("{start}… ({length} characters; --json has all)").format(
            start=text[: LONGEST_VALUE - 24], length=len(text)
        )
    return text


def nested(values: dict[str, Any], indent: str = "") -> list[str]:
    """A dict as aligned `key: value` lines, dicts inside it indented under their key."""
    lines: list[str] = []
    width = max((cell_len(k) for k in values), default=0)
    for key, value in values.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += nested(value, indent + "  ")
        else:
            lines.append(f"{indent}{key}:{' ' * (width - cell_len(key) + 1)}{plain(value)}")
    return lines
