"""The evidence a flow records names exactly what the Statement of Applicability counts it for.

Both come from the catalogue (schemas/iso42001.yaml): a flow's evidence row lists the clauses and
controls the catalogue maps the flow to, and the SoA counts that row for the same ids.
"""

from __future__ import annotations

import pytest

from aims.coverage import evidence_by_id, implementation_stats
from aims.soa import coverage, statement_of_applicability
from connectors.register.store import Register
from events.routing import ROUTES
from flows.catalog import FLOWS, FlowSpec
from schemas.catalogue import load_catalogue
from schemas.events import DECLARATIONS, EVENT_CLASSES, example


def an_event_of(flow: str) -> object:
    """An event the flow handles (its route's type), or any declared one for a scheduled flow."""
    types = [t for t, routes in ROUTES.items() if any(r.flow_name == flow for r in routes)]
    event_type = types[0] if types else DECLARATIONS[0].event_type
    return EVENT_CLASSES[event_type].model_validate(
        {"specversion": "1.0", "id": f"{flow}-1", "source": "urn:aims:tests", "data": example(event_type)}
    )


@pytest.mark.parametrize("spec", FLOWS, ids=lambda s: s.name)
def test_a_flows_evidence_names_what_the_soa_counts_it_for(register: Register, spec: FlowSpec) -> None:
    from flows.evidence import evidence_record  # imports Prefect

    catalogue = load_catalogue()
    record = evidence_record(spec.name, an_event_of(spec.name), {"checked": True})  # type: ignore[arg-type]
    with register.unit_of_work("test") as uow:
        uow.evidence.add(record)
    with register.reader() as uow:
        (stored,) = uow.evidence.find()
        stats = implementation_stats(uow)
        by_id = evidence_by_id(uow, catalogue)

    # What the SoA (controls) and the coverage report (clauses) say this flow implements.
    soa = statement_of_applicability(catalogue, by_id, {})
    controls = {row.id for row in soa if spec.name in row.implemented_by}
    clauses = {
        row.id
        for row in coverage(catalogue, by_id, include_clauses=True)
        if row.kind == "clause" and spec.name in row.implemented_by
    }
    assert stored.controls == record.controls
    assert len(stored.controls) == len(set(stored.controls))
    assert set(stored.controls) == clauses | controls
    # The row is counted for the flow, and so for every id it names.
    assert stats[spec.name].count == 1
    for id_ in stored.controls:
        assert by_id[id_].count >= 1, id_
    for row in soa:
        if row.id in controls:
            assert row.evidence_count >= 1 and row.applicable, row.id


def test_the_disagreements_of_old_are_gone() -> None:
    """reassess-risk lacked 6.1, 6.1.4 and 8.4; request-approval lacked A.6.2.8 and A.9.2."""
    from flows.evidence import evidence_ids

    assert {"6.1", "6.1.4", "8.4"} <= set(evidence_ids("reassess-risk"))
    assert {"A.6.2.8", "A.9.2"} <= set(evidence_ids("request-approval"))
