"""Builders for casework tests: a workspace on each backend with queue items found by the
real scan pipeline (reference images fingerprinted, variants 'found' at URLs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ansim.casework import cases
from ansim.casework.workspace import Workspace
from ansim.detector.decision import MatchRules
from ansim.detector.hashing import HashOptions
from ansim.pipeline import intake, scanning
from PIL import Image

from tests.helpers import photo_like


def as_analyst(workspace: Workspace, name: str) -> Workspace:
    return dataclasses.replace(workspace, actor=name)


def reposted_copy(reference: Path, target: Path) -> Path:
    """A re-encoded, resized copy: matches by PDQ, not by bytes."""
    Image.open(reference).convert("RGB").resize((240, 180)).save(target, quality=70)
    return target


def open_case_with_reference(
    workspace: Workspace, folder: Path, seed: int, case_type: str = "digital-sex-crime"
) -> tuple[str, int, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    case_id = cases.open_case(
        workspace, case_type, pseudonym="Blue-홍길동", contact="010-1234-5678"
    )
    reference = photo_like(folder / f"reported-{seed}.png", seed=seed)
    [added] = intake.add_reference_files(workspace, case_id, [reference], HashOptions())
    assert added.error is None
    return case_id, added.reference_id, reference


def found_at(workspace: Workspace, media: Path, url: str) -> list[int]:
    """Scan `media` as if a crawl fetched it from `url`; returns the queue item ids."""
    matches, error = scanning.scan_file(workspace, media, url, False, HashOptions(), MatchRules())
    assert error is None
    return [m.takedown_id for m in matches if m.takedown_id is not None]
