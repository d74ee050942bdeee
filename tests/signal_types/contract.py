"""The contract every indexed signal type keeps, as one function the tests run over the
registry (and over a toy type): its fast index agrees with its brute-force twin on real
signals of that type, through add, remove, save and load."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from ansim.detector.signals import MediaSignals
from ansim.signal_types import SignalType
from ansim.signal_types.hashing import hash_file

IMAGES_PER_SAMPLE = 8  # 8 x 512 ORB codes stay below the local-feature inverted file
TEXTS_PER_SAMPLE = 24
AUDIO_PER_SAMPLE = 3


@dataclasses.dataclass(frozen=True)
class Row:
    """A stored signal as the store gives it back: the record with its id."""

    id: int
    kind: str
    value: str | None
    quality: int | None
    frame: int | None
    timestamp: float | None
    blob: bytes | None


def sample_media(
    shared_data: Path,
    tmp_path: Path,
    modalities: frozenset[str] = frozenset({"image", "text", "audio"}),
) -> dict[str, list[MediaSignals]]:
    """Real files of each modality, hashed through the registry (`hash_file`)."""
    files = {
        "image": lambda: sorted((shared_data / "images" / "kodak24").glob("*.png")),
        "text": lambda: _text_files(shared_data, tmp_path),
        "audio": lambda: sorted(
            p for p in (shared_data / "audio").glob("*.ogg") if ".hq." not in p.name
        ),
    }
    per_modality = {"image": IMAGES_PER_SAMPLE, "text": TEXTS_PER_SAMPLE, "audio": AUDIO_PER_SAMPLE}
    return {
        modality: [hash_file(path) for path in files[modality]()[: per_modality[modality]]]
        for modality in sorted(modalities & set(files))
    }


def _text_files(shared_data: Path, tmp_path: Path) -> list[Path]:
    corpus = shared_data / "text" / "chatbot_data" / "ChatbotData.csv"
    with corpus.open(encoding="utf-8") as handle:
        rows = [" ".join(row[:2]) for row in csv.reader(handle)][1:]
    texts = sorted({text for text in rows if len(text) >= 40})[:TEXTS_PER_SAMPLE]
    paths = []
    for number, text in enumerate(texts):
        path = tmp_path / f"text-{number}.txt"
        path.write_text(text * 3, encoding="utf-8")
        paths.append(path)
    return paths


def check_index_contract(
    signal_type: SignalType, samples: dict[str, list[MediaSignals]], tmp_path: Path
) -> None:
    spec = signal_type.index
    assert spec is not None
    values = [
        value
        for modality in sorted(signal_type.modalities)
        for signals in samples.get(modality, [])
        for value in signal_type.values(signals)
    ]
    assert len(values) >= 3, f"{signal_type.name}: too few real samples to test"
    rows = []
    for value in values:
        for record in signal_type.records(value):
            assert record.kind == signal_type.name  # one name: extra key, kind, bank
            rows.append(Row(id=len(rows) + 1, **dataclasses.asdict(record)))
    assert len(rows) == len(values)  # one entry per value

    fast, twin = spec.create(), spec.brute_force()
    spec.add_rows(fast, rows)
    spec.add_rows(twin, rows)
    assert len(fast) == len(twin) == len(rows)
    _agree(spec, fast, twin, values, {row.id for row in rows})

    gone = [row.id for row in rows[::3]]
    assert fast.remove(gone) == twin.remove(gone) == len(gone)
    assert len(fast) == len(twin) == len(rows) - len(gone)
    kept = {row.id for row in rows} - set(gone)
    _agree(spec, fast, twin, values, kept)

    path = tmp_path / f"{signal_type.name}.index"
    fast.save(path)
    loaded = spec.load(path)
    assert len(loaded) == len(fast)
    assert [spec.probe(loaded, v) for v in values] == [spec.probe(fast, v) for v in values]


def _agree(spec, fast, twin, values, present: set[int]) -> None:  # type: ignore[no-untyped-def]
    for entry_id, value in enumerate(values, start=1):
        fast_hits, twin_hits = spec.probe(fast, value), spec.probe(twin, value)
        assert {e for e, _ in twin_hits} <= present
        if spec.exact:
            assert fast_hits == twin_hits
        else:
            assert set(fast_hits) <= set(twin_hits)
        if entry_id in present:  # a stored value finds itself
            assert entry_id in {e for e, _ in fast_hits}
