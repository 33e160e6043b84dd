"""A check that fails or crashes still records its change (`record_unchecked`, Prefect's hook).

The whole path, from a router to a Failed run, is in tests/integration/test_data_quality_flow.py; here
the hook's own rules on a real register: a verdict already recorded is kept, a later run that gets
through replaces the unchecked record, and parameters that are not a change record nothing.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.flows.data_quality.bench import Bench, rows


@pytest.fixture
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return Bench(tmp_path_factory.mktemp("unchecked")).setup()


def change(dataset: str, version: str, named: dict[str, str]) -> Any:
    from schemas.events import DataChangedEvent

    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"change-{dataset}-{version}",
            "source": "urn:pipeline",
            "data": {"dataset_id": dataset, "version": version, "change_kind": "updated", **named},
        }
    )


def fail(bench: Bench, parameters: dict[str, Any], message: str = "boom") -> str:
    """The hook, as Prefect's engine calls it for a check that ended Failed; the run's id."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
    from prefect.states import Failed

    from flows.data_quality.check_data_quality import check_data_quality, record_unchecked

    run = FlowRun(flow_id=uuid4(), parameters=parameters)
    # The hook logs to the run's log in Prefect; no run, no server here: the logs stay local.
    with bench.runtime(), temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: False}):
        record_unchecked(check_data_quality, run, Failed(message=message))
    return str(run.id)


def version(bench: Bench, dataset: str, number: str) -> Any:
    with bench.runtime() as rt, rt.register.reader() as uow:
        return uow.dataset_versions.get(f"{dataset}@{number}")


def test_a_failed_check_records_its_change_received_with_the_run_and_the_reason(bench: Bench) -> None:
    event = change("loans", "1", bench.csv("loans.csv", rows()))
    run = fail(bench, {"event": event.model_dump(mode="json")}, "x" * 5000)
    recorded = version(bench, "loans", "1")
    assert recorded.status == "received"
    assert recorded.provenance["check_failed"] == {"flow_run": run, "state": "Failed", "error": "x" * 1000}
    assert recorded.provenance["event_key"] == event.dedup_key
    assert recorded.location == {"source": "lake", "path": "loans.csv"}


def test_a_run_that_fails_after_its_verdict_keeps_the_verdict(bench: Bench) -> None:
    """Publishing the Data Docs or sending the events may fail after the check was recorded."""
    named = bench.csv("loans.csv", rows())
    bench.check("loans", "1", named)
    before = version(bench, "loans", "1")
    fail(bench, {"event": change("loans", "1", named).model_dump(mode="json")})
    after = version(bench, "loans", "1")
    assert after == before and "check_failed" not in after.provenance


def test_a_later_run_of_the_change_that_gets_through_replaces_the_unchecked_record(bench: Bench) -> None:
    named = bench.csv("loans.csv", rows())
    event = change("loans", "1", named)
    fail(bench, {"event": event.model_dump(mode="json")})
    bench.check_event(event)
    recorded = version(bench, "loans", "1")
    assert recorded.status != "received" and "check_failed" not in recorded.provenance
    with bench.runtime() as rt, rt.register.reader() as uow:
        assert uow.data_quality.one("loans@1").verdict == "baseline"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parameters=st.dictionaries(st.sampled_from(["event", "other"]), json_values, max_size=2))
def test_parameters_that_are_not_a_change_record_nothing_and_do_not_raise(
    bench: Bench, parameters: dict[str, Any]
) -> None:
    with bench.runtime():
        pass  # the register's tables, before the first snapshot
    before = bench.snapshot()
    fail(bench, json.loads(json.dumps(parameters)))
    assert bench.snapshot() == before
