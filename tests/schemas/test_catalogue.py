"""The ISO/IEC 42001 catalogue: complete against the reference, consistent, and mapped to the tool."""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

import pytest

from flows.catalog import flow_names
from schemas.catalogue import (
    ANNEX_A_CONTROL_COUNT,
    CatalogueError,
    ImplementationKind,
    Phase,
    id_sort_key,
    load_catalogue,
    parse_catalogue,
    read_catalogue_data,
)
from tests.resources import REPO


def _ids(text: str) -> list[str]:
    return text.split()


# From shared/reference/iso42001.md: every clause id of 4–10 it lists, and the controls per objective.
REFERENCE_CLAUSES = _ids(
    "4.1 4.2 4.3 4.4 5.1 5.2 5.3 6.1.1 6.1.2 6.1.3 6.1.4 6.2 6.3 7.1 7.2 7.3 7.4 7.5 7.5.1 7.5.2 7.5.3 "
    "8.1 8.2 8.3 8.4 9.1 9.2 9.2.1 9.2.2 9.3 9.3.1 9.3.2 9.3.3 10.1 10.2"
)
REFERENCE_CONTROLS = _ids(
    "A.2.2 A.2.3 A.2.4 A.3.2 A.3.3 A.4.2 A.4.3 A.4.4 A.4.5 A.4.6 A.5.2 A.5.3 A.5.4 A.5.5 "
    "A.6.1.2 A.6.1.3 A.6.2.2 A.6.2.3 A.6.2.4 A.6.2.5 A.6.2.6 A.6.2.7 A.6.2.8 "
    "A.7.2 A.7.3 A.7.4 A.7.5 A.7.6 A.8.2 A.8.3 A.8.4 A.8.5 A.9.2 A.9.3 A.9.4 A.10.2 A.10.3 A.10.4"
)
PER_OBJECTIVE = {"A.2": 3, "A.3": 2, "A.4": 5, "A.5": 4, "A.6": 9, "A.7": 5, "A.8": 4, "A.9": 3, "A.10": 3}
# The flows that exist (flows/catalog.py); tests/flows/test_catalog.py holds the catalogue to them,
# and tests/aims/test_evidence_agrees_with_soa.py their evidence to the catalogue.
FLOWS = flow_names()
RECORD_TYPES = [
    "ai_system",
    "model_version",
    "dataset",
    "dataset_version",
    "data_quality_result",
    "risk",
    "impact_assessment",
    "approval",
    "incident",
    "incident_update",
    "incident_notice",
    "nonconformity",
    "corrective_action",
    "management_review",
    "review_action",
    "event_received",
    "evidence",
    "audit_log",
    "policy",
]


def test_exactly_38_annex_a_controls_with_unique_ids() -> None:
    controls = load_catalogue().controls
    ids = [c.id for c in controls]
    assert len(ids) == ANNEX_A_CONTROL_COUNT == 38
    assert len(set(ids)) == 38
    assert ids == REFERENCE_CONTROLS  # the reference's order, which is also the natural order
    assert ids == sorted(ids, key=id_sort_key)


def test_controls_per_objective_match_the_reference() -> None:
    catalogue = load_catalogue()
    assert Counter(c.objective for c in catalogue.controls) == PER_OBJECTIVE
    assert [o.id for o in catalogue.objectives] == list(PER_OBJECTIVE)
    for control in catalogue.controls:
        assert control.id.startswith(control.objective + ".")
        assert re.fullmatch(r"A\.\d+\.\d+(\.\d+)?", control.id)
        assert catalogue.objective(control.objective).title


def test_every_reference_clause_is_present_with_a_phase() -> None:
    catalogue = load_catalogue()
    ids = [c.id for c in catalogue.clauses]
    assert len(ids) == len(set(ids))
    assert set(REFERENCE_CLAUSES) <= set(ids)
    assert ids == sorted(ids, key=id_sort_key)
    phases = {c.id: c.phase for c in catalogue.clauses}
    assert phases["4.1"] == phases["5.2"] == phases["6.1.4"] == Phase.plan
    assert phases["7.5.3"] == Phase.support
    assert phases["8.2"] == Phase.do
    assert phases["9.3.2"] == Phase.check
    assert phases["10.2"] == Phase.act


def test_titles_are_short_paraphrases() -> None:
    catalogue = load_catalogue()
    titles = [(i.id, i.title) for i in catalogue.clauses] + [(i.id, i.title) for i in catalogue.controls]
    titles += [(i.id, i.title) for i in catalogue.objectives]
    for id_, title in titles:
        assert 0 < len(title) <= 80, id_
    assert catalogue.control("A.6.2.8").title == "recording of event logs"
    assert catalogue.clause("9.3.2").title == "management review inputs"


def test_every_implementation_references_existing_ids() -> None:
    catalogue = load_catalogue()
    clauses = {c.id for c in catalogue.clauses}
    controls = {c.id for c in catalogue.controls}
    for impl in catalogue.implementations:
        assert set(impl.clauses) <= clauses, impl.name
        assert set(impl.controls) <= controls, impl.name
        assert impl.ids, impl.name
        assert impl.how and "\n" not in impl.how


@pytest.mark.parametrize("name", [*FLOWS, "event-router", *RECORD_TYPES])
def test_every_flow_router_and_record_type_has_a_mapping(name: str) -> None:
    catalogue = load_catalogue()
    clauses, controls = catalogue.ids_for(name)
    assert clauses or controls
    impl = catalogue.implementation(name)
    expected = (
        ImplementationKind.flow
        if name in FLOWS
        else ImplementationKind.router
        if name == "event-router"
        else ImplementationKind.record
    )
    assert impl.kind == expected


def test_names_by_kind() -> None:
    catalogue = load_catalogue()
    assert catalogue.names(ImplementationKind.flow) == FLOWS
    assert catalogue.names(ImplementationKind.router) == ["event-router"]
    assert set(RECORD_TYPES) <= set(catalogue.names(ImplementationKind.record))


@pytest.mark.parametrize(
    ("name", "must_include"),
    [
        ("data_quality_result", {"A.7.4", "A.7.5", "A.7.6", "9.1"}),
        ("approval", {"5.3", "A.3.2", "A.9.2", "8.3"}),
        ("incident", {"A.8.4", "A.3.3", "10.2"}),
        ("audit_log", {"7.5.3", "A.6.2.8"}),
        ("policy", {"5.2", "A.2.2", "A.2.4"}),
        ("management_review", {"9.3"}),
        ("event-router", {"A.6.2.8"}),
    ],
)
def test_key_mappings(name: str, must_include: set[str]) -> None:
    clauses, controls = load_catalogue().ids_for(name)
    assert must_include <= {*clauses, *controls}


def test_implementations_for() -> None:
    catalogue = load_catalogue()
    assert [i.name for i in catalogue.implementations_for("A.7.4")] == [
        "check-data-quality",
        "data_quality_result",
        "suite_review",
    ]
    assert "event-router" in [i.name for i in catalogue.implementations_for("A.6.2.8")]
    assert catalogue.implementations_for("A.4.6") == []  # human resources: organisational
    assert catalogue.implementations_for("A.10.3") == []  # suppliers: organisational
    assert [i.name for i in catalogue.implementations_for("9.3.2")] == [
        "hold-management-review",
        "management_review",
        "interested_party_need",
    ]


def test_unknown_lookups_raise_key_errors_that_say_what_is_known() -> None:
    catalogue = load_catalogue()
    with pytest.raises(KeyError, match=r"known names: .*onboard-model"):
        catalogue.ids_for("onboard-models")
    with pytest.raises(KeyError, match=re.escape("A.2.2 … A.10.4")):
        catalogue.control("A.1.1")
    with pytest.raises(KeyError, match="neither a clause nor"):
        catalogue.implementations_for("11.1")
    with pytest.raises(KeyError):
        catalogue.clause("A.2.2")


def test_load_is_cached_and_frozen() -> None:
    catalogue = load_catalogue()
    assert load_catalogue() is catalogue
    with pytest.raises(ValueError, match="frozen"):
        catalogue.controls[0].title = "changed"  # type: ignore[misc]


def test_data_file_is_package_data_beside_the_module() -> None:
    assert (REPO / "schemas" / "iso42001.yaml").is_file()


# -- validation ----------------------------------------------------------------------------------------


def _data() -> dict[str, Any]:
    return copy.deepcopy(read_catalogue_data())


def test_the_shipped_data_parses() -> None:
    assert parse_catalogue(_data()) == load_catalogue()


def test_a_missing_control_is_rejected() -> None:
    data = _data()
    data["controls"].pop()
    with pytest.raises(CatalogueError, match="38 controls, the catalogue lists 37"):
        parse_catalogue(data)


def test_a_duplicate_id_is_rejected() -> None:
    data = _data()
    data["controls"][1]["id"] = data["controls"][0]["id"]
    with pytest.raises(CatalogueError, match=re.escape("control ids appear more than once: A.2.2")):
        parse_catalogue(data)
    data = _data()
    data["clauses"].append(dict(data["clauses"][0]))
    with pytest.raises(CatalogueError, match=re.escape("clause ids appear more than once: 4.1")):
        parse_catalogue(data)
    data = _data()
    data["implementations"].append(dict(data["implementations"][0]))
    with pytest.raises(CatalogueError, match="implementation names appear more than once: onboard-model"):
        parse_catalogue(data)


def test_an_unknown_reference_is_rejected() -> None:
    data = _data()
    data["implementations"][0]["controls"] = ["A.6.2.9"]
    with pytest.raises(CatalogueError, match=re.escape("'onboard-model' names unknown ids: A.6.2.9")):
        parse_catalogue(data)
    data = _data()
    data["implementations"][0]["clauses"] = ["9.4"]
    with pytest.raises(CatalogueError, match=re.escape("'onboard-model' names unknown ids: 9.4")):
        parse_catalogue(data)


@pytest.mark.parametrize("bad", ["A.2", "A.2.2.2.2", "a.2.2", "B.2.2", "A.2.x"])
def test_a_malformed_control_id_is_rejected(bad: str) -> None:
    data = _data()
    data["controls"][0]["id"] = bad
    with pytest.raises(CatalogueError, match=r"pattern|objective"):
        parse_catalogue(data)


def test_an_unquoted_clause_id_is_rejected() -> None:
    data = _data()
    data["clauses"][0]["id"] = 4.1  # what YAML makes of an unquoted 4.1
    with pytest.raises(CatalogueError, match="string"):
        parse_catalogue(data)


def test_a_control_outside_its_objective_is_rejected() -> None:
    data = _data()
    data["controls"][0]["objective"] = "A.3"
    with pytest.raises(CatalogueError, match=re.escape("A.2.2 does not belong to objective A.3")):
        parse_catalogue(data)


def test_unknown_fields_are_rejected() -> None:
    data = _data()
    data["controls"][0]["text"] = "the standard's wording"
    with pytest.raises(CatalogueError, match="Extra inputs"):
        parse_catalogue(data)
