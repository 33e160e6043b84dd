"""`aims risks show|reassess` and `aims impact`: the risk history the flows wrote, and people's part in it.

Everything runs against a migrated SQLite register in tmp_path; no Kafka: reassessing an unknown
system must fail before Kafka is touched, and the one successful publish goes to a fake publisher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.register.store import Register
from schemas import records as r
from tests.records import T0
from tests.resources import migrated_register

SYSTEM = "lending"
FAIRNESS = f"{SYSTEM}:fairness"
DRIFT = f"{SYSTEM}:drift"
CLOSED_PORT = "127.0.0.1:1"  # nothing listens there: any attempt to reach Kafka fails


def aims(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AIMS_STATE_DIR": str(state), **env}
    for name in ("AIMS_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "aims", *args], capture_output=True, text=True, env=environment, timeout=120
    )


def assessment(aid: str, reason: str, evidence: str, at: datetime, **decided: Any) -> r.RiskAssessment:
    return r.RiskAssessment.model_validate(
        {
            "id": aid,
            "system": SYSTEM,
            "reason": reason,
            "trigger": f"urn:test#{aid}",
            "evidence": evidence,
            "inputs": {"system": SYSTEM},
            "highest_inherent": "medium",
            "highest_residual": "low",
            "assessed_by": "flow:reassess-risk",
            "assessed_at": at,
            **decided,
        }
    )


def version(risk_id: str, n: int, aid: str, at: datetime, **scores: Any) -> r.RiskVersion:
    return r.RiskVersion.model_validate(
        {
            "id": f"{risk_id}@v{n}",
            "risk_id": risk_id,
            "version": n,
            "assessed_by": "flow:reassess-risk",
            "assessed_at": at,
            "assessment_id": aid,
            **scores,
        }
    )


def risk(risk_id: str, category: str, latest: r.RiskVersion, title: str) -> r.Risk:
    return r.Risk(
        id=risk_id,
        system=SYSTEM,
        category=category,
        title=title,
        owner="cro",
        likelihood=latest.likelihood,
        impact=latest.impact,
        inherent_level=latest.inherent_level,
        residual_level=latest.residual_level,
        treatment=latest.treatment,
        controls=latest.controls,
        next_review=date(2027, 6, 1),
        version=latest.version,
        updated_at=latest.assessed_at,
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """`lending`: assessed twice (a new model version, then an incident); `idle`: never assessed."""
    today = datetime.now(UTC).date()
    first, second = T0, T0 + timedelta(days=3)
    fairness = [
        version(
            FAIRNESS,
            1,
            "ra-first",
            first,
            likelihood=2,
            impact=4,
            inherent_level="medium",
            residual_level="low",
            controls=["A.5.4"],
            rationale=[{"rule": "tier high: impact 4", "evidence": "risk tier high", "effect": "impact 4"}],
        ),
        version(
            FAIRNESS,
            2,
            "ra-second",
            second,
            likelihood=4,
            impact=4,
            inherent_level="high",
            residual_level="medium",
            treatment="Quarterly bias audit",
            controls=["A.5.4", "A.7.4"],
            rationale=[
                {
                    "rule": "incident of this kind in the window: low/medium +1, high +2, critical +3",
                    "evidence": "incident urn:support#9 (high)",
                    "effect": "likelihood +2",
                }
            ],
        ),
    ]
    drift = [
        version(
            DRIFT, 1, "ra-first", first, likelihood=1, impact=4, inherent_level="low", residual_level="low"
        )
    ]
    register = migrated_register(tmp_path)
    with register.unit_of_work("test") as uow:
        uow.systems.add(r.AISystem(name=SYSTEM, owner="risk", intended_use="loans", risk_tier="high"))
        uow.systems.add(r.AISystem(name="idle", owner="risk", intended_use="nothing yet"))
        uow.assessments.add(assessment("ra-first", "new_model_version", "mv-1", first))
        uow.assessments.add(
            assessment(
                "ra-second",
                "incident",
                "urn:support#9",
                second,
                highest_inherent="high",
                highest_residual="medium",
                gated=["fairness"],
                approval_id="ap-risk-2",
                blocked=True,
            )
        )
        for v in [*fairness, *drift]:
            uow.risk_versions.add(v)
        uow.risks.add(risk(FAIRNESS, "fairness", fairness[-1], "Disparate approval rates"))
        uow.risks.add(risk(DRIFT, "drift", drift[-1], "Input drift"))
        for ia in (
            r.ImpactAssessment(
                id="ia:mv-2", system=SYSTEM, model_version_id="mv-2", due=today + timedelta(days=20)
            ),
            r.ImpactAssessment(
                id="ia:mv-1", system=SYSTEM, model_version_id="mv-1", due=today - timedelta(days=2)
            ),
            r.ImpactAssessment(
                id="ia:mv-0",
                system="idle",
                model_version_id="mv-0",
                status="completed",
                assessor="dpo",
                summary="no effect on individuals",
                due=today - timedelta(days=40),
                completed_at=T0,
            ),
        ):
            uow.impact_assessments.add(ia)
    register.close()
    return tmp_path


# -- aims risks --------------------------------------------------------------------------------------


def test_risks_alone_and_risks_list_are_the_register_listing(state: Path) -> None:
    plain, listed = aims(state, "risks"), aims(state, "risks", "list")
    assert plain.returncode == 0 and listed.returncode == 0, plain.stderr + listed.stderr
    assert plain.stdout == listed.stdout
    assert "Disparate approval rates" in plain.stdout and "Input drift" in plain.stdout

    whole = json.loads(aims(state, "risks", "--json").stdout)
    assert {x["id"] for x in whole["risks"]} == {FAIRNESS, DRIFT}
    assert [v["version"] for v in whole["history"][FAIRNESS]] == [1, 2]
    one = aims(state, "risks", "list", "--system", SYSTEM)
    assert "v1 low → v2 medium" in one.stdout
    none = json.loads(aims(state, "risks", "list", "--system", "idle", "--json").stdout)
    assert none == {"risks": [], "history": {}}


def test_show_tells_the_history_and_why(state: Path) -> None:
    out = aims(state, "risks", "show", SYSTEM)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # current risks
    assert "fairness" in text and "4×4" in text and "2027-06-01" in text
    # assessments, newest first, with the gate and the block
    assert text.index("ra-second") < text.index("ra-first")
    second_row = next(line for line in text.splitlines() if line.startswith("ra-second"))
    assert "incident" in second_row and "ap-risk-2" in second_row and "BLOCKED" in second_row
    first_row = next(line for line in text.splitlines() if line.startswith("ra-first"))
    assert "new_model_version" in first_row and "BLOCKED" not in first_row
    # what changed between the versions, with the assessment and its reason
    assert "fairness v1 (ra-first, new_model_version): likelihood 2, impact 4" in text
    assert (
        "fairness v1 → v2 (ra-second, incident): likelihood 2→4, inherent medium→high, "
        'residual low→medium, treatment — → "Quarterly bias audit", controls +A.7.4'
    ) in text
    assert "impact 4→4" not in text  # only fields that changed
    # why the latest version scored as it did
    assert (
        "incident of this kind in the window" in text
        and "incident urn:support#9 (high) → likelihood +2" in text
    )


def test_show_json_has_history_and_computed_changes(state: Path) -> None:
    out = aims(state, "risks", "show", SYSTEM, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["system"] == SYSTEM
    assert {x["id"] for x in shown["risks"]} == {FAIRNESS, DRIFT}
    assert [a["id"] for a in shown["assessments"]] == ["ra-second", "ra-first"]
    assert [v["version"] for v in shown["history"][FAIRNESS]] == [1, 2]
    assert shown["history"][FAIRNESS][1]["rationale"][0]["effect"] == "likelihood +2"
    assert shown["changes"][DRIFT] == []
    [change] = shown["changes"][FAIRNESS]
    assert change["from"] == 1 and change["to"] == 2
    assert change["changed"] == {
        "likelihood": [2, 4],
        "inherent_level": ["medium", "high"],
        "residual_level": ["low", "medium"],
        "treatment": ["", "Quarterly bias audit"],
        "controls": [["A.5.4"], ["A.5.4", "A.7.4"]],
    }
    # `--json` before the action works too
    assert json.loads(aims(state, "risks", "--json", "show", SYSTEM).stdout) == shown


def test_show_a_system_not_assessed_yet_and_an_unknown_one(state: Path) -> None:
    idle = aims(state, "risks", "show", "idle")
    assert idle.returncode == 0, idle.stderr
    assert "idle: not assessed yet — `aims risks reassess idle`" in idle.stdout
    assert json.loads(aims(state, "risks", "show", "idle", "--json").stdout)["risks"] == []

    unknown = aims(state, "risks", "show", "nope")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "no AI system 'nope'" in unknown.stderr and "`aims systems`" in unknown.stderr


def test_the_old_positional_form_is_refused_with_the_actions(state: Path) -> None:
    old = aims(state, "risks", SYSTEM)
    assert old.returncode == 2 and "list" in old.stderr and "show" in old.stderr


# -- aims risks reassess -----------------------------------------------------------------------------


def test_reassess_an_unknown_system_fails_before_kafka(state: Path) -> None:
    out = aims(state, "risks", "reassess", "nope", "--by", "carol", AIMS_KAFKA_BOOTSTRAP_SERVERS=CLOSED_PORT)
    assert (
        out.returncode == 2 and "no AI system 'nope'" in out.stderr and "nothing was published" in out.stderr
    )
    assert "Kafka" not in out.stderr and "Traceback" not in out.stderr


def test_reassess_refuses_a_blank_name_or_note(state: Path) -> None:
    blank = aims(state, "risks", "reassess", SYSTEM, "--by", "", AIMS_KAFKA_BOOTSTRAP_SERVERS=CLOSED_PORT)
    assert blank.returncode == 2 and "invalid --by ''" in blank.stderr and "must not be empty" in blank.stderr
    padded = aims(
        state, "risks", "reassess", SYSTEM, "--by", " carol", AIMS_KAFKA_BOOTSTRAP_SERVERS=CLOSED_PORT
    )
    assert padded.returncode == 2 and "invalid --by" in padded.stderr
    note = aims(
        state,
        "risks",
        "reassess",
        SYSTEM,
        "--by",
        "carol",
        "--note",
        "",
        AIMS_KAFKA_BOOTSTRAP_SERVERS=CLOSED_PORT,
    )
    assert note.returncode == 2 and "invalid --note" in note.stderr
    assert "Kafka" not in blank.stderr + padded.stderr + note.stderr


# -- aims impact ---------------------------------------------------------------------------------------


def test_impact_list_open_first_then_by_due_date(state: Path) -> None:
    plain, listed = aims(state, "impact"), aims(state, "impact", "list")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == listed.stdout
    rows = [line for line in plain.stdout.splitlines() if line.startswith("ia:")]
    assert [row.split()[0] for row in rows] == ["ia:mv-1", "ia:mv-2", "ia:mv-0"]
    assert "OVERDUE" in rows[0] and "OVERDUE" not in rows[1]
    assert "OVERDUE" not in rows[2]  # long past due, but completed
    assert "dpo" in rows[2]

    opened = json.loads(aims(state, "impact", "--status", "open", "--json").stdout)
    assert [ia["id"] for ia in opened] == ["ia:mv-1", "ia:mv-2"]
    idle = json.loads(aims(state, "impact", "list", "--system", "idle", "--json").stdout)
    assert [ia["id"] for ia in idle] == ["ia:mv-0"]
    nothing = aims(state, "impact", "list", "--system", "idle", "--status", "open")
    assert nothing.returncode == 0 and "no impact assessments with" in nothing.stdout


def test_completing_an_impact_assessment_is_audited_with_who_did_it(state: Path) -> None:
    done = aims(state, "impact", "complete", "ia:mv-1", "--by", "carol", "--summary", "Denials reviewed")
    assert done.returncode == 0, done.stderr
    assert "ia:mv-1" in done.stdout and "completed by carol" in done.stdout

    register = Register.for_state(state)
    with register.reader() as uow:
        ia = uow.impact_assessments.one("ia:mv-1")
        entries = uow.audit_entries("impact_assessment", "ia:mv-1")
    assert (ia.status, ia.assessor, ia.summary) == ("completed", "carol", "Denials reviewed")
    assert ia.completed_at is not None and datetime.now(UTC) - ia.completed_at < timedelta(minutes=5)
    last = entries[-1]
    assert last.actor == "cli:carol" and last.action == "update"
    assert last.before is not None and last.before["status"] == "open"
    assert last.after is not None and last.after["status"] == "completed"

    again = aims(state, "impact", "complete", "ia:mv-1", "--by", "dave", "--summary", "Something else")
    assert again.returncode == 2
    assert "already completed" in again.stderr and "by carol" in again.stderr
    assert "nothing changed" in again.stderr
    with register.reader() as uow:
        assert len(uow.audit_entries("impact_assessment", "ia:mv-1")) == len(entries)
        assert uow.impact_assessments.one("ia:mv-1").summary == "Denials reviewed"
    register.close()
    assert aims(state, "audit", "verify").returncode == 0


def test_completing_needs_a_known_id_a_summary_and_a_name(state: Path) -> None:
    unknown = aims(state, "impact", "complete", "ia:nope", "--by", "carol", "--summary", "x")
    assert unknown.returncode == 2 and "no impact assessment 'ia:nope'" in unknown.stderr
    assert "`aims impact`" in unknown.stderr
    empty = aims(state, "impact", "complete", "ia:mv-2", "--by", "carol", "--summary", "  ")
    assert empty.returncode == 2 and "--summary is empty" in empty.stderr
    nobody = aims(state, "impact", "complete", "ia:mv-2", "--by", "", "--summary", "fine")
    assert nobody.returncode == 2 and "invalid --by" in nobody.stderr
    missing = aims(state, "impact", "complete", "ia:mv-2", "--summary", "fine")
    assert missing.returncode == 2 and "--by" in missing.stderr

    register = Register.for_state(state)
    with register.reader() as uow:
        assert uow.impact_assessments.one("ia:mv-2").status == "open"
        assert [e.action for e in uow.audit_entries("impact_assessment", "ia:mv-2")] == ["insert"]
    register.close()
