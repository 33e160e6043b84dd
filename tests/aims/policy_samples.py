"""Shared by the policy file tests: a minimal valid policy, writing and editing it, reading its problems."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, settings

from schemas.policy_file import PolicyProblem, check_policy
from tests.resources import EXAMPLE_POLICY

EXAMPLE = EXAMPLE_POLICY
PROPERTY = settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# A small valid policy: each test below breaks one thing in it.
MINIMAL = """\
version: "1"
organisation: Example Org
risk:
  likelihood:
    - score: 1
      name: rare
      description: Rare.
    - score: 2
      name: frequent
      description: Frequent.
  impact:
    - score: 1
      name: minor
      description: Small.
    - score: 2
      name: major
      description: Large.
  levels:
    - level: low
      max_score: 1
    - level: high
      max_score: 4
approver_groups:
  risk-office:
    members: [ann@example.org, bob@example.org]
    slack_channel: risk-office
approvals:
  high:
    groups: [risk-office]
    quorum: 1
slas:
  high:
    decision_hours: 48
management_review:
  attendees:
    - name: Ann
      email: ann@example.org
      role: Chair
incidents:
  slack_channel: incidents
  jira_project: INC
"""


def write(tmp_path: Path, text: str | bytes, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the line holding the nth occurrence of `needle`."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return lines[nth - 1]


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def review(text: str, settings: str) -> str:
    """`text` with `settings` (indented lines) added at the top of the management_review section."""
    return edit(text, "management_review:\n", "management_review:\n" + settings)


def problems_of(path: Path) -> list[PolicyProblem]:
    policy, problems = check_policy(path)
    assert policy is None and problems
    return problems
