"""The Jira fake's incident workflow: the incident statuses and a transition to each from every other."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.jira import JiraFake

DEFAULT_INCIDENT_STATUSES = {
    "triaged": "Triaged",
    "contained": "Contained",
    "reported-to-authority": "Reported to authority",
    "corrective-action": "Corrective action",
    "closed": "Closed",
}


def add_incident_workflow(jira: JiraFake, statuses: dict[str, str]) -> None:
    """The incident statuses, each reachable from every other by a transition named after it.

    That is what a Jira admin sets up with global transitions; Jira names a transition after its
    target status by default.
    """
    names = list({**DEFAULT_INCIDENT_STATUSES, **statuses}.values())
    for name in names:
        jira.add_status(name, "done" if name == names[-1] else "indeterminate")
    for target in names:
        for source in ["To Do", *names]:
            if source != target:
                jira.add_transition(source, target, target)
