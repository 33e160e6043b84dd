"""The bundle gathered from a seeded register: every control's section, counts equal to the
register's, and a bundle for a period holds nothing from outside it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from connectors.register.store import Register
from flows.evidence_bundle.archive import bundle_files
from flows.evidence_bundle.gather import Scope
from schemas.catalogue import load_catalogue
from tests.flows.evidence_bundle.seeding import bundle_of, seeded
from tests.flows.reviews.seeding import NOW, START


@pytest.fixture(params=[1, 2, 3])
def register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    reg = seeded(tmp_path, random.Random(request.param))
    yield reg
    reg.close()


def count(register: Register, sql: str) -> int:
    with register.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def evidence_rows(register: Register) -> list[tuple[str, str, list[str], datetime]]:
    with register.engine.connect() as conn:
        rows = conn.execute(text("SELECT event_key, flow, controls, recorded_at FROM evidence")).all()
    return [(key, flow, json.loads(controls), datetime.fromisoformat(at)) for key, flow, controls, at in rows]


def test_every_control_has_its_section_and_the_counts_are_the_registers(register: Register) -> None:
    bundle, report = bundle_of(register, Scope())
    catalogue = load_catalogue()
    assert [c["id"] for c in bundle.controls] == [c.id for c in catalogue.controls]
    index = bundle_files(bundle)["index.html"].decode()
    rows = evidence_rows(register)
    for control in bundle.controls:
        assert f'<section class="control" id="control-{control["id"]}">' in index
        names = {impl.name for impl in catalogue.implementations_for(control["id"])}
        expected = {f"{k}|{f}" for k, f, ids, _ in rows if f in names or control["id"] in ids}
        assert set(control["evidence"]) == expected and control["evidence_count"] == len(expected)
        for impl in control["implemented_by"]:
            if impl["name"] == "audit_log":  # every write, as `aims controls` counts it
                assert impl["count"] == count(register, "SELECT count(*) FROM audit_log"), impl
            elif impl["kind"] == "record":
                inserts = count(
                    register,
                    f"SELECT count(*) FROM audit_log WHERE action='insert' AND entity='{impl['name']}'",
                )
                assert impl["count"] == inserts, impl
    assert len(bundle.sections["evidence"]) == len(rows)
    assert len(bundle.sections["data-quality"]) == count(register, "SELECT count(*) FROM data_quality_result")
    assert len(bundle.sections["risks"]) == count(register, "SELECT count(*) FROM risk_version")
    assert len(bundle.sections["approvals"]) == count(register, "SELECT count(*) FROM approval")
    decisions = sum(len(a["decisions"]) for a in bundle.sections["approvals"])
    assert decisions == count(register, "SELECT count(*) FROM approval_decision")
    refused = sum(a["refused"] for a in bundle.sections["approvals"])
    assert refused == count(register, "SELECT count(*) FROM approval_decision WHERE NOT accepted")
    assert len(bundle.sections["incidents"]) == count(register, "SELECT count(*) FROM incident")
    updates = sum(len(i["updates"]) for i in bundle.sections["incidents"])
    assert updates == count(register, "SELECT count(*) FROM incident_update")
    assert len(bundle.sections["reviews"]) == count(register, "SELECT count(*) FROM management_review")
    assert bundle.audit["head"]["seq"] == report.head_seq == count(register, "SELECT max(seq) FROM audit_log")
    assert bundle.audit["intact"] is True
    # Evidence records cover the period from their collection until they are valid.
    for item in bundle.sections["evidence"]:
        assert item["period_covered"]["from"] == item["collected_at"] == item["at"]


def times(value: Any, path: str = "") -> Iterator[tuple[str, datetime]]:
    """Every date-time written in a section's JSON, with where it is."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from times(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            yield from times(inner, f"{path}[{n}]")
    elif isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            yield path, datetime.fromisoformat(value)
        except ValueError:
            return


def test_a_bundle_for_a_period_holds_nothing_from_outside_it(register: Register) -> None:
    first, last = (START + timedelta(days=20)).date(), (NOW - timedelta(days=20)).date()
    scope = Scope.of_days(first, last)
    bundle, _ = bundle_of(register, scope)
    assert scope.start is not None and scope.end is not None
    inside = {
        f"{k}|{f}" for k, f, _, at in evidence_rows(register) if scope.start <= at.astimezone() < scope.end
    }
    assert {item["id"] for item in bundle.sections["evidence"]} == inside
    for name, items in bundle.sections.items():
        for item in items:
            assert item["at"] is not None and datetime.fromisoformat(item["at"]) in scope, (name, item["at"])
            for where, moment in times(item, name):
                # Other times are what an in-period record states about the past (when the incident
                # occurred, the period a review covered) or the deadlines it set (its Art. 73 clock).
                if where.endswith((".occurred_at", ".period_start", ".started_at")):
                    assert moment < scope.end, where
                    continue
                if where.endswith((".due_at", ".reporting_due_at", ".meeting_at", ".period_covered.to")):
                    assert moment >= scope.start, where
                    continue
                assert moment in scope, (where, moment)
    for control in bundle.controls:
        assert set(control["evidence"]) <= inside
        for impl in control["implemented_by"]:
            assert impl["last_at"] is None or datetime.fromisoformat(impl["last_at"]) in scope


def test_controls_narrow_the_bundle_to_their_sections(register: Register) -> None:
    bundle, _ = bundle_of(register, Scope(controls=("A.8.4", "A.7.4")))
    assert [c["id"] for c in bundle.controls] == ["A.7.4", "A.8.4"]
    assert len(bundle.sections["incidents"]) == count(register, "SELECT count(*) FROM incident")
    assert len(bundle.sections["data-quality"]) == count(register, "SELECT count(*) FROM data_quality_result")
    assert bundle.sections["approvals"] == [] and bundle.sections["risks"] == []


def test_over_all_time_the_evidence_per_control_is_what_aims_controls_counts(register: Register) -> None:
    from aims.coverage import evidence_by_id

    bundle, _ = bundle_of(register, Scope())
    with register.reader() as uow:
        expected = evidence_by_id(uow, load_catalogue())
    for control, (n, last) in bundle.evidence_stats().items():
        stat = expected.get(control)
        assert n == (stat.count if stat else 0), control
        assert last == (stat.last_at if stat else None), control


def test_data_docs_and_review_packs_travel_in_the_bundle(register: Register, tmp_path: Path) -> None:
    from connectors.great_expectations.data_docs import path_safe
    from flows.evidence_bundle.archive import bundle_files
    from flows.evidence_bundle.gather import gather
    from schemas.file_names import id_path
    from tests.flows.evidence_bundle.seeding import HOSTILE

    with register.reader() as uow:
        version = uow.dataset_versions.find()[0]
    docs_root = tmp_path / "data-docs"
    site = id_path(docs_root, version.dataset)
    page = site / "validations" / "suite" / path_safe(version.version) / "result.html"
    page.parent.mkdir(parents=True)
    (site / "index.html").write_text("<p>site</p>", encoding="utf-8")
    page.write_text("<p>result</p>", encoding="utf-8")
    pack = tmp_path / "reviews" / "scheduled_previous+x" / "pack.html"
    pack.parent.mkdir(parents=True)
    pack.write_text("<p>pack</p>", encoding="utf-8")
    with register.unit_of_work("test") as uow:
        uow.reviews.update("scheduled:previous", files={"html": str(pack), "markdown": HOSTILE})
    with register.reader() as uow:
        bundle = gather(
            uow,
            load_catalogue(),
            Scope(),
            now=NOW,
            organisation="N",
            audit={"anchor_text": "1:x"},
            docs_root=docs_root,
        )
    inside = f"data-docs/{site.name}"
    assert bundle.attachments[f"{inside}/index.html"] == site / "index.html"
    linked = [i for i in bundle.sections["data-quality"] if i["result"]["dataset_version_id"] == version.id]
    assert linked and all(
        i["data_docs"] == f"{inside}/validations/suite/{page.parent.name}/result.html" for i in linked
    )
    review = next(i for i in bundle.sections["reviews"] if i["review"]["id"] == "scheduled:previous")
    assert review["files"] == {
        "html": "reviews/scheduled_previous+x/pack.html"
    }  # a path that is no file is left out
    assert bundle.attachments["reviews/scheduled_previous+x/pack.html"] == pack
    del bundle.audit["anchor_text"]
    bundle.audit.update(
        head={"seq": 1, "hash": "x", "keyed_from": 1},
        anchor_text="1:x",
        entries=1,
        intact=True,
        problem=None,
        anchors_checked=0,
        anchors=[],
        anchors_note="",
    )
    files = bundle_files(bundle)
    assert files["reviews/scheduled_previous+x/pack.html"] == b"<p>pack</p>"
    assert f'href="{inside}/validations/suite/' in files["index.html"].decode()
