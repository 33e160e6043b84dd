"""Invalid policy files: every problem names the right field at the right line and column."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from aims.commands.iso import run_policy_check
from aims.errors import CliError
from schemas.policy import Policy
from schemas.policy_file import PolicyError, load_policy
from tests.aims.policy_samples import MINIMAL, edit, line_of, problems_of, review, write

# -- invalid policies: the right field at the right line ------------------------------------------

Case = tuple[Callable[[str], str], str, str, str]
CASES: dict[str, Case] = {
    # name: (break the minimal policy, expected field, a fragment of the line it points at, message)
    "incident responders name an unknown group": (
        lambda t: t + "  responders: [risk-office, legal]\n",
        "incidents.responders[1]",
        "responders: [risk-office, legal]",
        "no approver group 'legal'",
    ),
    "two incident stages share a Jira status": (
        lambda t: t + "  jira_statuses:\n    closed: Contained\n",
        "incidents.jira_statuses.closed",
        "closed: Contained",
        "is contained's status too",
    ),
    "serious_from is a severity": (
        lambda t: t + "  serious_from: grave\n",
        "incidents.serious_from",
        "serious_from: grave",
        "'low', 'medium', 'high' or 'critical'",
    ),
    "wrong type": (
        lambda t: edit(t, "quorum: 1", "quorum: many"),
        "approvals.high.quorum",
        "quorum: many",
        "valid integer",
    ),
    "YAML boolean is no number": (
        lambda t: edit(t, "quorum: 1", "quorum: yes"),
        "approvals.high.quorum",
        "quorum: yes",
        "valid integer",
    ),
    "unknown field": (
        lambda t: edit(t, "    quorum: 1\n", "    quorum: 1\n    quorom: 2\n"),
        "approvals.high.quorom",
        "quorom: 2",
        "unknown field; did you mean 'quorum'?",
    ),
    "unknown top-level field": (
        lambda t: t + "colour: blue\n",
        "colour",
        "colour: blue",
        "unknown field",
    ),
    "missing required field": (
        lambda t: edit(t, "    slack_channel: risk-office\n", ""),
        "approver_groups.risk-office.slack_channel",
        "  risk-office:",
        "Field required",
    ),
    "missing field in a list item": (
        lambda t: edit(t, "      role: Chair\n", ""),
        "management_review.attendees[0].role",
        "    - name: Ann",
        "Field required",
    ),
    "bad group reference": (
        lambda t: edit(t, "groups: [risk-office]", "groups: [risk-ofice]"),
        "approvals.high.groups[0]",
        "groups: [risk-ofice]",
        "no approver group 'risk-ofice'",
    ),
    "quorum above eligible approvers": (
        lambda t: edit(t, "quorum: 1", "quorum: 3"),
        "approvals.high.quorum",
        "quorum: 3",
        "only 2 distinct people may approve",
    ),
    "non-contiguous scale": (
        lambda t: edit(t, "    - score: 2\n      name: frequent", "    - score: 3\n      name: frequent"),
        "risk.likelihood[1].score",
        "- score: 3",
        "expected score 2",
    ),
    "repeated scale name": (
        lambda t: edit(t, "name: major", "name: Minor"),
        "risk.impact[1].name",
        "name: Minor",
        "used twice",
    ),
    "bands do not reach the top score": (
        lambda t: edit(t, "max_score: 4", "max_score: 3"),
        "risk.levels[1].max_score",
        "max_score: 3",
        "must reach 4",
    ),
    "level above appetite without a rule": (
        lambda t: edit(t, "approvals:\n  high:\n    groups: [risk-office]\n    quorum: 1\n", ""),
        "approvals",
        'version: "1"',
        "'high' is above the appetite",
    ),
    "escalation to nobody known": (
        lambda t: t.replace(
            "decision_hours: 48\n",
            "decision_hours: 48\n    escalation:\n      - after_hours: 8\n        notify: [cfo]\n",
        ),
        "slas.high.escalation[0].notify[0]",
        "notify: [cfo]",
        "neither an approver group nor an email",
    ),
    "invalid mapping key": (
        lambda t: edit(t, "approvals:\n  high:", "approvals:\n  severe:"),
        "approvals.severe",
        "  severe:",
        "invalid key: Input should be 'low', 'medium', 'high' or 'critical'",
    ),
    "control id format": (
        lambda t: t + "statement_of_applicability:\n  exclusions:\n    A.10: not used\n",
        'statement_of_applicability.exclusions["A.10"]',
        "A.10: not used",
        "invalid key",
    ),
    "an MLflow dataset location in no data source": (
        lambda t: t + "mlflow:\n  dataset_locations:\n    - {prefix: 's3://lake/', source: lake}\n",
        "mlflow.dataset_locations[0].source",
        "- {prefix: 's3://lake/', source: lake}",
        "no data source 'lake' in data_sources",
    ),
    "an MLflow approved alias that is no deployment alias": (
        lambda t: t + "mlflow:\n  write_back:\n    approved_alias: staging\n",
        "mlflow.write_back.approved_alias",
        "approved_alias: staging",
        "'staging' is not one of deployment_aliases (production, champion)",
    ),
    "an OpenLineage dataset location in no data source": (
        lambda t: (
            t + "openlineage:\n  dataset_locations:\n    - {namespace: file, prefix: /lake/, source: lake}\n"
        ),
        "openlineage.dataset_locations[0].source",
        "- {namespace: file, prefix: /lake/, source: lake}",
        "no data source 'lake' in data_sources",
    ),
    "Art. 73 special deadline above the general one": (
        lambda t: t + "regulatory:\n  art73:\n    general_days: 15\n    death_days: 20\n",
        "regulatory.art73.death_days",
        "death_days: 20",
        "must not exceed general_days (15)",
    ),
    "meeting day beyond the 28th": (
        lambda t: review(t, "  meeting:\n    day: 29\n"),
        "management_review.meeting.day",
        "day: 29",
        "less than or equal to 28",
    ),
    "meeting time out of range": (
        lambda t: review(t, '  meeting:\n    time: "25:00"\n'),
        "management_review.meeting.time",
        'time: "25:00"',
        "'25:00' is not a time of day: use 24-hour HH:MM",
    ),
    "meeting time unquoted": (
        lambda t: review(t, "  meeting:\n    time: 10:00\n"),
        "management_review.meeting.time",
        "time: 10:00",
        'YAML reads an unquoted 10:00 as the number 600: quote the time, e.g. "10:00"',
    ),
    "unknown meeting time zone": (
        lambda t: review(t, "  meeting:\n    timezone: Europe/Berlinn\n"),
        "management_review.meeting.timezone",
        "timezone: Europe/Berlinn",
        "unknown time zone 'Europe/Berlinn': use an IANA name such as 'Europe/Berlin'",
    ),
    "meeting time zone in the wrong case": (
        lambda t: review(t, "  meeting:\n    timezone: europe/berlin\n"),
        "management_review.meeting.timezone",
        "timezone: europe/berlin",
        "did you mean 'Europe/Berlin'?",
    ),
    "host time zone is not a zone": (
        lambda t: review(t, "  meeting:\n    timezone: localtime\n"),
        "management_review.meeting.timezone",
        "timezone: localtime",
        "unknown time zone 'localtime'",
    ),
    "lead time too long for the meeting day": (
        lambda t: review(t, "  lead_time_days: 29\n  meeting:\n    day: 1\n"),
        "management_review.lead_time_days",
        "lead_time_days: 29",
        "more than a month ahead: make lead_time_days at most 28, or move meeting.day to 2 or later",
    ),
    "lead time too long for any meeting day": (
        lambda t: review(t, "  cadence: annual\n  lead_time_days: 60\n  meeting:\n    day: 28\n"),
        "management_review.lead_time_days",
        "lead_time_days: 60",
        "make lead_time_days at most 55",
    ),
    "lead time as long as the cadence": (
        lambda t: review(t, "  cadence: monthly\n  lead_time_days: 28\n"),
        "management_review.lead_time_days",
        "lead_time_days: 28",
        "must be shorter than the monthly cadence",
    ),
    "first month beyond December": (
        lambda t: review(t, "  meeting:\n    first_month: 13\n"),
        "management_review.meeting.first_month",
        "first_month: 13",
        "less than or equal to 12",
    ),
    "meeting too short": (
        lambda t: review(t, "  meeting:\n    duration_minutes: 10\n"),
        "management_review.meeting.duration_minutes",
        "duration_minutes: 10",
        "greater than or equal to 15",
    ),
    "extraordinary review without notice": (
        lambda t: review(t, "  extraordinary:\n    notice_days: 0\n"),
        "management_review.extraordinary.notice_days",
        "notice_days: 0",
        "greater than or equal to 1",
    ),
    "review Jira project key": (
        lambda t: review(t, "  jira_project: aims\n"),
        "management_review.jira_project",
        "jira_project: aims",
        "should match pattern",
    ),
    "attendee listed twice": (
        lambda t: edit(
            t,
            "      role: Chair\n",
            "      role: Chair\n    - name: Ann B.\n      email: ANN@example.org\n      role: x\n",
        ),
        "management_review.attendees[1].email",
        "email: ANN@example.org",
        "'ANN@example.org' is listed twice",
    ),
    "duplicate key": (
        lambda t: t + "  jira_project: OPS\n",
        "incidents.jira_project",
        "jira_project: OPS",
        "duplicate key (first on line 41)",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_broken_policy_names_the_field_and_its_line(tmp_path: Path, name: str) -> None:
    breaker, field, needle, message = CASES[name]
    text = breaker(MINIMAL)
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.field, problem.line) == (field, line_of(text, needle)), problem
    assert message in problem.message
    assert str(problem).startswith(f"{tmp_path / 'policy.yaml'}:{problem.line}:{problem.column}: {field}: ")


def test_the_column_points_at_the_value(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, edit(MINIMAL, "quorum: 1", "quorum: 0")))
    assert (problem.line, problem.column) == (30, 13)
    assert str(problem).endswith(":30:13: approvals.high.quorum: Input should be greater than or equal to 1")


def test_every_problem_in_a_file_is_reported_in_file_order(tmp_path: Path) -> None:
    text = edit(MINIMAL, "quorum: 1", "quorum: 0")
    text = edit(text, 'version: "1"', "version: 1.5")
    text = edit(text, "    slack_channel: risk-office\n", "")
    text = edit(text, "  jira_project: INC", "  jira_project: inc")
    text += "  slack_channel: again\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.field, p.line) for p in problems] == [
        ("version", 1),
        ("approver_groups.risk-office.slack_channel", line_of(text, "  risk-office:")),
        ("approvals.high.quorum", line_of(text, "quorum: 0")),
        ("incidents.jira_project", line_of(text, "jira_project: inc")),
        ("incidents.slack_channel", line_of(text, "slack_channel: again")),
    ]
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path / "policy.yaml")
    assert str(raised.value).startswith(f"invalid policy {tmp_path / 'policy.yaml'} (5 problems):\n")
    assert isinstance(raised.value, CliError)  # the CLI exits 2 with the message


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("version: [1\norganisation: x\n", 2, 13, "expected ',' or ']'"),
        ("version: 1\n  organisation: x\n", 2, 15, "mapping values are not allowed"),
        ('version: "1\n', 2, 1, "found unexpected end of stream"),
        ("version: !!python/object:os.system x\n", 1, 10, "could not determine a constructor"),
        ("version: 2025-02-30\n", 1, 10, "invalid YAML value: day is out of range"),
        ("a: 1\n---\nb: 2\n", 2, 1, "expected a single document"),
        ("version: \x07\n", 1, 10, "YAML does not allow '\\x07'"),
    ],
)
def test_yaml_syntax_errors_have_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.column, problem.field) == (line, column, ""), problem
    assert message in problem.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the file is empty"),
        ("# only a comment\n\n", 1, "the file is empty"),
        ("- version: 1\n- organisation: x\n", 1, "at the top, found a list"),
        ("\n\njust text\n", 3, "at the top, found a single value"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, line: int, message: str) -> None:
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == line and message in problem.message


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, b'version: "1"\norganisation: caf\xe9\n'))
    assert (problem.line, problem.column) == (2, 18) and "not UTF-8" in problem.message


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file") as raised:
        load_policy(tmp_path / "absent.yaml")
    assert raised.value.problems[0].line is None


def test_recursive_aliases_are_reported_not_followed(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "version: &v [*v]\n"))
    assert any(p.field == "version" and p.line == 1 for p in problems)


def test_an_unquoted_hash_gets_a_hint(tmp_path: Path) -> None:
    [problem] = problems_of(
        write(tmp_path, edit(MINIMAL, "slack_channel: incidents", "slack_channel: #incidents"))
    )
    assert (problem.field, problem.line) == ("incidents.slack_channel", 40)
    assert "if it starts with '#', quote it" in problem.message
    quoted = edit(MINIMAL, "slack_channel: incidents", "slack_channel: '#incidents'")
    assert load_policy(write(tmp_path, quoted)).incidents.slack_channel == "incidents"


def test_keys_that_are_not_strings_are_located(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + "1: x\nnull: y\n"))
    assert [(p.line, p.column, p.message) for p in problems] == [
        (42, 1, "invalid key: Keys should be strings"),
        (43, 1, "invalid key: Keys should be strings"),
    ]


def test_check_prints_every_problem_and_fails(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, "quorum: 1", "quorum: 0") + "colour: blue\n")
    out = io.StringIO()
    assert run_policy_check(path, out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{path}:30:13: approvals.high.quorum:")
    assert lines[1].startswith(f"{path}:42:1: colour: unknown field")
    assert lines[2] == f"invalid: {path}: 2 problem(s); nothing of it applies"


def test_the_model_checks_cross_references_without_a_file() -> None:
    data = yaml.safe_load(MINIMAL)
    data["approvals"]["high"]["groups"] = ["risk-office", "ghosts"]
    with pytest.raises(ValidationError) as raised:
        Policy.model_validate(data)
    assert [e["loc"] for e in raised.value.errors()] == [("approvals", "high", "groups", 1)]
