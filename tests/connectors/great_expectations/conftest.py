"""Fixtures of the data-quality tests: one GX engine per session (GX takes seconds to import)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.connectors.great_expectations.data import WRITERS, Location

if TYPE_CHECKING:
    import pandas as pd

    from connectors.great_expectations import GxEngine


@pytest.fixture(scope="session")
def engine() -> GxEngine:
    from connectors.great_expectations import GxEngine

    return GxEngine()


@pytest.fixture(params=sorted(WRITERS))
def write(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[pd.DataFrame], Location]:
    """Writes a frame as CSV, Parquet or a SQLite table (one test per kind) and returns its location."""
    return lambda frame: WRITERS[request.param](frame, tmp_path)
