"""`aims systems|risks|approvals|incidents|audit verify` read the register a flow wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.register.store import Register
from schemas import records as r
from schemas.trail import WebhookDelivery
from tests.aims.runner import aims_process as aims
from tests.records import every_record, sample
from tests.resources import migrated_register


@pytest.fixture
def state(tmp_path: Path) -> Path:
    register = migrated_register(tmp_path)
    due = datetime.now(UTC) + timedelta(days=3, hours=2)
    with register.unit_of_work("test") as uow:
        for item in every_record():
            if isinstance(item, r.Incident):
                item = item.model_copy(update={"reporting_due_at": due, "reported_to_authority_at": None})
            uow.repository(type(item)).add(item)
    register.close()
    return tmp_path


def test_lists_are_readable_tables_and_json(state: Path) -> None:
    out = aims(state, "systems")
    assert out.returncode == 0, out.stderr
    assert "credit-scoring" in out.stdout and "risk-analytics" in out.stdout and "deployed" in out.stdout
    systems = json.loads(aims(state, "systems", "--json").stdout)
    assert systems == [sample(r.AISystem).model_dump(mode="json")]

    risks = aims(state, "risks", "list", "--system", "credit-scoring")
    assert "Disparate approval rates" in risks.stdout and "3×4" in risks.stdout
    assert aims(state, "risks").stdout == risks.stdout
    shown = aims(state, "risks", "show", "credit-scoring")
    assert shown.returncode == 0, shown.stderr
    assert "fairness" in shown.stdout and "3×4" in shown.stdout and "BLOCKED" in shown.stdout
    assert json.loads(aims(state, "risks", "--json").stdout)["risks"][0]["category"] == "fairness"

    approvals = aims(state, "approvals", "--status", "approved")
    assert "model_version:credit-gbm/7" in approvals.stdout
    assert json.loads(aims(state, "approvals", "--status", "pending", "--json").stdout) == []

    incidents = aims(state, "incidents")
    assert "urn:support#77" in incidents.stdout
    assert "3 d 2 h" in incidents.stdout or "3 d 1 h" in incidents.stdout


def test_one_record_in_full(state: Path) -> None:
    shown = aims(state, "systems", "credit-scoring")
    assert "credit-gbm v7" in shown.stdout and "fairness=medium" in shown.stdout
    incident = aims(state, "incidents", "urn:support#77")
    assert "time left" in incident.stdout and "NCA-2026-1" in incident.stdout
    missing = aims(state, "approvals", "show", "nope")
    assert missing.returncode == 2 and "no approval 'nope'" in missing.stderr


def test_audit_verify_exit_codes(state: Path) -> None:
    ok = aims(state, "audit", "verify")
    assert ok.returncode == 0 and f"{len(every_record())} entries" in ok.stdout
    register = Register.for_state(state)
    with register.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"))
    register.close()
    broken = aims(state, "audit", "verify")
    assert broken.returncode == 1 and "entry 4: altered" in broken.stderr
    report = json.loads(aims(state, "audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["problem"]["seq"] == 4


def test_an_empty_register_says_how_it_fills(tmp_path: Path) -> None:
    out = aims(tmp_path, "systems")
    assert out.returncode == 0 and "no AI systems in the register yet" in out.stdout
    upgrade = aims(tmp_path, "register", "upgrade")
    from connectors.register.store import head_revision

    assert upgrade.returncode == 0 and f"→ {head_revision()}" in upgrade.stdout


def test_mlflow_lists_the_unmapped_candidates_with_why(state: Path) -> None:
    unmapped = aims(state, "mlflow", "--outcome", "unmapped")
    assert unmapped.returncode == 0, unmapped.stderr
    assert "side-project/2" in unmapped.stdout and "no AI system" in unmapped.stdout
    listed = json.loads(aims(state, "mlflow", "list", "--json").stdout)
    assert listed == [sample(WebhookDelivery).model_dump(mode="json")]
    assert (
        "no MLflow deliveries with outcome onboarded"
        in aims(state, "mlflow", "--outcome", "onboarded").stdout
    )
