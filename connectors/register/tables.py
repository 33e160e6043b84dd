"""The register's tables, derived from the record models so that the two cannot drift apart.

One column per record field, typed from its annotation. Alembic migrations (in `migrations/`) are the
frozen history of this shape; a test compares them with this metadata.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from pydantic import AwareDatetime
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from schemas import records as r
from schemas.trail import EventReceived, EvidenceRecord, OutboxMessage, WebhookDelivery

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)


class Json(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL. The dialect is imported only when a PostgreSQL register is
    opened: importing it (and its drivers) cost every command 70 ms of start-up on SQLite."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JsonColumn = Json()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"register times must be timezone-aware, got {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Entity:
    """A record type and its table; `name` is what the audit log and the catalogue call it."""

    name: str
    record: type[r.Record]
    table: Table
    key: tuple[str, ...]
    json_fields: frozenset[str]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, nullable) of `X | None`."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def _column_type(annotation: Any) -> TypeEngine[Any]:
    origin = typing.get_origin(annotation) or annotation
    if origin in (dict, list):
        return JsonColumn
    if annotation is bool:
        return Boolean()
    if annotation is int:
        return Integer()
    if annotation is AwareDatetime or (isinstance(annotation, type) and issubclass(annotation, datetime)):
        return UtcDateTime()
    if annotation is date:
        return Date()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return String(40)
    if annotation is str:
        return Text()
    raise TypeError(f"no column type for {annotation!r}")


def _columns(record: type[r.Record], key: tuple[str, ...]) -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for name, field in record.model_fields.items():
        inner, nullable = _unwrap(field.annotation)
        columns.append(Column(name, _column_type(inner), primary_key=name in key, nullable=nullable))
    return columns


ENTITIES: dict[type[r.Record], Entity] = {}


def _entity(
    name: str,
    record: type[r.Record],
    key: tuple[str, ...] = ("id",),
    unique: tuple[tuple[str, ...], ...] = (),
    index: tuple[tuple[str, ...], ...] = (),
) -> Entity:
    table = Table(
        name,
        metadata,
        *_columns(record, key),
        *(UniqueConstraint(*cols) for cols in unique),
        *(Index(None, *cols) for cols in index),
    )
    json_fields = frozenset(c.name for c in table.columns if c.type is JsonColumn)
    entity = Entity(name, record, table, key, json_fields)
    ENTITIES[record] = entity
    return entity


_entity("ai_system", r.AISystem, key=("name",))
_entity("model_version", r.ModelVersion, unique=(("system", "model_name", "version"),))
_entity("dataset", r.Dataset, key=("name",))
_entity("dataset_version", r.DatasetVersion, unique=(("dataset", "version"),))
_entity("data_quality_result", r.DataQualityResult, index=(("dataset_version_id",),))
_entity("suite_review", r.SuiteReview, index=(("dataset",),))
_entity("risk", r.Risk, index=(("system",),))
_entity("risk_version", r.RiskVersion, unique=(("risk_id", "version"),))
_entity("risk_assessment", r.RiskAssessment, index=(("system",),))
_entity("impact_assessment", r.ImpactAssessment, index=(("system",),))
_entity("approval", r.Approval, index=(("status",),))
_entity("approval_decision", r.ApprovalDecision, index=(("approval_id",),))
_entity("approval_notice", r.ApprovalNotice, index=(("approval_id",),))
_entity("incident", r.Incident, index=(("system",), ("status",)))
_entity("incident_update", r.IncidentUpdate, index=(("incident_id",),))
_entity("incident_notice", r.IncidentNotice, index=(("incident_id",),))
_entity("evidence_request", r.EvidenceRequest, index=(("control",),))
_entity("nonconformity", r.Nonconformity, index=(("source_ref",),))
_entity("corrective_action", r.CorrectiveAction, index=(("nonconformity_id",),))
_entity("management_review", r.ManagementReview)
_entity("review_action", r.ReviewAction, index=(("review_id",),))
_entity("review_result", r.ReviewResult, index=(("review_id",),))
_entity("interested_party_need", r.InterestedPartyNeed, index=(("recorded_at",),))
_entity("event_received", EventReceived, key=("key",), index=(("subject", "type"),))
_entity("outbox", OutboxMessage, key=("key",), index=(("sent_at",),))
_entity("evidence", EvidenceRecord, key=("event_key", "flow"), index=(("recorded_at",),))
_entity("webhook_delivery", WebhookDelivery, key=("key",), index=(("subject",), ("outcome",)))

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(10), nullable=False),
    Column("entity", String(40), nullable=False),
    Column("entity_id", Text, nullable=False),
    # Legacy entries (before migration 0011) keep before/after here; newer ones leave these NULL.
    Column("before", JsonColumn, nullable=True),
    Column("after", JsonColumn, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # "jcs": before/after are the RFC 8785 text below, and the hash covers exactly those bytes
    # (JSONB rewrote numbers such as 1.7e+18, so hashing its read-back caused false alarms).
    Column("encoding", String(10), nullable=True),
    Column("before_text", Text, nullable=True),
    Column("after_text", Text, nullable=True),
    Index(None, "entity", "entity_id"),
)

# The newest entry, so that deleting entries from the end of the log is caught too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    # The first entry hashed with the audit key (HMAC); NULL while none is. The anchors published
    # outside the database repeat it, so moving it to pass keyed entries off as plain is caught.
    Column("keyed_from", Integer, nullable=True),
)


def entity_for(record: type[r.Record]) -> Entity:
    try:
        return ENTITIES[record]
    except KeyError:
        raise KeyError(f"{record.__name__} is not a register record") from None


def entity_named(name: str) -> Entity:
    for entity in ENTITIES.values():
        if entity.name == name:
            return entity
    raise KeyError(
        f"no register entity {name!r}; known: {', '.join(sorted(e.name for e in ENTITIES.values()))}"
    )
