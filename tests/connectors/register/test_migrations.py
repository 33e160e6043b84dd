"""Migrations build the schema from nothing, upgrade a populated database, and match the tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from connectors.register.store import Register
from connectors.register.tables import metadata
from schemas import records as r
from tests.connectors.register.legacy_audit import append_legacy_audit
from tests.records import sample


def test_from_empty_to_head_matches_the_tables(blank: Register) -> None:
    assert blank.revision() is None
    blank.migrate()
    assert blank.revision() == "0015"
    assert set(metadata.tables) <= set(inspect(blank.engine).get_table_names())
    with blank.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"the tables and the migrations disagree; add a migration: {diff}"
    blank.migrate()  # a second run is a no-op
    assert blank.revision() == "0015"


def test_upgrade_keeps_the_rows_written_before_it(blank: Register) -> None:
    blank.migrate("0001")
    with blank.engine.connect() as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO dataset_version (id, dataset, version, location, content_hash, size_bytes,"
                " change_kind, produced_by, provenance, status, received_at) VALUES ('loans@1', 'loans', '1',"
                ' \'{"kind": "file", "uri": "/d/loans.csv"}\', NULL, NULL, NULL, NULL, \'{}\','
                " 'accepted', '2026-01-01 00:00:00')"
            )
        )
    with blank.engine.connect() as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO ai_system (name, owner, intended_use, lifecycle_stage, risk_tier, description,"
                " created_at, updated_at) VALUES ('legacy', 'ops', 'x', 'deployed', 'limited', '',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    blank.migrate()
    with blank.reader() as uow:
        assert uow.systems.one("legacy").owner == "ops"
        # 0003 added the profile column; the version written before it is intact and has none.
        version = uow.dataset_versions.one("loans@1")
        assert version.location["uri"] == "/d/loans.csv" and version.profile is None
    with blank.unit_of_work("t") as uow:
        uow.systems.add(sample(r.AISystem))
    # The pre-audit row is reported as written outside the register, which is the truth.
    problem = blank.verify_audit().problem
    assert problem is not None and problem.kind == "unlogged row" and "legacy" in problem.detail


def test_ensure_schema_migrates_only_when_behind(blank: Register) -> None:
    blank.ensure_schema()
    assert blank.revision() == "0015"
    blank.ensure_schema()
    assert blank.revision() == "0015"


def test_rows_logged_before_a_migration_added_fields_still_verify(blank: Register) -> None:
    """0006 gave approvals `escalated_to` (default []), 0007 gave incidents their tracking fields: rows
    written and logged before stay verifiable, and a later edit behind the register's back is caught."""
    from sqlalchemy import insert, update

    from connectors.register.tables import entity_for

    blank.migrate("0005")
    old = {"approval": sample(r.Approval), "incident": sample(r.Incident)}
    added = {"approval": {"slack_channel", "slack_ts", "jira_issue", "escalated_to"}}
    added["incident"] = set(r.Incident.model_fields) - {
        "id", "system", "title", "description", "category", "severity", "occurred_at", "detected_at",
        "reported_by", "status", "serious", "criteria", "reporting_due_at", "deadline_basis",
        "authority_reference", "closed_at",
    }  # fmt: skip
    with blank.unit_of_work("before-0006") as uow:
        for name, record in old.items():
            entity = entity_for(type(record))
            row = {k: v for k, v in record.model_dump().items() if k not in added[name]}
            uow.conn.execute(insert(entity.table).values(**row))
            logged = record.model_dump(mode="json", exclude=added[name])
            append_legacy_audit(uow.conn, "insert", entity.name, record.id, None, logged)
    blank.migrate()
    assert blank.verify_audit().problem is None
    incident = entity_for(r.Incident).table
    with blank.engine.begin() as conn:
        conn.execute(update(incident).values(jira_issue="AIINC-666"))
    problem = blank.verify_audit().problem
    assert problem is not None and problem.kind == "row altered" and "incident" in problem.detail


def test_reviews_and_findings_logged_before_0009_still_verify(blank: Register) -> None:
    """0009 gave reviews `triggers` and `pack_triggers`, nonconformities `controls` (all default []) and
    incidents `inventory_finding`: rows written and logged before stay verifiable."""
    from sqlalchemy import insert

    from connectors.register.tables import entity_for

    blank.migrate("0008")
    added: dict[type[r.Record], set[str]] = {
        r.ManagementReview: {"triggers", "pack_triggers"},
        r.Nonconformity: {"controls"},
        r.Incident: {"inventory_finding"},
    }
    # Once: reviews and nonconformities have random ids.
    old = {record_type: sample(record_type) for record_type in added}
    with blank.unit_of_work("before-0009") as uow:
        for record_type, record in old.items():
            entity = entity_for(record_type)
            row = {k: v for k, v in record.model_dump().items() if k not in added[record_type]}
            uow.conn.execute(insert(entity.table).values(**row))
            logged = record.model_dump(mode="json", exclude=added[record_type])
            append_legacy_audit(uow.conn, "insert", entity.name, logged["id"], None, logged)
    blank.migrate()
    assert blank.verify_audit().problem is None
    with blank.reader() as uow:
        review = uow.reviews.one(logged_id(old[r.ManagementReview]))
        assert (review.triggers, review.pack_triggers) == ([], [])
        assert uow.nonconformities.one(logged_id(old[r.Nonconformity])).controls == []
        assert uow.incidents.one(logged_id(old[r.Incident])).inventory_finding is None


def logged_id(record: r.Record) -> str:
    return str(record.model_dump()["id"])


def test_decisions_logged_before_0012_still_verify(blank: Register) -> None:
    """0012 gave approval decisions `credential` and `authenticated` (both default None): decisions
    recorded before say nothing about what proved their person, and stay verifiable."""
    from sqlalchemy import insert

    from connectors.register.tables import entity_for

    blank.migrate("0011")
    decision = sample(r.ApprovalDecision)
    added = {"credential", "authenticated"}
    with blank.unit_of_work("before-0012") as uow:
        entity = entity_for(r.ApprovalDecision)
        row = {k: v for k, v in decision.model_dump().items() if k not in added}
        uow.conn.execute(insert(entity.table).values(**row))
        logged = decision.model_dump(mode="json", exclude=added)
        uow.append_audit("insert", entity, decision.id, None, logged)
    blank.migrate()
    assert blank.verify_audit().problem is None
    with blank.reader() as uow:
        stored = uow.decisions.one(decision.id)
    assert (stored.credential, stored.authenticated) == (None, None)
