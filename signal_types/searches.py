"""One query, one candidate set: the image index searches for one item run once and are
shared by every decision that needs them (the PDQ decision, the robust image decision,
and the crawl's triage question of whether local features are worth computing)."""

from __future__ import annotations

from functools import cached_property

from ansim.detector.decision import MatchRules
from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.descriptor import Descriptor
from ansim.detector.image_decision import PDQ_NO_EVIDENCE
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.local_verify import LocalFeatures
from ansim.detector.signals import MediaSignals
from ansim.signal_types.base import BankReader, Direction

DESCRIPTOR_NEIGHBOURS = 10
# A retro-hunt's short list is looser: the history keeps no ORB features to vote for the
# copies the descriptor ranks low (screenshots, pastes), and the query is one reference.
RETRO_HUNT_DESCRIPTOR_NEIGHBOURS = 32
LOCAL_FEATURE_CANDIDATES = 10


class ImageSearches:
    """The PDQ, descriptor and local-feature searches of one image against one bank.

    PDQ is searched at most twice: within the plain decision's threshold, and out to the
    robust decision's "no evidence" radius, which on a large bank reads every entry. Once
    the wide search has run, the narrow one is its hits within the threshold (the search
    is exact, so that is the same answer)."""

    def __init__(self, signals: MediaSignals, bank: BankReader, rules: MatchRules) -> None:
        self.signals = signals
        self.bank = bank
        self.rules = rules
        self._pdq_by_radius: dict[int, tuple[list[list[tuple[int, int]]], dict[int, int]]] = {}

    @property
    def wide_radius(self) -> int:
        return max(self.rules.pdq_max_distance, PDQ_NO_EVIDENCE)

    def pdq_search(self, radius: int) -> tuple[list[list[tuple[int, int]]], dict[int, int]]:
        """(entry id, distance) per dihedral variant within `radius`, for entries whose
        owner is still matchable, and entry -> owner for them."""
        if radius not in self._pdq_by_radius:
            wide = self._pdq_by_radius.get(self.wide_radius)
            if wide is not None and radius <= self.wide_radius:
                pairs = [[(e, d) for e, d in variant if d <= radius] for variant in wide[0]]
                self._pdq_by_radius[radius] = (pairs, wide[1])
            else:
                self._pdq_by_radius[radius] = self._search_pdq(radius)
        return self._pdq_by_radius[radius]

    def _search_pdq(self, radius: int) -> tuple[list[list[tuple[int, int]]], dict[int, int]]:
        signals = self.signals
        if signals.modality != "image" or not signals.pdq:
            return [], {}
        if signals.pdq[0].quality < self.rules.pdq_min_quality:
            return [], {}
        index = self.bank.index("pdq")
        if not len(index):
            return [], {}
        queries = signals.pdq_dihedral or [signals.pdq[0].pdq]
        found = index.search(queries, radius)
        pairs = [[(hit.entry_id, hit.distance) for hit in variant] for variant in found]
        owners = self.bank.owners_of({entry_id for variant in pairs for entry_id, _ in variant})
        return [[(e, d) for e, d in variant if e in owners] for variant in pairs], owners

    @cached_property
    def pdq_distances(self) -> dict[int, int]:
        """Owner -> smallest PDQ distance over the dihedral variants."""
        distances: dict[int, int] = {}
        hits, owners = self.pdq_search(self.wide_radius)
        for variant in hits:
            for entry_id, distance in variant:
                owner = owners[entry_id]
                distances[owner] = min(distance, distances.get(owner, 256))
        return distances

    @cached_property
    def descriptor_similarities(self) -> dict[int, float]:
        """Owner -> best descriptor similarity among the query's nearest neighbours."""
        similarities: dict[int, float] = {}
        descriptor: Descriptor | None = self.signals.extra.get(DESCRIPTOR_KIND)
        if descriptor is None:
            return similarities
        neighbours = (
            RETRO_HUNT_DESCRIPTOR_NEIGHBOURS
            if self.bank.direction is Direction.RETRO_HUNT
            else DESCRIPTOR_NEIGHBOURS
        )
        hits = self.bank.index(DESCRIPTOR_KIND).search(descriptor.vector[None], neighbours)[0]
        owners = self.bank.owners_of({h.entry_id for h in hits}, descriptor.model_id)
        for hit in hits:
            if hit.entry_id in owners:
                owner = owners[hit.entry_id]
                similarities[owner] = max(hit.similarity, similarities.get(owner, -1.0))
        return similarities

    def local_feature_votes(self) -> dict[int, int]:
        """Owner -> local-feature votes. Not cached: triage adds the features to the query
        after asking whether they are needed."""
        votes: dict[int, int] = {}
        features: LocalFeatures | None = self.signals.extra.get(LOCAL_FEATURES_KIND)
        if features is None:
            return votes
        hits = self.bank.index(LOCAL_FEATURES_KIND).search([features], LOCAL_FEATURE_CANDIDATES)
        owners = self.bank.owners_of({h.entry_id for h in hits[0]})
        for hit in hits[0]:
            if hit.entry_id in owners:
                owner = owners[hit.entry_id]
                votes[owner] = votes.get(owner, 0) + hit.votes
        return votes
