"""Opening the ansim home for a command, importing the store and banks only then: a command's
`--help` must not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ansim.casework.workspace import Workspace


def open_workspace() -> Workspace:
    from ansim.pipeline.workspaces import open_workspace as open_home

    return open_home()
