"""The schema check every command runs: one query when the register is at the head, alembic otherwise."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text

from connectors.register.store import MIGRATIONS, Register, head_revision


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_an_empty_database_is_migrated(blank: Register) -> None:
    assert blank.stamped_revisions() == set()
    blank.ensure_schema()
    assert blank.revision() == head_revision()
    assert blank.stamped_revisions() == {head_revision()}


def test_a_database_behind_the_head_is_migrated(blank: Register) -> None:
    blank.migrate("0008")
    assert blank.stamped_revisions() == {"0008"}
    blank.ensure_schema()
    assert blank.revision() == head_revision()


def test_a_database_from_a_newer_release_is_refused_by_alembic(blank: Register) -> None:
    blank.migrate()
    with blank.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(CommandError, match="9999"):
        blank.ensure_schema()
