"""History flushes: crawled signals into the crawl-history index (the banks of items),
so a new reference can be hunted for in everything crawled before it.

The store already has every crawled signal when it gets here; adding to the index row by
row would cost an index update per item, so rows wait until `every_rows` have gathered
(and once more when the run ends). An index behind the store is rebuilt from the store on
next open (`Banks.ensure_consistent`), so a kill loses nothing but the rebuild's time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.signals import MediaSignals
from ansim.pipeline.banks import Banks
from ansim.store.home import Home
from sqlalchemy.orm import Session

HISTORY_FLUSH_ROWS = 2000


def history_signals(signals: MediaSignals) -> MediaSignals:
    """What the crawl history keeps of a crawled file: under 1 KB an image (digests, PDQ,
    an int8 descriptor). Not its ORB features (~16 KB): a retro-hunt re-fetches its few
    candidates and computes them on the fresh bytes (`pipeline.retrohunt`)."""
    extra = {name: value for name, value in signals.extra.items() if name != LOCAL_FEATURES_KIND}
    if DESCRIPTOR_KIND in extra:
        extra[DESCRIPTOR_KIND] = dataclasses.replace(extra[DESCRIPTOR_KIND], quantised=True)
    return dataclasses.replace(signals, extra=extra)


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
