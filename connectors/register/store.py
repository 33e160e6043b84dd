"""The register behind one interface: `Register.unit_of_work(actor)` and its repositories.

Flows, the router and the CLI all write through here, and every write appends an audit entry in
the same transaction. Writers are serialized (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-level
advisory lock), which keeps the hash chain linear; readers never wait for them.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from connectors.register.audit import (
    GENESIS,
    TEXT,
    AuditProblem,
    AuditReport,
    HeadRow,
    canonical_json,
    entry_view,
    jcs,
    text_entry_hash,
)
from connectors.register.tables import ENTITIES, Entity, audit_head, audit_log, entity_for
from schemas import records as r
from schemas.trail import AuditEntry, EventReceived, EvidenceRecord, OutboxMessage, WebhookDelivery

if TYPE_CHECKING:
    from connectors.register.anchors import AnchorSet

R = TypeVar("R", bound=r.Record)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # alembic's default; migrations/env.py does not change it
_REVISION_LINE = re.compile(r"^(down_revision|revision)(?:\s*:[^=]+)?\s*=\s*(.+?)\s*$", re.MULTILINE)
ADVISORY_LOCK = 42001  # any constant; the number of the standard, for whoever reads pg_locks


class RegisterError(RuntimeError):
    """A register problem a user can act on; the message says what to do."""


class NotFound(RegisterError):
    pass


class Duplicate(RegisterError):
    pass


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver the project installs)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Register:
    def __init__(self, url: str, audit_key: SecretStr | None = None) -> None:
        self.url = normalize_url(url)
        self.engine = _engine(self.url)
        # The key of the audit log's HMAC (AIMS_AUDIT_KEY), kept outside the database. Without it the
        # register writes plain SHA-256 entries until some process with the key has written once;
        # after that it refuses to write, since an unkeyed entry would break the keyed chain.
        self.audit_key = audit_key

    @classmethod
    def for_state(
        cls, state_dir: Path, database_url: str | None = None, audit_key: SecretStr | None = None
    ) -> Register:
        if database_url:
            return cls(database_url, audit_key)
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{state_dir / 'register.sqlite'}", audit_key)

    def _key_bytes(self) -> bytes | None:
        return self.audit_key.get_secret_value().encode() if self.audit_key is not None else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision`; safe to call from several processes at once."""
        from alembic import command

        with self._writer() as conn:
            config = _alembic_config(conn)
            command.upgrade(config, revision)

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def stamped_revisions(self) -> set[str]:
        """The revisions recorded in alembic's version table, read without importing alembic."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return set()
            return {row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}

    def ensure_schema(self) -> None:
        """Migrate when the schema is not at the head; cheap when it is, since every command calls this.

        Importing alembic costs a register command about a quarter of a second, so the usual case
        (one stamped revision, equal to the head the migration files declare) is decided with one
        query; anything else (empty, behind, ahead, branched) goes to alembic, which migrates or
        says what is wrong.
        """
        head = head_revision()
        if head is None or self.stamped_revisions() != {head}:
            self.migrate()

    # -- work -----------------------------------------------------------------------------------

    @contextmanager
    def unit_of_work(self, actor: str) -> Iterator[UnitOfWork]:
        """One transaction that may write: committed when the block ends, rolled back on error."""
        if not actor.strip():
            raise ValueError("every register write names its actor (a flow run, a router, a person)")
        with self._writer() as conn:
            yield UnitOfWork(conn, actor, self._key_bytes())

    @contextmanager
    def reader(self) -> Iterator[UnitOfWork]:
        """A read-only view; writing through it raises."""
        with self.engine.connect() as conn, conn.begin():
            yield UnitOfWork(conn, actor=None)

    def verify_audit(self, anchors: AnchorSet | None = None, batch: int = 500) -> AuditReport:
        """Check the hash chain (keyed entries against the audit key, the head against the published
        `anchors`), then that every register row is what its last audit entry says.

        The log is read in batches of `batch` entries, so memory does not grow with its length. The
        second half catches rows edited, added or deleted in the database behind the register's back.
        """
        from connectors.register.verify import verify_register

        with self._snapshot() as conn:
            return verify_register(conn, self._key_bytes(), anchors, batch)

    def audit_head(self) -> HeadRow | None:
        """The head row: newest seq, its hash, and the first keyed entry."""
        from connectors.register.verify import read_head

        with self.engine.connect() as conn:
            return read_head(conn)

    def check_audit_since(self, start: tuple[int, str] | None, upto: HeadRow) -> AuditProblem | None:
        """Whether the entries after `start` (a seq and hash already vouched for) chain up to `upto`."""
        from connectors.register.verify import check_since

        with self._snapshot() as conn:
            return check_since(conn, self._key_bytes(), start, upto)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One read transaction that sees one state of the database across its statements: the head
        and the log's batches, read one after another while writers go on, must agree. (SQLite's
        read transaction in WAL mode is a snapshot; PostgreSQL needs REPEATABLE READ for one.)"""
        conn = self.engine.connect()
        if self.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            yield conn

    @contextmanager
    def _writer(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(aims_write=True) as conn, conn.begin():
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})")
                yield conn
        except OperationalError as exc:
            raise RegisterError(
                f"the register at {display_url(self.url)} is unavailable: {exc.orig}"
            ) from exc


@functools.cache
def head_revision() -> str | None:
    """The head the migration files declare, read from their `revision`/`down_revision` lines.

    None when that is not one plain chain (a merge, several heads, a line it cannot read): the
    caller then leaves the decision to alembic. A test checks this against alembic's own answer.
    """
    revisions: dict[str, object] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found: dict[str, str] = {
            m[1]: m[2] for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))
        }
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return None
        revisions[revision] = down
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event, not pysqlite, decide how a transaction starts.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # A writer takes the lock up front: upgrading a read transaction later can fail at once.
            conn.exec_driver_sql(
                "BEGIN IMMEDIATE" if conn.get_execution_options().get("aims_write") else "BEGIN"
            )

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise RegisterError(
            f"no database driver for {display_url(url)}: install the 'postgres' extra (psycopg)"
        ) from exc


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


# -- unit of work ----------------------------------------------------------------------------------


class UnitOfWork:
    def __init__(self, conn: Connection, actor: str | None, audit_key: bytes | None = None) -> None:
        self.conn = conn
        self.actor = actor
        self._audit_key = audit_key
        self._head: tuple[int, str, int | None] | None = None
        self.systems = Repository(self, r.AISystem)
        self.model_versions = Repository(self, r.ModelVersion)
        self.datasets = Repository(self, r.Dataset)
        self.dataset_versions = Repository(self, r.DatasetVersion)
        self.data_quality = Repository(self, r.DataQualityResult)
        self.suite_reviews = Repository(self, r.SuiteReview)
        self.risks = Repository(self, r.Risk)
        self.risk_versions = Repository(self, r.RiskVersion)
        self.assessments = Repository(self, r.RiskAssessment)
        self.impact_assessments = Repository(self, r.ImpactAssessment)
        self.approvals = Repository(self, r.Approval)
        self.decisions = Repository(self, r.ApprovalDecision)
        self.notices = Repository(self, r.ApprovalNotice)
        self.incidents = Repository(self, r.Incident)
        self.incident_updates = Repository(self, r.IncidentUpdate)
        self.incident_notices = Repository(self, r.IncidentNotice)
        self.evidence_requests = Repository(self, r.EvidenceRequest)
        self.nonconformities = Repository(self, r.Nonconformity)
        self.corrective_actions = Repository(self, r.CorrectiveAction)
        self.reviews = Repository(self, r.ManagementReview)
        self.review_actions = Repository(self, r.ReviewAction)
        self.review_results = Repository(self, r.ReviewResult)
        self.party_needs = Repository(self, r.InterestedPartyNeed)
        self.events = Repository(self, EventReceived)
        self.evidence = Repository(self, EvidenceRecord)
        self.outbox = Repository(self, OutboxMessage)
        self.webhook_deliveries = Repository(self, WebhookDelivery)

    def repository(self, record: type[R]) -> Repository[R]:
        return Repository(self, record)

    def audit_entries(self, entity: str | None = None, entity_id: str | None = None) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.seq)
        if entity is not None:
            query = query.where(audit_log.c.entity == entity)
        if entity_id is not None:
            query = query.where(audit_log.c.entity_id == entity_id)
        return [entry_view(dict(row)) for row in self.conn.execute(query).mappings()]

    def append_audit(
        self,
        action: str,
        entity: Entity,
        entity_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> AuditEntry:
        if self.actor is None:
            raise RegisterError("this is a read-only view of the register; open a unit of work to write")
        if self._head is None:
            row = self.conn.execute(
                select(audit_head.c.seq, audit_head.c.hash, audit_head.c.keyed_from)
            ).first()
            if row is None:
                self.conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
            self._head = (row.seq, row.hash, row.keyed_from) if row else (0, GENESIS, None)
        last_seq, prev_hash, keyed_from = self._head
        seq = last_seq + 1
        if keyed_from is None and self._audit_key is not None:
            keyed_from = seq  # the first keyed entry: everything before it is sealed by its link
        elif keyed_from is not None and self._audit_key is None:
            raise RegisterError(
                f"the audit log is keyed from entry {keyed_from}: this process has no audit key to "
                "write with; set AIMS_AUDIT_KEY (or AIMS_AUDIT_KEY_FILE) to the installation's key"
            )
        fields: dict[str, Any] = {
            "seq": seq,
            "at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": action,
            "entity": entity.name,
            "entity_id": entity_id,
            "encoding": TEXT,
            "before_text": None if before is None else jcs(before),
            "after_text": None if after is None else jcs(after),
            "prev_hash": prev_hash,
        }
        fields["hash"] = text_entry_hash(fields, self._audit_key if keyed_from is not None else None)
        self.conn.execute(insert(audit_log).values(**fields))
        self.conn.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(seq=seq, hash=fields["hash"], keyed_from=keyed_from)
        )
        self._head = (seq, fields["hash"], keyed_from)
        return entry_view(fields)


class Repository(Generic[R]):
    """Reads and writes of one record type; every write is audited with before and after."""

    def __init__(self, uow: UnitOfWork, record: type[R]) -> None:
        self.uow = uow
        self.record = record
        self.entity = entity_for(record)
        self.table = self.entity.table

    def add(self, item: R) -> R:
        key = self._key_of(item)
        if self.get(*key) is not None:
            raise Duplicate(f"{self.entity.name} {self._key_text(key)!r} is already in the register")
        after = item.model_dump(mode="json")
        try:
            with self.uow.conn.begin_nested():
                self.uow.conn.execute(insert(self.table).values(**self._row(item)))
        except IntegrityError as exc:
            raise Duplicate(
                f"{self.entity.name} {self._key_text(key)} clashes with a record: {exc.orig}"
            ) from exc
        self.uow.append_audit("insert", self.entity, self._key_text(key), None, after)
        return item

    def add_if_absent(self, item: R) -> bool:
        """Insert unless a record with the same key exists; False then (redeliveries, retries)."""
        if self.get(*self._key_of(item)) is not None:
            return False
        self.add(item)
        return True

    def get(self, *key: Any) -> R | None:
        row = self.uow.conn.execute(select(self.table).where(*self._where(key))).mappings().first()
        return self.record.model_validate(dict(row)) if row else None

    def one(self, *key: Any) -> R:
        found = self.get(*key)
        if found is None:
            raise NotFound(f"no {self.entity.name} {self._key_text(key)!r} in the register")
        return found

    def find(
        self,
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        **equals: Any,
    ) -> list[R]:
        query = select(self.table)
        for name, value in equals.items():
            query = query.where(self.table.c[name] == value)
        if order_by is not None:
            column = self.table.c[order_by]
            query = query.order_by(column.desc() if descending else column)
        if limit is not None:
            query = query.limit(limit)
        return [self.record.model_validate(dict(row)) for row in self.uow.conn.execute(query).mappings()]

    def count(self, **equals: Any) -> int:
        query = select(func.count()).select_from(self.table)
        for name, value in equals.items():
            query = query.where(self.table.c[name] == value)
        return int(self.uow.conn.execute(query).scalar_one())

    def update(self, *key: Any, **changes: Any) -> R:
        """Change fields of one record; the new version is validated before anything is written."""
        current = self.one(*key)
        unknown = set(changes) - set(self.record.model_fields)
        if unknown:
            raise ValueError(f"{self.entity.name} has no field {', '.join(sorted(unknown))}")
        if set(changes) & set(self.entity.key):
            raise ValueError(f"the key of {self.entity.name} ({', '.join(self.entity.key)}) cannot change")
        new = self.record.model_validate({**current.model_dump(), **changes})
        before, after = current.model_dump(mode="json"), new.model_dump(mode="json")
        if before == after:
            return current
        self.uow.conn.execute(update(self.table).where(*self._where(key)).values(**self._row(new)))
        self.uow.append_audit("update", self.entity, self._key_text(key), before, after)
        return new

    # -- mapping ------------------------------------------------------------------------------

    def _row(self, item: R) -> dict[str, Any]:
        plain = item.model_dump()
        as_json = item.model_dump(mode="json", include=set(self.entity.json_fields))
        return {**plain, **as_json}

    def _key_of(self, item: R) -> tuple[Any, ...]:
        return tuple(getattr(item, name) for name in self.entity.key)

    def _where(self, key: tuple[Any, ...]) -> list[Any]:
        if len(key) != len(self.entity.key):
            raise TypeError(f"{self.entity.name} is keyed by {', '.join(self.entity.key)}")
        return [self.table.c[name] == value for name, value in zip(self.entity.key, key, strict=True)]

    def _key_text(self, key: tuple[Any, ...]) -> str:
        return " / ".join(str(k) for k in key)


def known_entities() -> list[str]:
    return sorted(e.name for e in ENTITIES.values())


__all__ = ["Duplicate", "NotFound", "Register", "RegisterError", "Repository", "UnitOfWork", "canonical_json"]
