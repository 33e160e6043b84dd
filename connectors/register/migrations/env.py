"""Alembic environment: always given a connection by `Register.migrate`, never a URL of its own."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from connectors.register.tables import UtcDateTime, metadata


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations are frozen history: they spell out plain SQL types, never import the app's types.
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `aims register upgrade` (Register.migrate), not alembic directly"
    )

context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, render_item=render_item
)
with context.begin_transaction():
    context.run_migrations()
