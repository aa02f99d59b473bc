"""Fixtures of the fault suite: tiny paired sets in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import make_pairs


@pytest.fixture
def data(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """Six 48x48 training pairs and two validation pairs at x2 (GT, LRx2 folders)."""
    return {"train": make_pairs(tmp_path / "train", 6, 2), "val": make_pairs(tmp_path / "val", 2, 2, seed=1)}
