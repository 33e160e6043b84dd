"""`aims controls` shows fresh, stale and missing; `aims evidence add` records what a person supplies.
Bad arguments exit 2 and record nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.trail import EvidenceRecord
from tests.aims.runner import Run, isolate, run
from tests.resources import migrated_register

MARIA = "maria.rossi@northwind.example"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    isolate(folder, monkeypatch)
    migrated_register(folder).close()
    return folder


def evidence_rows(state: Path) -> list[EvidenceRecord]:
    register = migrated_register(state)
    try:
        with register.reader() as uow:
            return uow.evidence.find()
    finally:
        register.close()


def controls(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, dict[str, object]]:
    shown = run(capsys, "controls", "--json", *extra)
    assert shown.code == 0, shown.err
    return {row["id"]: row for row in json.loads(shown.out)}


def test_controls_show_fresh_stale_and_missing(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checked = datetime.now(UTC) - timedelta(days=40)
    register = migrated_register(state)
    with register.unit_of_work("test") as uow:
        for key, flow in (("a", "check-data-quality"), ("b", "hold-management-review")):
            uow.evidence.add(
                EvidenceRecord(
                    event_key=f"urn:t#{key}",
                    flow=flow,
                    event_type="t",
                    subject="s",
                    recorded_at=checked,
                    collected_at=checked,
                    controls=[],
                    outcome={},
                    event={},
                )
            )
    register.close()
    rows = controls(capsys)
    # The policy allows data-quality evidence 30 days, a management review's 365.
    assert rows["A.7.4"]["freshness"] == "stale" and rows["A.7.4"]["max_age_days"] == 30
    assert rows["A.2.4"]["freshness"] == "fresh" and rows["A.2.4"]["max_age_days"] == 365
    assert rows["A.2.3"]["freshness"] == "missing" and rows["A.2.3"]["evidence_count"] == 0
    assert rows["A.10.4"]["freshness"] == "excluded"
    due = controls(capsys, "--due")
    assert "A.7.4" in due and "A.2.3" in due and "A.2.4" not in due and "A.10.4" not in due
    table = run(capsys, "controls")
    assert table.code == 0 and "FRESHNESS" in table.out
    assert next(line for line in table.out.splitlines() if line.startswith("A.7.4 ")).endswith("stale")
    assert "fresh," in table.out.splitlines()[-1] and "missing" in table.out.splitlines()[-1]


def test_supplied_evidence_makes_its_control_fresh_from_when_it_was_collected(
    state: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "ai-policy-signed.pdf"
    report.write_bytes(b"%PDF-1.7 signed AI policy")
    collected = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    added = run(
        capsys,
        "evidence", "add", "A.2.2", "A.2.3", "--by", MARIA, "--note", "AI policy signed by the board",
        "--file", str(report), "--collected", collected, "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    [row] = evidence_rows(state)
    sha = hashlib.sha256(report.read_bytes()).hexdigest()
    assert row.controls == ["A.2.2", "A.2.3"] and row.flow == "supplied"
    assert row.outcome == {
        "note": "AI policy signed by the board",
        "supplied_by": MARIA,
        "file": "ai-policy-signed.pdf",
        "sha256": sha,
        "bytes": report.stat().st_size,
    }
    assert row.collected_at is not None and row.collected_at.date().isoformat() == collected
    assert row.valid_until == row.collected_at + timedelta(days=365)
    assert (state / "evidence-files" / sha).read_bytes() == report.read_bytes()
    rows = controls(capsys)
    assert rows["A.2.3"]["freshness"] == "fresh" and rows["A.2.3"]["evidence_count"] == 1
    assert str(rows["A.2.3"]["last_evidence_at"]).startswith(collected)


BAD = [
    (["A.99.1"], "not an Annex A control"),
    (["A.2", "--note", "x"], "did you mean one of A.2.2, A.2.3, A.2.4"),
    (["A.2.3", "--note", "   "], "--note"),
    (["A.2.3", "--note", "x", "--collected", "2999-01-01"], "in the future"),
    (["A.2.3", "--note", "x", "--collected", "2026-02-30"], "no such date"),
    (["A.2.3", "--note", "x", "--collected", "2026-01-02", "--valid-until", "2026-01-01"], "never valid"),
    (["A.2.3", "--note", "x", "--file", "/nonexistent/report.pdf"], "not a file"),
    (["A.2.3", "--note", "x", "--by", "ma\x00ria"], "NUL"),
]


@pytest.mark.parametrize(("argv", "why"), BAD, ids=[w for _, w in BAD])
def test_bad_arguments_exit_2_and_record_nothing(
    state: Path, capsys: pytest.CaptureFixture[str], argv: list[str], why: str
) -> None:
    if "--note" not in argv:
        argv = [*argv, "--note", "x"]
    refused = run(capsys, "evidence", "add", *argv, "--by", MARIA) if "--by" not in argv else None
    refused = refused or run(capsys, "evidence", "add", *argv)
    assert refused.code == 2 and why in refused.err, refused.err
    assert evidence_rows(state) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    control=st.one_of(st.from_regex(r"\AA\.\d{1,2}\.\d{1,2}\Z"), st.text(max_size=12)),
    collected=st.one_of(st.none(), st.text(max_size=12), st.dates().map(str)),
)
def test_any_arguments_record_one_row_or_exit_2_with_nothing(
    state: Path, capsys: pytest.CaptureFixture[str], control: str, collected: str | None
) -> None:
    before = len(evidence_rows(state))
    argv = ["evidence", "add", "--by", MARIA, "--note", "n", "--", control]
    if collected is not None:
        argv[2:2] = ["--collected", collected]
    result: Run = run(capsys, *argv)
    after = len(evidence_rows(state))
    if result.code == 0:
        assert after == before + 1
    else:
        assert result.code == 2 and result.err.strip() and after == before
