"""Human approvals end to end: the real broker, the real Prefect server and worker, the gateway as
its own process, and the Slack and Jira fakes on loopback (started with the session stack).

Each test asks for an approval with an approval-requested event on the default events topic; this
module's router routes that topic from its end. The request-approval run posts to Slack and Jira
and suspends; decisions come in as a signed Slack click, a Jira transition (its webhook), the CLI or
the Prefect API the UI uses (which proves nobody and is refused), and the router resumes the run.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from flows.approvals.messages import jira_label
from tests.integration.approvals.steps import (
    DECISION_SUBMITTED,
    approval,
    click,
    decision_events,
    decisions,
    has_buttons,
    jira_issue,
    request,
    request_message,
    run_of,
    wait_state,
)
from tests.people import AISHA, JON, MARIA, SAM, TOM
from tests.support import SessionStack, jira, poll, slack


def test_approve_in_slack_resumes_the_run_and_leaves_the_evidence(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    approval_id = request(stack, "medium")
    run_id = wait_state(stack, approval_id, {"Suspended"})
    message = request_message(stack, approval_id)
    assert has_buttons(message)
    key = jira_issue(stack, approval_id)
    assert key.startswith("MRC-") and jira(stack).status(key) == "To Do"

    # A double click: two signed posts of the same button.
    first = click(stack, gateway, message, AISHA, "approve", "Bias audit done")
    second = click(stack, gateway, message, AISHA, "approve", "Bias audit done")
    assert first.status_code == 200 and second.status_code == 200
    assert {first.json()["status"], second.json()["status"]} == {"accepted", "duplicate"}

    assert wait_state(stack, approval_id, {"Completed"}) == run_id
    done = approval(stack, approval_id)
    assert done.status == "approved" and done.decided_at is not None
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert [(d.decided_by, d.channel, d.decision, d.reason) for d in accepted] == [
        (AISHA, "slack", "approve", "Bias audit done")
    ]
    updated = slack(stack).message(message["channel"], message["ts"])
    assert not has_buttons(updated) and "Approved" in json.dumps(updated["blocks"])
    assert jira(stack).status(key) == "Approved"
    assert any("Approved by" in c for c in jira(stack).comments(key))
    events = decision_events(stack, approval_id, 3)  # requested, submitted, decided
    types = [e["type"] for e in events]
    assert types.count(DECISION_SUBMITTED) == 1
    decided = [e for e in events if e["type"] == "org.aims.approval.decided"]
    assert len(decided) == 1 and decided[0]["data"]["approved"] is True
    with stack.register().reader() as uow:
        audited = uow.audit_entries("approval_decision", accepted[0].id)
    assert audited and audited[0].actor == f"slack:{AISHA}"
    # The run re-executed on resume; nothing was posted or filed a second time.
    posts = [
        m for m in slack(stack).messages if approval_id in json.dumps(m) and m["via"] == "chat.postMessage"
    ]
    assert len(posts) == 1
    created = [r for r in jira(stack).requests if r.method == "POST" and r.path.endswith("/issue")]
    # Found by its hashed label (the id itself is escaped in the description).
    assert sum(jira_label(approval_id) in json.dumps(r.json) for r in created) == 1
    # The clicker was answered privately.
    answers = [p for p in slack(stack).response_posts if p.message_ts == message["ts"]]
    assert any("Recorded" in p.body["text"] for p in answers)
    assert any("Already recorded" in p.body["text"] for p in answers)


def test_reject_with_a_jira_transition_is_recorded_once(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    from jira import JIRA

    approval_id = request(stack, "high")
    wait_state(stack, approval_id, {"Suspended"})
    key = jira_issue(stack, approval_id)
    client = JIRA(server=jira(stack).url, basic_auth=(MARIA, stack.jira_tokens[MARIA]), max_retries=0)
    client.transition_issue(key, "Reject", comment="No fairness evaluation on the new segment")
    jira(stack).wait_deliveries(1)
    wait_state(stack, approval_id, {"Completed"})
    # Jira retries deliveries: a redelivered webhook changes nothing.
    # `redeliver` returns once the gateway answered; the exact count (the session's fake keeps every
    # test's deliveries) shows nothing else was sent.
    before = len(jira(stack).deliveries)
    assert jira(stack).redeliver().status == 200
    assert len(jira(stack).wait_deliveries(before + 1)) == before + 1
    done = approval(stack, approval_id)
    assert done.status == "rejected"
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert [(d.decided_by, d.channel, d.decision) for d in accepted] == [(MARIA, "jira", "reject")]
    assert accepted[0].reason == "No fairness evaluation on the new segment"
    assert jira(stack).status(key) == "Rejected"
    message = request_message(stack, approval_id)
    assert not has_buttons(slack(stack).message(message["channel"], message["ts"]))
    events = decision_events(stack, approval_id, 3)  # requested, submitted, decided
    decided = [e for e in events if e["type"] == "org.aims.approval.decided"]
    assert decided[0]["data"]["outcome"] == "rejected" and decided[0]["data"]["approved"] is False


def test_quorum_of_two_from_the_cli_and_slack_while_the_prefect_ui_form_decides_nothing(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    from prefect.client.orchestration import get_client

    approval_id = request(stack, "high")
    run_id = wait_state(stack, approval_id, {"Suspended"})
    # The session's policy maps the OS login running the tests to its people (tests.people.prove_people).
    cli = stack.aims("approvals", "approve", approval_id, "--by", AISHA, "--reason", "Model card reviewed")
    assert cli.returncode == 0, cli.stderr
    assert "approval recorded" in cli.stdout and "sent" in cli.stdout
    # One of two: the run resumes, shows the progress and waits again.
    message = request_message(stack, approval_id)
    poll(
        lambda: "1 of 2 approvals" in json.dumps(slack(stack).message(message["channel"], message["ts"])),
        90,
        "the Slack message to show 1 of 2",
    )
    wait_state(stack, approval_id, {"Suspended"})
    assert approval(stack, approval_id).status == "pending"
    # The Prefect UI resumes through the API with the form's input, which proves nobody: the attempt
    # is recorded as refused and the run waits again. The session's SQLite server may answer 503
    # "database is locked" under load, and this client does not retry: the user would.
    from prefect.exceptions import PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        for attempt in range(5):
            try:
                client.resume_flow_run(
                    uuid.UUID(run_id),
                    run_input={"approver": MARIA, "decision": "approve", "reason": "Compliance ok"},
                )
                break
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 503 or attempt == 4:
                    raise
                time.sleep(1)
    form = poll(
        lambda: [d for d in decisions(stack, approval_id) if d.channel == "prefect-ui"],
        90,
        "the form's attempt to be recorded",
    )
    assert [(d.decided_by, d.accepted) for d in form] == [(MARIA, False)]
    assert "Prefect UI's resume form cannot prove who is deciding" in (form[0].refusal or "")
    assert wait_state(stack, approval_id, {"Suspended"}) == run_id
    assert approval(stack, approval_id).status == "pending"
    # Maria decides where she is proven: a signed click in her group's channel.
    compliance = request_message(stack, approval_id, channel="compliance-approvals")
    assert click(stack, gateway, compliance, MARIA, "approve", "Compliance ok").json()["status"] == "accepted"
    assert wait_state(stack, approval_id, {"Completed"}) == run_id
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert sorted((d.decided_by, d.channel, d.authenticated) for d in accepted) == [
        (AISHA, "cli", True),
        (MARIA, "slack", True),
    ]
    assert approval(stack, approval_id).status == "approved"
    # Deciding again from the CLI is a duplicate, not a second decision.
    again = stack.aims("approvals", "approve", approval_id, "--by", AISHA)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    shown = stack.aims("approvals", "show", approval_id)
    assert "prefect-ui" in shown.stdout and "REFUSED" in shown.stdout and "cli" in shown.stdout


def test_critical_needs_two_approvers_from_different_groups(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    """Critical: quorum 2 with distinct groups (compliance and executive); two compliance
    approvals are not enough, an executive's completes it."""
    approval_id = request(stack, "critical")
    wait_state(stack, approval_id, {"Suspended"})
    compliance = request_message(stack, approval_id, channel="compliance-approvals")
    executive = request_message(stack, approval_id, channel="exec-risk-decisions")
    assert (
        click(stack, gateway, compliance, JON, "approve", "Controls in place").json()["status"] == "accepted"
    )
    maria = stack.aims("approvals", "approve", approval_id, "--by", MARIA)
    assert maria.returncode == 0, maria.stderr
    poll(
        lambda: (
            "still needed from executive"
            in json.dumps(slack(stack).message(executive["channel"], executive["ts"]))
        ),
        90,
        "the request to say an executive is still needed",
    )
    wait_state(stack, approval_id, {"Suspended"})
    assert approval(stack, approval_id).status == "pending"
    assert click(stack, gateway, executive, SAM, "approve", "Accepted").json()["status"] == "accepted"
    wait_state(stack, approval_id, {"Completed"})
    assert approval(stack, approval_id).status == "approved"
    accepted = {d.decided_by: d.channel for d in decisions(stack, approval_id) if d.accepted}
    assert accepted == {JON: "slack", MARIA: "cli", SAM: "slack"}
    for ref in (compliance, executive):
        assert not has_buttons(slack(stack).message(ref["channel"], ref["ts"]))


def test_forged_stale_unauthorized_and_self_approvals_are_refused(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    approval_id = request(stack, "medium", requested_by=TOM)
    wait_state(stack, approval_id, {"Suspended"})
    message = request_message(stack, approval_id)

    forged = click(stack, gateway, message, AISHA, "approve", secret="not-the-secret")
    stale = click(stack, gateway, message, AISHA, "approve", timestamp=int(time.time()) - 301)
    assert forged.status_code == 401 and stale.status_code == 401
    outsider = click(stack, gateway, message, MARIA, "approve")
    self_approval = click(stack, gateway, message, TOM, "approve")
    no_reason = click(stack, gateway, message, AISHA, "reject")
    assert [r.json()["status"] for r in (outsider, self_approval, no_reason)] == ["refused"] * 3
    bad_hook = httpx.post(
        f"{gateway}/jira/webhook",
        content=b'{"webhookEvent": "jira:issue_updated"}',
        headers={"X-Hub-Signature": "sha256=" + "0" * 64, "Content-Type": "application/json"},
        timeout=10,
    )
    assert bad_hook.status_code == 401
    # In Jira, an outsider's transition is refused, commented, and the issue put back.
    from jira import JIRA

    key = jira_issue(stack, approval_id)
    outsider_jira = JIRA(server=jira(stack).url, basic_auth=(SAM, stack.jira_tokens[SAM]), max_retries=0)
    outsider_jira.transition_issue(key, "Approve", comment="Looks fine to me")
    poll(lambda: jira(stack).status(key) == "To Do" or None, 60, f"{key} to be put back to To Do")
    assert any(
        "did not record this decision" in c and "not in approver group" in c
        for c in jira(stack).comments(key)
    )
    cli = stack.aims("approvals", "approve", approval_id, "--by", JON)
    assert cli.returncode != 0 and "not in approver group(s) model-risk" in cli.stderr

    refused = decisions(stack, approval_id)
    assert all(not d.accepted for d in refused)
    reasons = {d.decided_by: d.refusal or "" for d in refused}
    assert "not in approver group" in reasons[MARIA]
    assert "separation of duties" in reasons[TOM]
    assert "needs a reason" in reasons[AISHA]
    assert "not in approver group" in reasons[SAM]
    assert JON in reasons and len(refused) == 5  # forged and stale posts left no trace
    answers = [p.body["text"] for p in slack(stack).response_posts if p.message_ts == message["ts"]]
    assert sum(t.startswith("Not recorded") for t in answers) == 3
    # Only the request itself: no refused attempt was announced.
    assert [e["type"] for e in decision_events(stack, approval_id, 1)] == ["org.aims.approval.requested"]
    assert run_of(stack, approval_id)[1] == "Suspended"  # type: ignore[index]
    assert approval(stack, approval_id).status == "pending"
