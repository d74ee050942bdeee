"""`ansim bench retrohunt`: one new image reference against a crawl history of N items
(default 1,000,000), seeded synthetically: random PDQ hashes plus a few near copies
(a handful of bits flipped) of the new reference's hash at random rows; with the descriptor, also
a random unit descriptor per item plus a few near copies of the reference's descriptor at
other rows (items whose PDQ is random, so only the robust matcher can find them). No
local features are seeded (their size per item: see benchmarks/RESULTS.md, "retro-hunt").

Measured: the retro-hunt alone (index checks against the store, FAISS range search over
the 8 dihedral variants, the descriptor's nearest neighbours, owner lookup, queueing) and
the whole `ref add` of that file (fingerprint, store, reference bank, retro-hunt).
Target: retro-hunt < 5 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

PLANTED = 3
BATCH = 50_000


def _insert_rows(
    workspace: Any, table: Any, count: int, row: Callable[[int], dict[str, Any]]
) -> None:
    """Rows `row(0)` .. `row(count - 1)` into `table`, BATCH to a statement."""
    with workspace.store.session() as session:
        for start in range(0, count, BATCH):
            stop = min(count, start + BATCH)
            session.execute(insert(table), [row(i) for i in range(start, stop)])


def seed_history(workspace: Any, items: int, near_copies: list[str], rng: np.random.Generator):
    """Insert `items` crawled items with one PDQ signal each; returns their FAISS index
    and the item ids holding the near copies."""
    from ansim.indexer.pdq_index import FaissPdqIndex
    from ansim.store.tables import ScannedItem, Signal

    codes = rng.integers(0, 256, size=(items, 32), dtype=np.uint8)
    positions = rng.choice(items, size=len(near_copies), replace=False)
    for position, pdq in zip(positions, near_copies, strict=True):
        codes[position] = np.frombuffer(bytes.fromhex(pdq), dtype=np.uint8)
    hexes = [row.tobytes().hex() for row in codes]
    index = FaissPdqIndex()
    _insert_rows(
        workspace,
        ScannedItem,
        items,
        lambda i: {
            "id": i + 1,
            "location": f"http://history.example/{i}.jpg",
            "modality": "image",
            "mime": "image/jpeg",
            "sha256": f"{i:064x}",
        },
    )
    _insert_rows(
        workspace,
        Signal,
        items,
        lambda i: {"id": i + 1, "item_id": i + 1, "kind": "pdq", "value": hexes[i], "quality": 100},
    )
    index.add(list(range(1, items + 1)), hexes)
    return index, sorted(int(p) + 1 for p in positions)


def seed_descriptors(
    workspace: Any, items: int, reference: Any, exclude: list[int], rng: np.random.Generator
):
    """Give every seeded item a random unit descriptor, and a few items (not in `exclude`)
    a near copy of the reference's (similarity 0.99, 0.97, 0.95: above the calibrated
    0.93). Returns the bank's index over them (compressed from 200,000 entries, as the
    history's own would be: an exact file that size is compressed again at every open)
    and the item ids holding the near copies."""
    from ansim.detector.descriptor import SIGNAL_KIND
    from ansim.indexer.tiered_descriptor_index import TieredDescriptorIndex
    from ansim.store.tables import Signal

    dim = len(reference.vector)
    vectors = rng.standard_normal((items, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    free = np.setdiff1d(np.arange(items), np.asarray(exclude, dtype=np.int64) - 1)
    positions = rng.choice(free, size=3, replace=False)
    for position, similarity in zip(positions, (0.99, 0.97, 0.95), strict=True):
        noise = vectors[position] - (vectors[position] @ reference.vector) * reference.vector
        noise /= np.linalg.norm(noise)
        vectors[position] = similarity * reference.vector + np.sqrt(1 - similarity**2) * noise
    first_id = items + 1  # signal ids after the PDQ signals'
    _insert_rows(
        workspace,
        Signal,
        items,
        lambda i: {
            "id": first_id + i,
            "item_id": i + 1,
            "kind": SIGNAL_KIND,
            "value": reference.model_id,
            "blob": vectors[i].tobytes(),
        },
    )
    index = TieredDescriptorIndex(dim)
    index.add(list(range(first_id, first_id + items)), vectors)
    return index, sorted(int(p) + 1 for p in positions)


def run_retrohunt_bench(shared: Path, out: Path, items: int = 1_000_000) -> dict[str, Any]:
    from ansim.casework.cases import open_case
    from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
    from ansim.pipeline import intake, retrohunt
    from ansim.pipeline.workspaces import init_workspace
    from ansim.signal_types.hashing import hash_file
    from ansim.store.home import Home

    reference = shared / "images" / "kodak24" / "kodim23.png"
    signals = hash_file(reference)
    rng = np.random.default_rng(7)
    base = np.frombuffer(bytes.fromhex(signals.pdq[0].pdq), dtype=np.uint8)
    near = []
    for flips in (4, 12, 24):  # all within the default threshold of 31 bits
        bits = np.unpackbits(base.copy())
        bits[rng.choice(256, size=flips, replace=False)] ^= 1
        near.append(np.packbits(bits).tobytes().hex())

    home_root = out / "retrohunt-home"
    shutil.rmtree(home_root, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    workspace, _ = init_workspace(Home(home_root, f"sqlite:///{home_root / 'ansim.db'}"))
    seeded = time.monotonic()
    index, planted_items = seed_history(workspace, items, near, rng)
    history = retrohunt.history_banks(workspace)
    # The bench writes the index it built alongside the rows (a rebuild would read 1M rows).
    with workspace.store.read_session() as session:
        history.adopt(session, "pdq", index)
    reference_descriptor = signals.extra.get(DESCRIPTOR_KIND)
    descriptor_items: list[int] = []
    if reference_descriptor is not None:
        descriptors, descriptor_items = seed_descriptors(
            workspace, items, reference_descriptor, planted_items, rng
        )
        with workspace.store.read_session() as session:
            history.adopt(session, DESCRIPTOR_KIND, descriptors)
    planted_items = sorted(planted_items + descriptor_items)
    seed_s = time.monotonic() - seeded
    case_id = open_case(workspace, "other")

    started = time.monotonic()
    results = intake.add_reference_files(workspace, case_id, [reference])
    ref_add_s = time.monotonic() - started
    found_items = sorted(int(m.location.rsplit("/", 1)[1].split(".")[0]) + 1
                         for m in results[0].retro_matches)  # fmt: skip

    # The retro-hunt step alone, on a fresh handle (index loaded from disk, as a new process).
    with workspace.session() as session:
        fresh = retrohunt.history_banks(workspace)
        started = time.monotonic()
        again = retrohunt.hunt(session, workspace, fresh, results[0].reference_id, signals).matches
        hunt_s = time.monotonic() - started
    result = {
        "history_items": items,
        "seed_s": round(seed_s, 1),
        "ref_add_with_retrohunt_s": round(ref_add_s, 3),
        "retrohunt_only_s": round(hunt_s, 3),
        "planted_near_copies": len(planted_items),
        "planted_descriptor_only": len(descriptor_items),
        "found_descriptor_only": len(set(found_items) & set(descriptor_items)),
        "found": len(set(found_items) & set(planted_items)),
        "unexpected": sorted(set(found_items) - set(planted_items)),
        "second_hunt_matches": len(again),
        "cpu_count": os.cpu_count(),
        "target": "retro-hunt of one image reference against 1,000,000 items < 5 s",
    }
    (out / "retrohunt-bench.json").write_text(json.dumps(result, indent=2))
    workspace.close()
    return result
