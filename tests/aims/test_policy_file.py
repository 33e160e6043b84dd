"""The policy file: the shipped example, the matrix, and properties: only located problems, never a crash."""

from __future__ import annotations

import copy
import io
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from aims.commands.iso import run_policy_check
from schemas.policy import RiskLevel
from schemas.policy_file import PolicyError, check_policy, load_policy
from tests.aims.policy_samples import DUMPER, EXAMPLE, MINIMAL, PROPERTY, edit, review, write

# -- valid policies -------------------------------------------------------------------------------


def test_the_shipped_example_validates() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.organisation == "Northwind Lending Ltd."
    assert (policy.regulatory.art73.general_days, policy.regulatory.art73.death_days) == (15, 10)
    assert policy.regulatory.art73.widespread_days == 2
    assert policy.levels_needing_approval() == [RiskLevel.medium, RiskLevel.high, RiskLevel.critical]
    assert policy.approvals[RiskLevel.critical].distinct_groups
    out = io.StringIO()
    assert run_policy_check(EXAMPLE, out) == 0
    assert out.getvalue().startswith(f"ok: {EXAMPLE} (policy version 2025.3, 3 approver groups")


def test_minimal_policy_validates_with_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, MINIMAL))
    assert policy.risk.appetite is RiskLevel.low
    assert policy.data_quality.psi_warning < policy.data_quality.psi_critical
    assert policy.regulatory.art73.reminders == (0.5, 0.8)
    assert policy.approvals[RiskLevel.high].separation_of_duties
    with pytest.raises(ValidationError):
        policy.version = "2"  # type: ignore[misc]


def test_management_review_defaults_and_the_example(tmp_path: Path) -> None:
    minimal = load_policy(write(tmp_path, MINIMAL)).management_review
    meeting = minimal.meeting
    assert (meeting.day, meeting.time, meeting.timezone, meeting.duration_minutes, meeting.first_month) == (
        15,
        "10:00",
        "UTC",
        120,
        1,
    )
    assert (minimal.jira_project, minimal.extraordinary.notice_days) == (None, 7)
    example = load_policy(EXAMPLE).management_review
    assert (example.cadence, example.lead_time_days, example.meeting.timezone) == (
        "quarterly",
        14,
        "Europe/London",
    )
    assert str(example.meeting.clock) == "10:00:00"
    text = review(MINIMAL, "  lead_time_days: 28\n  jira_project: AIMS\n  meeting:\n    day: 1\n")
    settings = load_policy(write(tmp_path, text)).management_review
    assert (settings.lead_time_days, settings.meeting.day, settings.jira_project) == (28, 1, "AIMS")


def test_level_for_is_monotone_over_the_whole_matrix() -> None:
    policy = load_policy(EXAMPLE)
    n_l, n_i = len(policy.risk.likelihood), len(policy.risk.impact)
    rank = {(lk, im): policy.level_for(lk, im).rank for lk in range(1, n_l + 1) for im in range(1, n_i + 1)}
    for (lk, im), r in rank.items():
        assert r <= rank.get((lk + 1, im), r) and r <= rank.get((lk, im + 1), r)
    assert policy.level_for(1, 1) is RiskLevel.low
    assert policy.level_for(n_l, n_i) is RiskLevel.critical
    assert policy.level_for(3, 3) is RiskLevel.medium  # 9: the top of the medium band


@pytest.mark.parametrize(
    ("likelihood", "impact", "word"), [(0, 1, "likelihood"), (6, 1, "likelihood"), (1, 9, "impact")]
)
def test_level_for_refuses_scores_off_the_scales(likelihood: int, impact: int, word: str) -> None:
    with pytest.raises(
        ValueError, match=rf"{word} {likelihood if word == 'likelihood' else impact} is outside"
    ):
        load_policy(EXAMPLE).level_for(likelihood, impact)


def test_risk_level_ranks_in_severity_order_not_alphabetically() -> None:
    assert [level.rank for level in RiskLevel] == [0, 1, 2, 3]
    assert RiskLevel.high.rank < RiskLevel.critical.rank


def test_anchors_and_merge_keys_are_allowed(tmp_path: Path) -> None:
    text = edit(MINIMAL, "  high:\n    decision_hours: 48\n", "  high: &sla\n    decision_hours: 48\n")
    text = edit(
        text, "approvals:\n", "approvals:\n  critical:\n    <<: {groups: [risk-office]}\n    quorum: 2\n"
    )
    policy = load_policy(write(tmp_path, text))
    assert policy.approvals[RiskLevel.critical].quorum == 2


# -- properties: nothing but problems, always inside the file -------------------------------------

EXAMPLE_DATA = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=6), scalars, max_size=3),
)


def assert_located(path: Path, text: str) -> None:
    # YAML also breaks lines at \r, \x85, \u2028 and \u2029: splitlines() counts those and a few more.
    text_lines = len(text.splitlines()) + 1
    policy, problems = check_policy(path)
    assert (policy is None) == bool(problems)
    for problem in problems:
        assert problem.message
        if problem.line is not None:
            assert 1 <= problem.line <= text_lines, problem
            assert problem.column is not None and problem.column >= 1


@PROPERTY
@given(data=st.data())
def test_mutations_of_the_example_only_ever_yield_located_problems(data: st.DataObject) -> None:
    doc = copy.deepcopy(EXAMPLE_DATA)
    parent: Any = None
    key: Any = None
    node: Any = doc
    while isinstance(node, dict | list) and node and data.draw(st.booleans(), label="deeper"):
        parent = node
        key = data.draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        node = node[key]
    action = data.draw(st.sampled_from(["delete", "replace", "insert"]))
    if action == "insert" and isinstance(node, dict):
        node[data.draw(st.text(min_size=1, max_size=12), label="new key")] = data.draw(values)
    elif action == "delete" and parent is not None:
        del parent[key]
    elif parent is not None:
        parent[key] = data.draw(values.filter(lambda v: type(v) is not type(node)), label="value")
    text = yaml.dump(doc, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), text)
        assert_located(path, text)


yaml_ish = st.text(
    alphabet=st.sampled_from([*"ab1 :-[]{},#&*!|>'\"\n\t?%@`.\\", "\u00e9", "\x00"]), max_size=200
)


@PROPERTY
@given(
    raw=st.one_of(
        st.binary(max_size=300), st.text(max_size=300), yaml_ish, yaml_ish.map(lambda t: MINIMAL + t)
    )
)
def test_arbitrary_input_never_crashes_the_loader(raw: str | bytes) -> None:
    blob = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), blob)
        try:
            load_policy(path)
        except PolicyError as exc:
            assert exc.problems
        assert_located(path, blob.decode("utf-8", errors="replace"))
