"""What the benchmarks read back from the register the stack's processes write (SQLite in the state
folder): the router's receipts, and the dataset versions the data checks record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork

CHUNK = 500  # keys per IN list: bounded, whatever the database


@contextmanager
def _reader(state: Path) -> Iterator[UnitOfWork]:
    from connectors.register import open_register
    from schemas.settings import AimsSettings

    register = open_register(AimsSettings(state_dir=state), migrate=False)
    try:
        with register.reader() as uow:
            yield uow
    finally:
        register.engine.dispose()


def receipts(state: Path, keys: Sequence[str]) -> set[str]:
    """Those of `keys` (source#id) the router recorded as received."""
    from sqlalchemy import select

    found: set[str] = set()
    with _reader(state) as uow:
        table = uow.events.table
        for start in range(0, len(keys), CHUNK):
            chunk = list(keys[start : start + CHUNK])
            found.update(uow.conn.execute(select(table.c.key).where(table.c.key.in_(chunk))).scalars())
    return found


def dataset_statuses(state: Path, datasets: Sequence[str]) -> dict[tuple[str, str], str]:
    """(dataset, version) → status of every version recorded for `datasets`."""
    from sqlalchemy import select

    statuses: dict[tuple[str, str], str] = {}
    with _reader(state) as uow:
        table = uow.dataset_versions.table
        for start in range(0, len(datasets), CHUNK):
            chunk = list(datasets[start : start + CHUNK])
            query = select(table.c.dataset, table.c.version, table.c.status).where(table.c.dataset.in_(chunk))
            for dataset, version, status in uow.conn.execute(query):
                statuses[(dataset, version)] = status
    return statuses
