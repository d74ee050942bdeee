"""The learned copy descriptor (128-d, cosine similarity): evidence for the robust image
decision (see `orb`), which finds crops, frames and rotations that PDQ misses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ansim.detector.descriptor import (
    DESCRIPTOR_DIM,
    Descriptor,
    load_descriptor_model,
    vector_from_blob,
)
from ansim.detector.descriptor import SIGNAL_KIND as NAME
from ansim.detector.hashing import Media
from ansim.detector.image_robust import ROBUST_OPTION
from ansim.detector.signals import MediaSignals
from ansim.indexer.descriptor_index import BruteForceDescriptorIndex, DescriptorIndex
from ansim.indexer.tiered_descriptor_index import TieredDescriptorIndex
from ansim.signal_types.base import IndexSpec, SignalRecord, StoredSignal

PROBE_NEIGHBOURS = 10


def _add_rows(index: DescriptorIndex, rows: Sequence[StoredSignal]) -> None:
    vectors = [vector_from_blob(row.blob or b"", index.dim) for row in rows]
    odd = [row.id for row, vector in zip(rows, vectors, strict=True) if len(vector) != index.dim]
    if odd:
        raise ValueError(
            f"descriptor signals {odd[:5]} are not {index.dim}-d: they come from another "
            "model; withdraw and re-register those references"
        )
    index.add([row.id for row in rows], np.stack(vectors))


def _probe(index: DescriptorIndex, descriptor: Descriptor) -> list[tuple[int, float]]:
    hits = index.search(descriptor.vector[None], PROBE_NEIGHBOURS)[0]
    return sorted((hit.entry_id, round(hit.similarity, 4)) for hit in hits)


class DescriptorType:
    name = NAME
    modalities = frozenset({"image"})
    index = IndexSpec(
        # Exact below `IVF_FROM` entries, then an IVF with an exact re-rank.
        create=lambda: TieredDescriptorIndex(DESCRIPTOR_DIM),
        load=TieredDescriptorIndex.load,
        add_rows=_add_rows,
        brute_force=lambda: BruteForceDescriptorIndex(DESCRIPTOR_DIM),
        probe=_probe,
    )
    match = None  # evidence for the robust image decision

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """Only where the weights are installed, and robust hashing is on."""
        if not media.options.extra.get(ROBUST_OPTION, True):
            return
        model = load_descriptor_model()
        if model is not None:
            signals.extra[self.name] = model.describe(media.rgb)

    def values(self, signals: MediaSignals) -> list[Descriptor]:
        descriptor = signals.extra.get(self.name)
        return [descriptor] if descriptor is not None else []

    def records(self, descriptor: Descriptor) -> list[SignalRecord]:
        # value names the model: vectors of other weights are never compared with these.
        return [SignalRecord(kind=self.name, value=descriptor.model_id, blob=descriptor.to_blob())]
