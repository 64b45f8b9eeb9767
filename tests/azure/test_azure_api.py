"""The live-source API, served lazily from natlens (import weight: tests/test_api.py)."""

from __future__ import annotations

import natlens
import natlens.azure


def test_azure_names_are_served_lazily_from_natlens() -> None:
    azure_names = {k for k, v in natlens._LAZY.items() if v == "natlens.azure"}
    assert azure_names <= set(natlens.__all__)
    assert azure_names <= set(natlens.azure.__all__)
    for name in azure_names:
        assert getattr(natlens, name) is getattr(natlens.azure, name)
