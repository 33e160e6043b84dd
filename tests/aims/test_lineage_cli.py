"""`aims lineage`: the OpenLineage run events the gateway recorded, unmapped outputs with why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.openlineage_desk import OpenLineageDesk
from schemas.openlineage import RunEvent
from tests.aims.runner import isolate, run
from tests.lineage import ASSERTIONS, RUN, event_body, lineage_policy, output
from tests.resources import migrated_register


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    register = migrated_register(tmp_path)
    desk = OpenLineageDesk(register, lineage_policy, "aims.events", lambda keys: None)
    mapped = {**output("/srv/lake/loans/2026-12-05.csv"), "outputFacets": ASSERTIONS}
    for body in (
        event_body("START"),
        event_body(outputs=[mapped, output("/elsewhere/side.csv")]),
        event_body(run={"runId": RUN.replace("0190", "0191")}, outputs=[output("/elsewhere/x.csv")]),
    ):
        assert desk(RunEvent.model_validate(body)).status == 200
    register.close()
    isolate(tmp_path, monkeypatch)
    return tmp_path


def test_lineage_lists_runs_with_their_outputs_and_the_unmapped_with_why(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = run(capsys, "lineage")
    assert listed.code == 0, listed.err
    assert "loans@" in listed.out and "1 failed" in listed.out and "START" in listed.out
    unmapped = run(capsys, "lineage", "--outcome", "unmapped")
    assert "/elsewhere/x.csv" in unmapped.out and "no openlineage.dataset_locations" in unmapped.out
    assert "loans@" not in unmapped.out
    rows = json.loads(run(capsys, "lineage", "list", "--event", "COMPLETE", "--json").out)
    assert sorted(r["outcome"] for r in rows) == ["data-changed", "unmapped"]
    assert "no OpenLineage events like that" in run(capsys, "lineage", "--event", "FAIL").out


def test_an_empty_register_says_where_events_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated_register(tmp_path).close()
    isolate(tmp_path, monkeypatch)
    assert "/api/v1/lineage" in run(capsys, "lineage").out
