"""Fresh, stale, missing: each control judged by the policy's maximum age, and its periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.freshness.rules import (
    ORIGIN,
    Collection,
    ControlFreshness,
    Status,
    collections,
    judge,
    period_start,
)
from schemas.catalogue import load_catalogue
from schemas.evidence_policy import EvidenceFreshness

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POLICY = EvidenceFreshness(max_age_days={"default": 365, "A.7.4": 30})


def judged(
    evidence: dict[str, tuple[int, datetime | None]],
    now: datetime = NOW,
    excluded: frozenset[str] = frozenset(),
) -> dict[str, ControlFreshness]:
    return {c.id: c for c in judge(load_catalogue(), evidence, POLICY, excluded, now)}


def test_a_control_is_fresh_until_its_newest_evidence_crosses_its_age() -> None:
    checked = NOW - timedelta(days=29, hours=23)
    assert judged({"A.7.4": (3, checked)})["A.7.4"].status is Status.fresh
    later = judged({"A.7.4": (3, checked)}, now=NOW + timedelta(hours=1))["A.7.4"]
    assert later.status is Status.stale
    assert later.stale_at == checked + timedelta(days=30) and later.period_start == later.stale_at
    assert later.request_id == f"A.7.4@{later.stale_at:%Y-%m-%dT%H:%MZ}"


def test_without_evidence_a_control_is_missing_and_an_excluded_one_is_not_judged() -> None:
    rows = judged({}, excluded=frozenset({"A.10.4"}))
    assert rows["A.2.2"].status is Status.missing and rows["A.2.2"].period_start is not None
    assert rows["A.10.4"].status is Status.excluded and rows["A.10.4"].period_start is None
    assert len(rows) == 38


def test_the_policy_refuses_unknown_controls_and_ages_out_of_range() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        EvidenceFreshness(max_age_days={"A.99.1": 30, "A.7.4": 0}, owners={"A.1.1": "a@example.com"})
    text = str(info.value)
    assert "A.99.1 is not an Annex A control" in text and "0 days: give 1 to 3650" in text
    assert "A.1.1 is not an Annex A control" in text


@settings(max_examples=200, deadline=None)
@given(
    newest=st.one_of(st.none(), st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2030, 1, 1))),
    days=st.integers(min_value=1, max_value=3650),
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4000)),
)
def test_a_due_control_has_one_period_at_a_time(newest: datetime | None, days: int, later: timedelta) -> None:
    # Within one period every run finds the same request id (one collection, one ask); the next
    # period is a new one.
    age = timedelta(days=days)
    stale_at = newest.replace(tzinfo=UTC) + age if newest is not None else None
    now = (stale_at or ORIGIN) + later
    start = period_start(stale_at, age, now)
    assert start <= now < start + age
    assert period_start(stale_at, age, start + age - timedelta(seconds=1)) == start
    assert period_start(stale_at, age, start + age) == start + age


def test_what_collects_a_control_again() -> None:
    rows = judged({})
    assert collections(rows["A.7.4"]) == [Collection.recheck_datasets]
    assert collections(rows["A.5.2"]) == [Collection.reassess_systems, Collection.impact_reminders]
    assert collections(rows["A.2.3"]) == [Collection.ask_owner]  # nothing in the tool implements it
    assert collections(rows["A.8.3"]) == [Collection.ask_owner]  # only incidents give it evidence
