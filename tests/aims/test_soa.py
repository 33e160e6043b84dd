"""Coverage and the Statement of Applicability: pure functions over the catalogue and evidence stats."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aims.soa import (
    ORGANISATIONAL,
    SOA_CSV_FIELDS,
    EvidenceStat,
    SoaRow,
    coverage,
    read_soa_csv,
    render_coverage_table,
    render_soa_markdown,
    soa_summary,
    statement_of_applicability,
    write_soa_csv,
    write_soa_markdown,
)
from schemas.catalogue import load_catalogue

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
EVIDENCE = {
    "A.6.2.8": EvidenceStat(120, T0),
    "A.7.4": EvidenceStat(3, T0 - timedelta(days=2)),
    "A.10.4": EvidenceStat(1, T0 - timedelta(days=9)),
    "9.3": EvidenceStat(2, T0 - timedelta(days=30)),
}
EXCLUSIONS = {"A.10.4": "AI systems are used in-house only; no customer deploys or operates them."}
CATALOGUE = load_catalogue()
CONTROL_IDS = [c.id for c in CATALOGUE.controls]
CLAUSE_IDS = [c.id for c in CATALOGUE.clauses]


def _soa() -> list[SoaRow]:
    return statement_of_applicability(CATALOGUE, EVIDENCE, EXCLUSIONS)


# -- coverage ------------------------------------------------------------------------------------------


def test_coverage_has_one_row_per_control_with_the_given_evidence() -> None:
    rows = coverage(CATALOGUE, EVIDENCE)
    assert [r.id for r in rows] == CONTROL_IDS
    assert {r.kind for r in rows} == {"control"}
    by_id = {r.id: r for r in rows}
    assert (by_id["A.6.2.8"].evidence_count, by_id["A.6.2.8"].last_evidence_at) == (120, T0)
    assert (by_id["A.2.2"].evidence_count, by_id["A.2.2"].last_evidence_at) == (0, None)
    assert "event-router" in by_id["A.6.2.8"].implemented_by
    assert by_id["A.4.6"].implemented_by == ()
    assert by_id["A.7.4"].title == "quality of data"


def test_coverage_optionally_lists_clauses_first() -> None:
    rows = coverage(CATALOGUE, EVIDENCE, include_clauses=True)
    assert [r.id for r in rows] == CLAUSE_IDS + CONTROL_IDS
    by_id = {r.id: r for r in rows}
    assert by_id["9.3"].kind == "clause"
    assert (by_id["9.3"].evidence_count, by_id["9.3"].last_evidence_at) == (2, T0 - timedelta(days=30))
    assert "hold-management-review" in by_id["9.3"].implemented_by


def test_coverage_rejects_evidence_for_unknown_ids() -> None:
    with pytest.raises(ValueError, match=re.escape("A.11.1, nonsense")):
        coverage(CATALOGUE, {"A.11.1": EvidenceStat(1, T0), "nonsense": EvidenceStat(1, T0)})


def test_evidence_stat_is_checked() -> None:
    with pytest.raises(ValueError, match="negative"):
        EvidenceStat(-1, None)
    with pytest.raises(ValueError, match="timezone-aware"):
        EvidenceStat(1, datetime(2025, 1, 1))


# -- statement of applicability ------------------------------------------------------------------------


def test_soa_rows_match_the_evidence_exactly() -> None:
    rows = _soa()
    assert [r.id for r in rows] == CONTROL_IDS
    for row in rows:
        stat = EVIDENCE.get(row.id, EvidenceStat(0, None))
        assert (row.evidence_count, row.last_evidence_at) == (stat.count, stat.last_at), row.id


def test_exclusions_carry_their_justification() -> None:
    by_id = {r.id: r for r in _soa()}
    excluded = by_id["A.10.4"]
    assert not excluded.applicable
    assert excluded.justification == EXCLUSIONS["A.10.4"]
    assert excluded.evidence_count == 1  # evidence is still shown, so a contradiction is visible
    assert [r.id for r in by_id.values() if not r.applicable] == ["A.10.4"]


def test_included_controls_are_justified_by_what_implements_them() -> None:
    by_id = {r.id: r for r in _soa()}
    approval = by_id["A.9.2"]
    assert approval.applicable
    assert approval.justification.startswith("applicable; implemented by ")
    assert "flow request-approval" in approval.justification
    assert "approval" in approval.justification
    assert "the event router" in by_id["A.6.2.8"].justification
    for organisational in ("A.4.6", "A.10.3"):
        assert by_id[organisational].applicable
        assert by_id[organisational].implemented_by == ()
        assert by_id[organisational].justification == ORGANISATIONAL
    assert by_id["A.6.2.8"].objective == "A.6"


@pytest.mark.parametrize("unknown", ["A.1.1", "9.3", "A.10.5"])
def test_an_unknown_exclusion_is_rejected(unknown: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"not Annex A controls: {unknown}")):
        statement_of_applicability(CATALOGUE, EVIDENCE, {**EXCLUSIONS, unknown: "reason"})


def test_an_exclusion_needs_a_justification() -> None:
    with pytest.raises(ValueError, match=re.escape("justification: A.10.3")):
        statement_of_applicability(CATALOGUE, EVIDENCE, {"A.10.3": "  "})


def test_summary() -> None:
    summary = soa_summary(_soa())
    assert (summary.controls, summary.applicable, summary.excluded, summary.with_evidence) == (38, 37, 1, 3)
    assert summary.implemented == sum(bool(CATALOGUE.implementations_for(i)) for i in CONTROL_IDS)


# -- outputs -------------------------------------------------------------------------------------------


def test_csv_round_trips_through_dictreader(tmp_path: Path) -> None:
    rows = statement_of_applicability(
        CATALOGUE,
        {**EVIDENCE, "A.2.2": EvidenceStat(4, datetime(2025, 2, 1, 8, tzinfo=timezone(timedelta(hours=2))))},
        {**EXCLUSIONS, "A.10.3": 'No suppliers, "none" at all; see policy, section 3\nsecond line'},
    )
    path = write_soa_csv(rows, tmp_path / "out" / "soa.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == SOA_CSV_FIELDS
        read = list(reader)
    assert len(read) == 38
    for row, values in zip(rows, read, strict=True):
        assert values["control"] == row.id
        assert values["title"] == row.title
        assert values["applicable"] == ("yes" if row.applicable else "no")
        assert values["justification"] == row.justification
        assert values["implemented_by"].split("; ") == list(row.implemented_by) or not row.implemented_by
        assert int(values["evidence_count"]) == row.evidence_count
        last = values["last_evidence_at"]
        assert (datetime.fromisoformat(last) if last else None) == row.last_evidence_at
    assert read_soa_csv(path) == rows


def test_markdown_has_header_summary_and_every_control_once(tmp_path: Path) -> None:
    rows = _soa()
    path = write_soa_markdown(
        rows, tmp_path / "soa.md", organisation="Northwind", generated_at=T0, policy_version="2025.3"
    )
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Statement of Applicability — Northwind\n")
    assert "Policy version: 2025.3" in text
    assert "2025-03-01 09:30 UTC" in text
    assert "37 applicable, 1 excluded, 3 with evidence" in text
    table = [line for line in text.splitlines() if line.startswith("| A.")]
    assert [line.split(" | ")[0].removeprefix("| ") for line in table] == CONTROL_IDS
    for id_ in CONTROL_IDS:
        assert sum(f"| {id_} |" in line for line in table) == 1
    assert EXCLUSIONS["A.10.4"] in text


def test_markdown_escapes_pipes_and_needs_an_aware_time() -> None:
    rows = statement_of_applicability(CATALOGUE, {}, {"A.10.4": "a | b"})
    text = render_soa_markdown(rows, organisation="X", generated_at=T0, policy_version="1")
    assert "a \\| b" in text
    with pytest.raises(ValueError, match="timezone-aware"):
        render_soa_markdown(rows, organisation="X", generated_at=datetime(2025, 1, 1), policy_version="1")


def test_coverage_table_fits_110_columns_and_shows_every_row() -> None:
    rows = coverage(CATALOGUE, EVIDENCE, include_clauses=True)
    text = render_coverage_table(rows)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 110
    assert len(lines) == 2 + len(rows) + 1
    assert lines[0].split()[0] == "ID"
    body = lines[2:-1]
    assert [line.split()[0] for line in body] == [r.id for r in rows]
    a628 = next(line for line in body if line.startswith("A.6.2.8 "))
    assert "120" in a628 and "2025-03-01 09:30" in a628
    assert "(organisational)" in next(line for line in body if line.startswith("A.4.6 "))
    assert lines[-1].endswith("with evidence")


def test_coverage_table_truncates_long_text_and_marks_exclusions() -> None:
    text = render_coverage_table(_soa(), width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" in text
    assert "excluded" in next(line for line in lines if line.startswith("A.10.4 "))


# -- property: the SoA reports the evidence it is given, no more and no less ---------------------------

_times = (
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
    | st.none()
)
_evidence = st.dictionaries(
    st.sampled_from(CONTROL_IDS + CLAUSE_IDS),
    st.builds(EvidenceStat, count=st.integers(min_value=0, max_value=10**6), last_at=_times),
    max_size=len(CONTROL_IDS) + len(CLAUSE_IDS),
)
_exclusions = st.dictionaries(st.sampled_from(CONTROL_IDS), st.text(min_size=1).filter(str.strip), max_size=5)


@settings(max_examples=200, deadline=None)
@given(evidence=_evidence, exclusions=_exclusions)
def test_soa_counts_equal_the_input_and_totals_add_up(
    evidence: dict[str, EvidenceStat], exclusions: dict[str, str]
) -> None:
    rows = statement_of_applicability(CATALOGUE, evidence, exclusions)
    assert [r.id for r in rows] == CONTROL_IDS
    for row in rows:
        stat = evidence.get(row.id)
        assert row.evidence_count == (stat.count if stat else 0)
        assert row.last_evidence_at == (stat.last_at if stat else None)
        assert row.applicable == (row.id not in exclusions)
        if not row.applicable:
            assert row.justification == exclusions[row.id].strip()
    control_total = sum(s.count for k, s in evidence.items() if k.startswith("A."))
    assert sum(r.evidence_count for r in rows) == control_total
    summary = soa_summary(rows)
    assert summary.applicable + summary.excluded == summary.controls == 38
    assert summary.excluded == len(exclusions)
    assert summary.with_evidence == sum(1 for k, s in evidence.items() if k.startswith("A.") and s.count > 0)
    covered = coverage(CATALOGUE, evidence, include_clauses=True)
    assert sum(r.evidence_count for r in covered) == sum(s.count for s in evidence.values())
