"""Only authenticated people decide, and separation of duties reaches people (issue 20, points 3-4).

Outcomes on a real register (SQLite): the decisions recorded, accepted or refused with their
reasons, the events staged, and the tally. The first two tests are the attacks found on main.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from aims import login as os_login
from aims.cli import main
from connectors.register.store import Register
from flows.approvals.commands import DecideApproval
from flows.approvals.rules import authority, tally
from flows.commands import Actor, Context, Verdict, handle
from gateway.app import create_app
from gateway.desk import DecisionDesk
from schemas.payloads import ApprovalOutcome, Decision, DecisionChannel, RiskLevel
from schemas.policy import Policy
from schemas.policy_file import load_policy
from schemas.records import Approval, ApprovalDecision
from schemas.settings import AimsSettings
from tests.fakes.slack_signing import block_actions_payload, signed_interaction_request
from tests.gateway.desk import RecordingChat
from tests.people import AISHA, DEV, MARIA, SAM, TOM
from tests.resources import EXAMPLE_POLICY

TOPIC = "aims.events"
SLACK_SECRET = "who-decides-slack-secret"
NOW = datetime.now(UTC).replace(microsecond=0)


def request(approval_id: str, level: RiskLevel, submitted_by: str, policy: Policy) -> Approval:
    """A pending approval as request-approval records it for `level`, submitted by `submitted_by`."""
    rule = policy.approvals[level]
    return Approval(
        id=approval_id,
        subject=f"model-version:credit-scoring/{approval_id}",
        system="credit-scoring",
        requested_decision="go-live",
        risk_level=level,
        approver_group=",".join(rule.groups),
        quorum=rule.quorum,
        context={
            "groups": list(rule.groups),
            "distinct_groups": rule.distinct_groups,
            "separation_of_duties": rule.separation_of_duties,
            "submitted_by": submitted_by,
        },
        requested_by=submitted_by,
        requested_at=NOW - timedelta(hours=1),
        due_at=NOW + timedelta(hours=24),
    )


@pytest.fixture
def register(sqlite_register: Register) -> Register:
    return sqlite_register


def add(register: Register, approval: Approval) -> None:
    with register.unit_of_work("test") as uow:
        uow.approvals.add(approval)


def decisions(register: Register, approval_id: str) -> list[ApprovalDecision]:
    with register.reader() as uow:
        return uow.decisions.find(approval_id=approval_id, order_by="decided_at")


def outcome(register: Register, approval_id: str, policy: Policy) -> ApprovalOutcome | None:
    with register.reader() as uow:
        approval = uow.approvals.one(approval_id)
        accepted = uow.decisions.find(approval_id=approval_id, accepted=True, order_by="decided_at")
    return tally(authority(approval, policy), accepted).outcome


def staged(register: Register) -> int:
    with register.reader() as uow:
        return len(uow.outbox.find())


def from_the_form(approval_id: str, approver: str, step: int) -> DecideApproval:
    """What request-approval's `take_input` makes of the Prefect UI's resume form: a typed name."""
    return DecideApproval(
        actor=Actor(approver, DecisionChannel.prefect_ui),
        approval_id=approval_id,
        decision=Decision.approve,
        reason="looks fine",
        delivery=("run-1", f"decision-{step}", "ui"),
    )


# -- the attacks ------------------------------------------------------------------------------------


def test_the_resume_form_typed_with_two_approvers_addresses_approves_nothing(
    register: Register, policy: Policy
) -> None:
    """Critical: quorum 2 from compliance and executive. Two resumes of the waiting run, each with
    another approver's address typed in, must not make it approved."""
    add(register, request("approval-crit", RiskLevel.critical, DEV, policy))
    ctx = Context(register, policy, TOPIC)
    verdicts = [handle(from_the_form("approval-crit", who, i), ctx) for i, who in enumerate((MARIA, SAM))]
    assert [v.status for v in verdicts] == ["refused", "refused"]
    recorded = decisions(register, "approval-crit")
    assert [(d.decided_by, d.channel, d.accepted) for d in recorded] == [
        (MARIA, "prefect-ui", False),
        (SAM, "prefect-ui", False),
    ]
    assert all("Prefect UI's resume form cannot prove who is deciding" in (d.refusal or "") for d in recorded)
    assert outcome(register, "approval-crit", policy) is None
    assert staged(register) == 0  # nothing announced: the waiting run is not resumed by a refusal


def slack_click(http: TestClient, user_id: str, approval_id: str) -> str:
    payload = block_actions_payload(
        user_id=user_id,
        user_name="someone",
        channel_id="C1",
        message_ts="1.000001",
        action_id="approval.approve",
        value=approval_id,
        response_url="http://127.0.0.1:9/hook",
    )
    body, headers = signed_interaction_request(payload, SLACK_SECRET)
    answer: str = http.post("/slack/interactions", content=body, headers=headers).json()["status"]
    return answer


@pytest.fixture
def slack(register: Register, policy: Policy) -> Iterator[TestClient]:
    """The gateway: a signed Slack click by Tom (model-risk) is Tom's, as Slack's directory says."""
    chat = RecordingChat({TOM: "UTOMBE0001", AISHA: "UAISHA0001"})
    desk = DecisionDesk(register, lambda: policy, TOPIC, lambda keys: None, chat, None)
    settings = AimsSettings(slack_signing_secret=SLACK_SECRET)  # type: ignore[arg-type]
    with TestClient(create_app(settings, desk, time.time)) as http:
        yield http


def test_a_member_of_the_submitting_team_may_not_approve_by_a_signed_click(
    register: Register, policy: Policy, slack: TestClient
) -> None:
    """The model's owner is the team `model-risk` (an approver group, a team of the policy): Tom is
    in it, so his signed click must be refused; Aisha's would be too, for the same reason."""
    add(register, request("approval-team", RiskLevel.medium, "model-risk", policy))
    assert slack_click(slack, "UTOMBE0001", "approval-team") == "refused"
    [tom] = decisions(register, "approval-team")
    assert tom.decided_by == TOM and not tom.accepted
    assert "separation of duties" in (tom.refusal or "") and "model-risk" in (tom.refusal or "")
    assert outcome(register, "approval-team", policy) is None and staged(register) == 0


# -- the command line: the operator's OS login, mapped by the policy -------------------------------


def policy_file(tmp_path: Path, policy: Policy, **decisions: object) -> Path:
    """The example policy with other `decisions` settings, written where the CLI reads it."""
    data = policy.model_dump(mode="json")
    data["decisions"] |= decisions
    data["approvals"]["low"] = {"groups": ["model-risk"], "quorum": 1}
    data["slas"]["low"] = {"decision_hours": 24}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, register: Register) -> Path:
    for name in list(os.environ):
        if name.startswith(("AIMS_", "KAFKA_", "PREFECT_")):
            monkeypatch.delenv(name)
    # No stack runs in this state folder: nothing is sent, the outbox keeps what is staged.
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    return tmp_path


def decide_as(
    login: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> str:
    monkeypatch.setattr(os_login, "operator_login", lambda: login)
    code = main(["approvals", *argv])
    out, err = capsys.readouterr()
    return f"{code}:{out}{err}"


def test_the_cli_decides_only_as_a_person_its_login_maps_to(
    cli: Path,
    register: Register,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIMS_POLICY_FILE", str(policy_file(cli, policy, cli_any_login=False)))
    add(register, request("approval-cli", RiskLevel.high, DEV, policy))
    # Aisha's login (akhan) speaking for Tom: refused, and the login is on the record.
    as_tom = decide_as("akhan", monkeypatch, capsys, "approve", "approval-cli", "--by", TOM)
    assert as_tom.startswith("2:") and "OS login 'akhan' may not decide as tom.becker" in as_tom
    # Without --by, the one person the login maps to; with it, the same person in capitals.
    assert decide_as("akhan", monkeypatch, capsys, "approve", "approval-cli").startswith("0:")
    again = decide_as("akhan", monkeypatch, capsys, "approve", "approval-cli", "--by", AISHA.upper())
    assert again.startswith("0:") and "nothing changed" in again
    unknown = decide_as("root", monkeypatch, capsys, "approve", "approval-cli")
    assert unknown.startswith("2:") and "pass --by" in unknown
    recorded = decisions(register, "approval-cli")
    assert [(d.decided_by, d.credential, d.accepted, d.authenticated) for d in recorded] == [
        (TOM, "akhan", False, None),
        (AISHA, "akhan", True, True),
    ]
    assert outcome(register, "approval-cli", policy) is None  # 1 of 2


def test_the_demo_setting_lets_any_login_decide_marked_unauthenticated(
    cli: Path,
    register: Register,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert policy.decisions.cli_any_login  # the example policy, for `make demo`
    monkeypatch.setenv("AIMS_POLICY_FILE", str(EXAMPLE_POLICY))
    add(register, request("approval-demo", RiskLevel.medium, DEV, policy))
    done = decide_as("whoever", monkeypatch, capsys, "approve", "approval-demo", "--by", AISHA)
    assert done.startswith("0:")
    [aisha] = decisions(register, "approval-demo")
    assert (aisha.credential, aisha.accepted, aisha.authenticated) == ("whoever", True, False)
    with register.reader() as uow:
        [event] = [m.event for m in uow.outbox.find()]
    assert event["data"]["approver"] == AISHA and event["data"]["authenticated"] is False
    shown = decide_as("whoever", monkeypatch, capsys, "show", "approval-demo")
    assert f"{AISHA} via cli [whoever] UNAUTHENTICATED: approve" in shown


# -- the Prefect UI's form: low-risk only, where the policy allows it --------------------------------


def test_the_form_decides_low_risk_only_where_the_policy_allows_it_marked_unauthenticated(
    tmp_path: Path, register: Register, policy: Policy
) -> None:
    lenient = load_policy(policy_file(tmp_path, policy, prefect_ui="low-risk"))
    add(register, request("approval-low", RiskLevel.low, DEV, lenient))
    add(register, request("approval-medium", RiskLevel.medium, DEV, lenient))
    ctx = Context(register, lenient, TOPIC)
    low = handle(from_the_form("approval-low", AISHA, 0), ctx)
    medium = handle(from_the_form("approval-medium", AISHA, 0), ctx)
    assert low.accepted and medium.refused
    assert "allows it for low-risk approvals only" in medium.message
    [accepted] = decisions(register, "approval-low")
    assert (accepted.channel, accepted.credential, accepted.authenticated) == ("prefect-ui", None, False)
    assert outcome(register, "approval-low", lenient) is ApprovalOutcome.approved
    # Still checked like any decision: a name outside the groups is refused.
    outsider = handle(from_the_form("approval-low", MARIA, 1), ctx)
    assert outsider.refused and "not in approver group(s) model-risk" in outsider.message


# -- Jira: the signed account id, mapped by the policy -----------------------------------------------


def test_a_jira_account_the_policy_does_not_map_decides_nothing(register: Register, policy: Policy) -> None:
    add(register, request("approval-jira", RiskLevel.medium, DEV, policy))
    ctx = Context(register, policy, TOPIC)

    def moved_by(account: str) -> Verdict:
        return handle(
            DecideApproval(
                actor=Actor(AISHA, DecisionChannel.jira, account),
                approval_id="approval-jira",
                decision=Decision.approve,
                delivery=("jira", "MRC-1", account, "1"),
            ),
            ctx,
        )

    # A profile showing Aisha's address, on an account that is not hers: refused.
    stranger = moved_by("712020:someone-else")
    assert stranger.refused and "is not mapped to aisha.khan@northwind.example" in stranger.message
    assert moved_by(policy.people[AISHA].jira or "").accepted
    assert outcome(register, "approval-jira", policy) is ApprovalOutcome.approved
