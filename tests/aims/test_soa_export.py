"""`aims controls` and `aims soa export` report what the register really holds."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas import records as r
from schemas.trail import EvidenceRecord
from tests.aims.runner import aims_process as aims
from tests.records import sample
from tests.resources import REPO, migrated_register

POLICY = REPO / "policy" / "aims-policy.yaml"


def populate(state: Path) -> datetime:
    """3 data-quality evidence records and 2 results (A.7.4); 1 incident flow record (A.8.4)."""
    register = migrated_register(state)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    evidence = sample(EvidenceRecord)
    with register.unit_of_work("test") as uow:
        for i in range(3):
            uow.evidence.add(
                evidence.model_copy(
                    update={
                        "event_key": f"d#{i}",
                        "flow": "check-data-quality",
                        "recorded_at": t0 + timedelta(hours=i),
                    }
                )
            )
        uow.evidence.add(evidence.model_copy(update={"event_key": "i#1", "flow": "handle-incident"}))
        for i in range(2):
            uow.data_quality.add(sample(r.DataQualityResult).model_copy(update={"id": f"dq{i}"}))
        last_write = uow.audit_entries()[-1].at
    register.close()
    return datetime.fromisoformat(last_write)


def test_soa_export_matches_the_recorded_evidence(tmp_path: Path) -> None:
    state = tmp_path / "state"
    last_write = populate(state)
    out = aims(state, "soa", "export", "--out", str(tmp_path / "soa"), "--policy", str(POLICY))
    assert out.returncode == 0, out.stderr
    assert "38 controls" in out.stdout
    with (tmp_path / "soa" / "statement-of-applicability.csv").open() as fh:
        rows = {row["control"]: row for row in csv.DictReader(fh)}
    assert len(rows) == 38
    # A.7.4: the flow's 3 evidence records + the 2 data-quality results, newest = the last register write.
    assert rows["A.7.4"]["evidence_count"] == "5"
    assert datetime.fromisoformat(rows["A.7.4"]["last_evidence_at"]) == last_write
    # A.8.4: the incident flow's one evidence record; no incident rows were written.
    assert rows["A.8.4"]["evidence_count"] == "1"
    # A.10.3 (suppliers): nothing implements it, nothing counted.
    assert rows["A.10.3"]["evidence_count"] == "0" and "organisational" in rows["A.10.3"]["justification"]
    markdown = (tmp_path / "soa" / "statement-of-applicability.md").read_text()
    assert all(f"| {control} |" in markdown for control in rows)


def test_exclusions_come_from_the_policy(tmp_path: Path) -> None:
    import yaml

    policy = yaml.safe_load(POLICY.read_text())
    policy["statement_of_applicability"] = {"exclusions": {"A.10.4": "we have no customers of AI systems"}}
    edited = tmp_path / "policy.yaml"
    edited.write_text(yaml.safe_dump(policy))
    out = aims(tmp_path / "state", "soa", "export", "--out", str(tmp_path / "soa"), "--policy", str(edited))
    assert out.returncode == 0, out.stderr
    with (tmp_path / "soa" / "statement-of-applicability.csv").open() as fh:
        rows = {row["control"]: row for row in csv.DictReader(fh)}
    assert rows["A.10.4"]["applicable"] == "no"
    assert rows["A.10.4"]["justification"] == "we have no customers of AI systems"

    policy["statement_of_applicability"] = {"exclusions": {"A.99.1": "no such control"}}
    edited.write_text(yaml.safe_dump(policy))
    refused = aims(
        tmp_path / "state", "soa", "export", "--out", str(tmp_path / "soa2"), "--policy", str(edited)
    )
    assert refused.returncode == 2 and "A.99.1" in refused.stderr
    assert not (tmp_path / "soa2").exists()


def test_controls_shows_the_same_counts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    populate(state)
    rows = {row["id"]: row for row in json.loads(aims(state, "controls", "--json").stdout)}
    assert len(rows) == 38 and rows["A.7.4"]["evidence_count"] == 5
    assert "check-data-quality" in rows["A.7.4"]["implemented_by"]
    table = aims(state, "controls").stdout
    assert "A.7.4" in table and "quality of data" in table


def test_policy_check_exit_codes(tmp_path: Path) -> None:
    ok = aims(tmp_path, "policy", "check", str(POLICY))
    assert ok.returncode == 0 and ok.stdout.startswith("ok:")
    broken = tmp_path / "broken.yaml"
    broken.write_text(POLICY.read_text().replace("quorum: 1", "quorum: 0", 1))
    bad = aims(tmp_path, "policy", "check", str(broken))
    assert bad.returncode == 1 and "quorum" in bad.stdout and "broken.yaml:" in bad.stdout
