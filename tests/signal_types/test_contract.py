"""Every indexed signal type in the registry keeps the index contract (see contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansim import signal_types
from ansim.detector.signals import MediaSignals

from tests.signal_types.contract import check_index_contract, sample_media


@pytest.fixture(scope="module")
def samples(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return sample_media(shared_data, tmp_path_factory.mktemp("samples"))


@pytest.mark.parametrize("signal_type", signal_types.indexed_types(), ids=lambda t: t.name)
def test_index_agrees_with_its_twin(
    signal_type: signal_types.SignalType, samples: dict[str, list[MediaSignals]], tmp_path: Path
) -> None:
    if signal_type.name == "descriptor" and not any(
        "descriptor" in s.extra for s in samples["image"]
    ):
        pytest.skip("no descriptor model here (weights missing)")
    check_index_contract(signal_type, samples, tmp_path)


def test_names_are_unique_and_every_type_is_complete() -> None:
    names = [t.name for t in signal_types.REGISTRY]
    assert len(names) == len(set(names))
    for signal_type in signal_types.REGISTRY:
        assert signal_type.modalities <= {"image", "video", "audio", "text"}
        assert callable(signal_type.hash) and callable(signal_type.records)
        assert signal_type.match is None or callable(signal_type.match)
        assert signal_types.by_name(signal_type.name) is signal_type
