"""The match pipeline: a file's signals -> every signal type's decision against one bank
-> the strongest decision per owner.

The same code runs both ways (`signal_types.Direction`): a scanned or crawled item against
the reference bank (owners are consented references), and a new reference against the
crawl history (a retro-hunt; owners are crawled items). Each item's image searches run
once (`ImageSearches`) and are shared by every decision that needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansim import signal_types
from ansim.detector.decision import Decision, MatchRules
from ansim.detector.signals import MediaSignals
from ansim.pipeline.bank_reader import StoreBankReader
from ansim.pipeline.banks import Banks
from ansim.signal_types import BankReader
from ansim.signal_types.orb import needs_local_features as _needs_local_features
from ansim.signal_types.searches import ImageSearches
from ansim.store.tables import Reference
from sqlalchemy import select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Finding:
    reference_id: int
    case_id: str
    decision: Decision


def best_decisions(
    signals: MediaSignals,
    bank: BankReader,
    rules: MatchRules = MatchRules(),
    searches: ImageSearches | None = None,
) -> dict[int, Decision]:
    """Owner -> the strongest decision over every signal type (first one wins a tie)."""
    searches = searches or ImageSearches(signals, bank, rules)
    best: dict[int, Decision] = {}
    for signal_type in signal_types.REGISTRY:
        if signal_type.match is None:
            continue
        for decision in signal_type.match(signals, bank, rules, searches):
            current = best.get(decision.owner_id)
            if current is None or decision.score > current.score:
                best[decision.owner_id] = decision
    return best


def find_matches(
    session: Session,
    banks: Banks,
    signals: MediaSignals,
    rules: MatchRules = MatchRules(),
    searches: ImageSearches | None = None,
) -> list[Finding]:
    """Every reference this file matches, with the strongest evidence for each."""
    best = best_decisions(signals, StoreBankReader(session, banks), rules, searches)
    if not best:
        return []
    case_of = dict(
        session.execute(select(Reference.id, Reference.case_id).where(Reference.id.in_(best))).all()
    )
    return [
        Finding(reference_id, case_of[reference_id], decision)
        for reference_id, decision in sorted(best.items())
    ]


def image_searches(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules = MatchRules()
) -> ImageSearches:
    """One image's searches against `banks`, to share between triage and `find_matches`."""
    return ImageSearches(signals, StoreBankReader(session, banks), rules)


def needs_local_features(
    session: Session,
    banks: Banks,
    signals: MediaSignals,
    rules: MatchRules = MatchRules(),
    searches: ImageSearches | None = None,
) -> bool:
    """Whether an image hashed without ORB features should get them before matching
    (the crawl's triage; see `signal_types.orb.needs_local_features`)."""
    searches = searches or image_searches(session, banks, signals, rules)
    return _needs_local_features(signals, searches)
