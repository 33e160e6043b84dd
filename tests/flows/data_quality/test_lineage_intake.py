"""An OpenLineage run event → data-changed events for the outputs the policy maps, or the reasons why not."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.data_quality.lineage_intake import SOURCE, event_id, intake, run_of
from schemas.openlineage import RunEvent
from schemas.payloads import ChangeKind
from tests.lineage import RUN, event_body, lineage_policy, output

POLICY = lineage_policy()


def run_event(event_type: str = "COMPLETE", outputs: list[Any] | None = None, **more: Any) -> RunEvent:
    return RunEvent.model_validate(event_body(event_type, outputs, **more))


def test_a_complete_run_with_a_mapped_output_is_a_data_change_of_that_file() -> None:
    got = intake(run_event(), POLICY)
    assert got.outcome == "data-changed" and got.subject == "pipelines/nightly-loans"
    (event,) = got.events
    assert event.source == SOURCE and event.id == event_id(RUN, "file", "/srv/lake/scores.csv")
    data = event.data
    assert (data.dataset_id, data.source, data.path, data.table) == ("scores.csv", "lake", "scores.csv", None)
    assert data.version == RUN and data.change_kind is ChangeKind.updated and data.row_count is None
    assert got.outputs[0]["event_key"] == event.dedup_key and run_of(event) == RUN


def test_the_longest_prefix_wins_and_may_name_the_dataset() -> None:
    (event,) = intake(run_event(outputs=[output("/srv/lake/loans/2026-12-05.csv")]), POLICY).events
    assert (event.data.dataset_id, event.data.path) == ("loans", "loans/2026-12-05.csv")


def test_a_table_of_a_sql_source_and_the_facets_it_carries() -> None:
    facets = {
        "version": {"datasetVersion": "snapshot-42"},
        "lifecycleStateChange": {"lifecycleStateChange": "CREATE"},
    }
    dataset = output("analytics.public.loans", "postgres://db:5432", **facets)
    dataset["outputFacets"] = {"outputStatistics": {"rowCount": 500, "size": 1234}}
    (event,) = intake(run_event(outputs=[dataset]), POLICY).events
    data = event.data
    assert (data.source, data.table, data.path) == ("warehouse", "public.loans", None)
    assert (data.version, data.change_kind, data.row_count) == ("snapshot-42", ChangeKind.created, 500)


def test_a_folder_reads_as_dots_in_the_dataset_id_which_names_its_suite() -> None:
    (event,) = intake(run_event(outputs=[output("/srv/lake/daily/scores.csv")]), POLICY).events
    assert (event.data.dataset_id, event.data.path) == ("daily.scores.csv", "daily/scores.csv")
    got = intake(run_event(outputs=[output("/srv/lake/my scores.csv")]), POLICY)
    assert got.events == [] and "'my scores.csv' cannot be a dataset id" in got.reasons[0]


@pytest.mark.parametrize("place", ["inputFacets", "outputFacets", "facets"])
def test_data_quality_facets_are_kept_wherever_the_client_puts_them(place: str) -> None:
    dataset = output("/srv/lake/scores.csv")
    dataset.pop("facets")
    dataset[place] = {
        "dataQualityAssertions": {
            "assertions": [
                {"assertion": "not_null", "success": True, "column": "id"},
                {"assertion": "row_count_gt", "success": False},
            ]
        },
        "dataQualityMetrics": {"rowCount": 7, "columnMetrics": {"id": {"nullCount": 0}}},
    }
    got = intake(run_event(outputs=[dataset]), POLICY)
    (kept,) = got.outputs
    assert (kept["passed"], kept["failed"]) == (1, 1)
    assert kept["assertions"][0] == {"assertion": "not_null", "success": True, "column": "id"}
    assert kept["metrics"]["rowCount"] == 7 and got.events[0].data.row_count == 7


@pytest.mark.parametrize(
    ("dataset", "reason"),
    [
        (output("/elsewhere/x.csv"), "no openlineage.dataset_locations entry maps it"),
        (output("/srv/lake/x.csv", "s3://lake"), "no openlineage.dataset_locations entry maps it"),
        (output("/srv/lake/../../etc/passwd"), "names no file inside data source 'lake'"),
        (output("/srv/lake//etc/passwd"), "names no file inside data source 'lake'"),
        (output("analytics.public.", "postgres://db:5432"), "names no table inside data source 'warehouse'"),
    ],
    ids=["other folder", "other namespace", "dot-dot", "absolute rest", "no table"],
)
def test_an_output_no_location_maps_is_unmapped_with_its_reason(dataset: dict[str, Any], reason: str) -> None:
    got = intake(run_event(outputs=[dataset]), POLICY)
    assert got.outcome == "unmapped" and got.events == []
    assert reason in got.reasons[0] and reason in got.outputs[0]["reason"]


@pytest.mark.parametrize("event_type", ["START", "RUNNING", "OTHER", "FAIL", "ABORT"])
def test_other_transitions_are_recorded_and_never_checked(event_type: str) -> None:
    facets = {"errorMessage": {"message": "disk full", "programmingLanguage": "python"}}
    got = intake(run_event(event_type, run={"runId": RUN, "facets": facets}), POLICY)
    assert got.outcome == "recorded" and got.events == [] and got.reasons == []
    assert got.outputs[0]["name"] == "/srv/lake/scores.csv"
    if event_type in ("FAIL", "ABORT"):
        assert got.notes == [f"the run ended {event_type}: its outputs are not checked (disk full)"]


def test_an_output_listed_twice_is_one_change_and_a_run_without_outputs_none() -> None:
    twice = intake(run_event(outputs=[output("/srv/lake/a.csv"), output("/srv/lake/a.csv")]), POLICY)
    assert len(twice.events) == 1
    nothing = intake(run_event(outputs=[]), POLICY)
    assert nothing.outcome == "recorded" and nothing.events == []


@given(
    run=st.uuids(),
    names=st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=20), min_size=1, max_size=4),
)
def test_event_ids_are_one_per_run_and_dataset(run: uuid.UUID, names: list[str]) -> None:
    ids = {event_id(str(run), "file", name) for name in names}
    assert len(ids) == len(set(names))
    assert all(len(i) <= 256 and i.startswith(f"{run}:") for i in ids)
