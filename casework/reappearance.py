"""Re-upload monitoring: a new match of content that was verified removed.

When a scan or crawl matches a reference again, at the same URL or another one, after an
item of it was verified `removed`, that item becomes `reappeared` and the new queue item
links to it (`reappearance_of`); at the same URL the new item is one generation up.
"""

from __future__ import annotations

from ansim.store.tables import Takedown, TakedownEvent
from sqlalchemy import select
from sqlalchemy.orm import Session


def current_at(session: Session, location: str, case_id: str) -> Takedown | None:
    """The newest-generation item for (location, case), locked."""
    return session.execute(
        select(Takedown)
        .where(Takedown.location == location, Takedown.case_id == case_id)
        .order_by(Takedown.generation.desc())
        .limit(1)
        .with_for_update()
    ).scalar()


def latest_removed(session: Session, reference_id: int) -> Takedown | None:
    """The item of this reference most recently verified removed (and not yet reappeared)."""
    return session.execute(
        select(Takedown)
        .join(TakedownEvent, TakedownEvent.takedown_id == Takedown.id)
        .where(
            Takedown.reference_id == reference_id,
            Takedown.status == "removed",
            TakedownEvent.to_status == "removed",
        )
        .order_by(TakedownEvent.at.desc(), Takedown.id.desc())
        .limit(1)
        .with_for_update(of=Takedown)
    ).scalar()
