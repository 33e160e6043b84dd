"""The register under test, on SQLite and on a throwaway PostgreSQL server.

PostgreSQL tests run against the session's real server (`postgres`, in tests/conftest.py); each
test gets a database of its own. Without the server binaries they are skipped, and the session's
summary says so in plain words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.register.store import Register


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    """An empty register, migrated to head."""
    reg = empty_register(request, tmp_path)
    reg.migrate()
    yield reg
    reg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    """An empty database with no schema at all."""
    reg = empty_register(request, tmp_path)
    yield reg
    reg.close()


def empty_register(request: pytest.FixtureRequest, tmp_path: Path) -> Register:
    if request.param == "sqlite":
        return Register.for_state(tmp_path)
    url: str = request.getfixturevalue("postgres_database")
    return Register(url)
