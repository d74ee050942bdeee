"""History flushes: crawled signals into the crawl-history index (the banks of items),
so a new reference can be hunted for in everything crawled before it.

The store already has every crawled signal when it gets here; adding to the index row by
row would cost an index update per item, so rows wait until `every_rows` have gathered
(and once more when the run ends). An index behind the store is rebuilt from the store on
next open (`Banks.ensure_consistent`), so a kill loses nothing but the rebuild's time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ansim.pipeline.banks import Banks
from ansim.store.home import Home
from sqlalchemy.orm import Session

HISTORY_FLUSH_ROWS = 2000


class HistoryFlushes:
    def __init__(self, home: Home, every_rows: int = HISTORY_FLUSH_ROWS) -> None:
        self.banks = Banks(home.index_dir, owner="item")
        self.every_rows = every_rows
        self._rows: list[Any] = []

    def __len__(self) -> int:
        """Signal rows waiting for the next flush."""
        return len(self._rows)

    def ensure_consistent(self, session: Session) -> None:
        """Bring the index level with the store before the run adds to it."""
        self.banks.ensure_consistent(session)

    def add(self, signal_rows: Iterable[Any]) -> None:
        self._rows.extend(signal_rows)

    def flush(self, force: bool = False) -> None:
        """Add the waiting rows to the index once there are enough of them (or if forced)."""
        if self._rows and (force or len(self._rows) >= self.every_rows):
            rows, self._rows = self._rows, []
            self.banks.add(rows)
