"""MinHash over character shingles of normalized text: a reposted text matches when the
Jaccard estimate (or the share of one text contained in the other) clears the policy.

The reference bank is an LSH index (a crawled page is a long query, with windows, against
short references); the crawl history is scanned exactly, so one short new reference is
found inside long pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim.detector.decision import Decision, MatchRules
from ansim.detector.hashing import Media
from ansim.detector.signals import MediaSignals
from ansim.detector.text import MINHASH_SIGNAL as NAME
from ansim.detector.text import TextSignature
from ansim.detector.text_match import TextMatchPolicy, decide_all
from ansim.indexer.text_index import (
    BruteForceTextIndex,
    LshTextIndex,
    ScanTextIndex,
    TextHit,
    TextIndex,
)
from ansim.signal_types.base import BankReader, Direction, IndexSpec, SignalRecord, StoredSignal

PROBE_FLOOR = 0.3


def _add_rows(index: TextIndex, rows: Sequence[StoredSignal]) -> None:
    index.add([row.id for row in rows], [TextSignature.from_bytes(row.blob or b"") for row in rows])


def _probe(index: TextIndex, signature: TextSignature) -> list[tuple[int, float]]:
    hits = index.search([signature], PROBE_FLOOR)[0]
    return sorted((hit.entry_id, round(hit.jaccard, 4)) for hit in hits)


class TextMinhashType:
    name = NAME
    modalities = frozenset({"text"})
    index = IndexSpec(
        create=LshTextIndex,
        load=LshTextIndex.load,
        add_rows=_add_rows,
        brute_force=BruteForceTextIndex,
        probe=_probe,
        exact=False,
        history=(ScanTextIndex, ScanTextIndex.load),
    )

    def __init__(self, policy: TextMatchPolicy = TextMatchPolicy()) -> None:
        self.policy = policy

    def hash(self, media: Media, signals: MediaSignals) -> None:
        signals.extra[self.name] = media.text.signature

    def values(self, signals: MediaSignals) -> list[TextSignature]:
        signature = signals.extra.get(self.name)
        ok = signals.modality == "text" and isinstance(signature, TextSignature)
        return [signature] if ok else []

    def records(self, signature: TextSignature) -> list[SignalRecord]:
        return [SignalRecord(kind=self.name, blob=signature.to_bytes())]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: Any
    ) -> list[Decision]:
        decisions: list[Decision] = []
        for signature in self.values(signals):
            index = bank.index(self.name)
            hits = index.search([signature], self.policy.search_floor)[0] if len(index) else []
            retro_hunt = bank.direction is Direction.RETRO_HUNT
            if retro_hunt:  # the reference is the query: swap the roles before deciding
                hits = [_swapped(hit) for hit in hits]
            verdicts = decide_all(hits, self.policy)
            owners = bank.owners_of({verdict.entry_id for verdict in verdicts})
            prefix = "already crawled: " if retro_hunt else ""
            decisions += [
                Decision(
                    owners[v.entry_id],
                    f"text_{v.rule}",
                    1.0 - v.score,
                    v.score,
                    f"{prefix}{v.explanation}",
                )
                for v in verdicts
                if v.entry_id in owners
            ]
        return decisions


def _swapped(hit: TextHit) -> TextHit:
    return TextHit(
        hit.entry_id, hit.shared, hit.jaccard, hit.query_containment, hit.entry_containment
    )
