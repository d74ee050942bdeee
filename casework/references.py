"""Listing references: what a victim reported, as the fingerprints kept of it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ansim.casework import listings
from ansim.casework.workspace import Workspace

MODALITIES = listings.MODALITIES


def list_references(
    workspace: Workspace,
    case_id: str | None = None,
    modality: str | None = None,
    bank_kinds: Collection[str] = (),
) -> list[dict[str, Any]]:
    """`listings.list_references` in a transaction of the workspace."""
    with workspace.listing() as store:
        return listings.list_references(store, case_id, modality, bank_kinds)
