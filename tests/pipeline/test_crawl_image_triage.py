"""The crawl's image triage: ORB features only for an image that has a candidate left
open by PDQ and the descriptor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.casework.cases import open_case
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.detector.decision import MatchRules
from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.descriptor import Descriptor
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import LOCAL_FEATURES_OPTION
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.signals import FrameHash, MediaSignals
from ansim.pipeline.crawl import CrawlOptions, start_run
from ansim.pipeline.intake import add_reference_files
from ansim.pipeline.matching import needs_local_features
from ansim.pipeline.workspaces import init_workspace
from ansim.signal_types.hashing import hash_file
from ansim.signal_types.orb import decision_thresholds
from ansim.store.home import Home

PHOTO = ("bsds500", "test", "100007.jpg")


@pytest.fixture
def workspace_with_reference(shared_data: Path, tmp_path: Path) -> tuple[Workspace, Path]:
    photo = shared_data.joinpath("images", *PHOTO)
    if not photo.is_file():
        pytest.skip("bsds500/test photo missing")
    workspace, _ = init_workspace(
        Home(root=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'home' / 'ansim.db'}")
    )
    case_id = open_case(workspace, "other")
    [added] = add_reference_files(workspace, case_id, [photo])
    assert added.reference_id is not None
    return workspace, photo


def test_hashing_can_leave_local_features_out(workspace_with_reference) -> None:
    _workspace, photo = workspace_with_reference
    signals = hash_file(photo, HashOptions(extra={LOCAL_FEATURES_OPTION: False}))
    assert LOCAL_FEATURES_KIND not in signals.extra
    assert signals.pdq


def _query_near(reference: Descriptor, similarity: float) -> MediaSignals:
    """An image whose descriptor has exactly `similarity` with the reference's, and a PDQ
    hash of all ones (a photo's hash has about half its bits set: ~128 bits away)."""
    vector = reference.vector.astype(np.float64)
    other = np.zeros_like(vector)
    other[int(np.argmin(np.abs(vector)))] = 1.0
    other -= other.dot(vector) * vector
    other /= np.linalg.norm(other)
    query = similarity * vector + np.sqrt(1 - similarity**2) * other
    return MediaSignals(
        modality="image",
        sha256="0" * 64,
        md5="0" * 32,
        size=1,
        mime="image/jpeg",
        pdq=[FrameHash("f" * 64, 100)],
        extra={DESCRIPTOR_KIND: Descriptor(query.astype(np.float32), reference.model_id)},
    )


def test_local_features_only_for_an_open_candidate(workspace_with_reference) -> None:
    workspace, photo = workspace_with_reference
    reference = hash_file(photo, HashOptions()).extra.get(DESCRIPTOR_KIND)
    if reference is None:
        pytest.skip("no descriptor weights here")
    thresholds = decision_thresholds()
    floor, fires = thresholds.descriptor_floor, thresholds.descriptor_min_similarity
    with workspace.session() as session:
        banks = workspace.banks

        def needs(similarity: float) -> bool:
            return needs_local_features(session, banks, _query_near(reference, similarity))

        assert not needs(floor - 0.1)  # no evidence: verification would judge nothing
        assert needs((floor + fires) / 2)  # some evidence, no match: verify
        assert not needs(min(1.0, fires + 0.02))  # the descriptor alone matches
        no_descriptor = _query_near(reference, 0.5)
        no_descriptor.extra.clear()
        assert needs_local_features(session, banks, no_descriptor, MatchRules())


def test_unknown_image_verification_mode_is_refused(workspace_with_reference) -> None:
    workspace, _photo = workspace_with_reference
    options = CrawlOptions(seeds=["http://127.0.0.1:9/"], image_verification="sometimes")
    with pytest.raises(CaseworkError, match="triage, all, off"):
        start_run(workspace, options)
