"""A new signal type is one folder (`colour_histogram/`) and one line in the registry:
registered, it is hashed for every image, stored, indexed in its own bank, matched in
scans, and kept to the index contract like the built-in types."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansim import signal_types
from ansim.casework import cases
from ansim.detector.decision import MatchRules
from ansim.pipeline import intake, scanning
from ansim.pipeline.bank_reader import StoreBankReader
from ansim.pipeline.workspaces import init_workspace
from ansim.signal_types.hashing import hash_file
from PIL import Image

from tests.signal_types.colour_histogram import NAME, ColourHistogramType
from tests.signal_types.contract import check_index_contract, sample_media


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> ColourHistogramType:
    toy = ColourHistogramType()
    # The one registry line a new signal type needs:
    monkeypatch.setattr(signal_types, "REGISTRY", [*signal_types.REGISTRY, toy])
    return toy


def test_the_contract_picks_up_the_toy(
    toy_registered: ColourHistogramType, shared_data: Path, tmp_path: Path
) -> None:
    assert toy_registered in signal_types.indexed_types()
    samples = sample_media(shared_data, tmp_path, toy_registered.modalities)
    assert all(NAME in signals.extra for signals in samples["image"])
    check_index_contract(toy_registered, samples, tmp_path)


def test_the_toy_is_stored_indexed_and_matched(
    toy_registered: ColourHistogramType, shared_data: Path, ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "digital-sex-crime")
    photo = sorted((shared_data / "images" / "kodak24").glob("*.png"))[0]
    [added] = intake.add_reference_files(workspace, case_id, [photo])
    assert added.error is None
    assert workspace.banks.sizes()[NAME] == 1

    copy = tmp_path / "copy.jpg"
    Image.open(photo).convert("RGB").save(copy, quality=60)
    signals = hash_file(copy)
    with workspace.session() as session:
        reader = StoreBankReader(session, workspace.banks)
        decisions = toy_registered.match(signals, reader, MatchRules(), None)
    assert [d.owner_id for d in decisions] == [added.reference_id]

    report = scanning.scan_paths(workspace, [copy])
    assert [m.reference_id for m in report.matches] == [added.reference_id]
