"""A video's frame votes found in two steps (frames at the match distance, then every
entry of the owners found, at the vote distance) must equal one search at the vote
distance for every owner that could match, i.e. that has a frame within the match
distance; owners without such a frame get no votes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ansim.detector.video_match import VideoMatchRules
from ansim.indexer.mih_pdq_index import MihPdqIndex
from ansim.signal_types.base import Direction
from ansim.signal_types.vpdq import frame_votes

from tests.indexer.test_mih_pdq_index import flipped


class OwnedEntries:
    """The part of a crawl history's BankReader that frame votes read, over an index."""

    direction = Direction.RETRO_HUNT

    def __init__(self, index: MihPdqIndex, owner_of: dict[int, int], hexes: dict[int, str]):
        self._index, self._owner_of, self._hexes = index, owner_of, hexes

    def index(self, name: str) -> MihPdqIndex:
        return self._index

    def video_frames_of(self, entry_ids: Iterable[int]) -> dict[int, tuple[int, float]]:
        return {e: (self._owner_of[e], 0.0) for e in entry_ids}

    def pdq_entries_of(self, owner_ids: Iterable[int]) -> list[tuple[int, str]]:
        wanted = set(owner_ids)
        return [(e, h) for e, h in self._hexes.items() if self._owner_of[e] in wanted]


def test_two_step_votes_equal_one_wide_search_for_every_owner_that_can_match() -> None:
    rng = np.random.default_rng(56)
    rules = VideoMatchRules(max_distance=31, vote_distance=56)
    reference = rng.integers(0, 256, (12, 32), dtype=np.uint8)  # a reference's 12 frames
    hexes: dict[int, str] = {}
    owner_of: dict[int, int] = {}
    entry = 0
    # Owner 1: a copy with one frame within 31 bits, the rest at 32-56 (votes only).
    # Owner 2: every frame at 35-56 bits (no close frame: cannot match).
    # Owners 3-40: unrelated videos.
    for owner in range(1, 41):
        for frame in range(12):
            if owner == 1:
                bits = 20 if frame == 5 else int(rng.integers(32, 57))
                code = flipped(reference[frame], rng, bits)
            elif owner == 2:
                code = flipped(reference[frame], rng, int(rng.integers(35, 57)))
            else:
                code = rng.integers(0, 256, 32, dtype=np.uint8)
            entry += 1
            hexes[entry], owner_of[entry] = code.tobytes().hex(), owner
    index = MihPdqIndex(chunks=16, min_entries_for_tables=0)
    index.add(list(hexes), list(hexes.values()))
    bank = OwnedEntries(index, owner_of, hexes)
    queries = [code.tobytes().hex() for code in reference]

    votes = frame_votes(queries, bank, rules)  # type: ignore[arg-type]
    wide = index.search(queries, rules.vote_distance)

    def of_owner(hits: list, owner: int) -> list[tuple[int, int]]:  # type: ignore[type-arg]
        return [(h.distance, h.entry_id) for h in hits if owner_of[h.entry_id] == owner]

    for q in range(len(queries)):
        assert of_owner(votes[q], 1) == of_owner(wide[q], 1)
        assert of_owner(votes[q], 2) == []
    assert sum(len(of_owner(w, 1)) for w in wide) == 12  # every frame of the copy votes
    assert sum(len(of_owner(w, 2)) for w in wide) == 12  # the wide search saw owner 2
