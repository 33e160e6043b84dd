"""The one command path, pure parts: the handler table, the commands, the verdict's answers, the
Slack action table, the Jira issue kinds, and the gateway's modules (no cycle, none over 500 lines).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.approvals.commands import DecideApproval
from flows.approvals.messages import APPROVE_ACTION, REJECT_ACTION
from flows.commands import (
    HANDLERS,
    Actor,
    Command,
    Context,
    Verdict,
    attempt_key,
    chat_text,
    cli_text,
    handle,
    handles,
)
from flows.data_quality.commands import AcceptBaseline
from flows.incidents.commands import UpdateIncident
from flows.incidents.messages import SLACK_ACTIONS
from flows.incidents.rules import Update
from flows.reviews.commands import RecordReviewResults
from gateway.jira_dispatch import IssueKind, kind_by_labels
from gateway.payloads import BlockActions
from gateway.slack_actions import ACTIONS, clicked
from schemas.payloads import Decision, DecisionChannel, IncidentUpdateKind

REPO = Path(__file__).resolve().parents[2]
AISHA = Actor("aisha.khan@northwind.example", DecisionChannel.slack)


def every_command_class() -> set[type[Command]]:
    found: set[type[Command]] = set()
    todo = list(Command.__subclasses__())
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_command_has_one_row_in_the_handler_table() -> None:
    assert every_command_class() == {DecideApproval, UpdateIncident, RecordReviewResults, AcceptBaseline}
    assert set(HANDLERS) == every_command_class()


def test_a_command_has_one_handler_only() -> None:
    with pytest.raises(TypeError, match="DecideApproval has a handler already"):
        handles(DecideApproval)(lambda command, ctx: Verdict("ignored", ""))
    assert HANDLERS[DecideApproval].__name__ == "decide"


def test_a_command_without_a_row_is_an_error_not_a_silent_drop() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Unheard(Command):
        pass

    with pytest.raises(TypeError, match="no handler for Unheard"):
        handle(Unheard(actor=AISHA), Context(None, None, "t"))  # type: ignore[arg-type]


def test_commands_are_frozen_and_say_who_what_and_when() -> None:
    command = DecideApproval(actor=AISHA, approval_id="a-1", decision=Decision.approve)
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.approval_id = "a-2"  # type: ignore[misc]
    assert command.actor.label == "slack:aisha.khan@northwind.example"
    assert command.at.tzinfo is not None and command.refusal_id() is None
    assert command.describe() == "approve of a-1"  # the log names no free text
    attempt = command.attempt()
    assert (attempt.approver, attempt.channel, attempt.approval_id) == (AISHA.name, AISHA.channel, "a-1")


def test_a_delivery_names_the_same_refusal_as_the_old_paths_did() -> None:
    # Rows written before this change keep deduplicating their redeliveries.
    command = DecideApproval(
        actor=AISHA, approval_id="a-1", decision=Decision.reject, delivery=("slack", "a-1", "U1", "1.2")
    )
    assert command.refusal_id() == attempt_key("slack", "a-1", "U1", "1.2")
    assert command.refusal_id() is not None and command.refusal_id().startswith("refused-")  # type: ignore[union-attr]


def test_an_incident_update_and_its_command_say_the_same() -> None:
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    update = Update("inc-1", IncidentUpdateKind.report, "maria@x.example", "cli", at, "NCA-1")
    command = UpdateIncident.of(update)
    assert command.actor == Actor("maria@x.example", DecisionChannel.cli) and command.at == at
    assert command.update() == update


@pytest.mark.parametrize(
    ("verdict", "chat", "cli"),
    [
        (
            Verdict("accepted", "approval recorded", reply="your approval recorded"),
            "Recorded: your approval recorded.",
            ("a-1: approval recorded by tom", 0),
        ),
        (
            Verdict("accepted", "containment recorded", state="contained"),
            "Recorded: containment recorded.",
            ("a-1: containment recorded by tom (status: contained)", 0),
        ),
        (
            Verdict("duplicate", "already recorded"),
            "Already recorded; nothing changed.",
            ("a-1: already recorded; nothing changed", 0),
        ),
        (
            Verdict.refusal("tom is not an incident responder", logged=True),
            "Not recorded: tom is not an incident responder.",
            ("refused: tom is not an incident responder; the attempt is logged", 2),
        ),
        (
            Verdict.refusal("there is no approval 'x'"),
            "Not recorded: there is no approval 'x'.",
            ("refused: there is no approval 'x'", 2),
        ),
    ],
)
def test_one_verdict_answers_every_channel(verdict: Verdict, chat: str, cli: tuple[str, int]) -> None:
    assert chat_text(verdict) == chat
    assert cli_text(verdict, "a-1", "tom") == cli
    assert verdict.refused == bool(verdict.reasons)


def test_the_slack_action_table_has_one_row_per_button() -> None:
    assert set(ACTIONS) == {APPROVE_ACTION, REJECT_ACTION, *SLACK_ACTIONS}
    payload = BlockActions.model_validate(
        {
            "type": "block_actions",
            "user": {"id": "U1"},
            "actions": [
                {"action_id": APPROVE_ACTION, "value": "a-1", "action_ts": "1"},
                {"action_id": "incident.contain", "value": "inc-1", "action_ts": "1"},
            ],
        }
    )
    found = clicked(payload)
    assert found is not None and found[0].action_id == "incident.contain"  # incident buttons first
    assert clicked(payload.model_copy(update={"type": "view_submission"})) is None
    assert clicked(payload.model_copy(update={"actions": []})) is None


@pytest.mark.parametrize(
    ("labels", "kind"),
    [
        ({"aims-a-1", "aims"}, IssueKind.approval),
        ({"aims-incident-0123", "aims-incident", "not-in-inventory"}, IssueKind.incident),
        ({"aims-review-0123", "aims-review"}, IssueKind.review),
        (set(), None),
        ({"team-x"}, None),
        ({"aims", "aims-review"}, None),  # contradictory: the register decides
    ],
)
def test_an_issue_is_known_by_its_label(labels: set[str], kind: IssueKind | None) -> None:
    assert kind_by_labels(frozenset(labels)) is kind


def test_the_gateway_modules_have_no_cycle_and_none_is_over_500_lines() -> None:
    for module in sorted((REPO / "gateway").glob("*.py")):
        assert len(module.read_text().splitlines()) <= 500, module.name
    code = (
        "import json, sys\n"
        "import gateway.slack_socket, gateway.desk, flows.commands\n"
        "tops = ('gateway', 'flows', 'prefect', 'kafka')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in tops)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    # Socket Mode and the desk stand without the app (no cycle); the command path without Prefect or Kafka.
    assert "gateway.app" not in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("prefect", "kafka")}
    app = (REPO / "gateway" / "app.py").read_text()
    assert "slack_socket" in app and "gateway.app" not in (REPO / "gateway" / "slack_socket.py").read_text()
