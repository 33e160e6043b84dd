"""The gateway: Slack interactions and Jira webhooks in, validated decision and update events out.

- `POST /slack/interactions`: the Slack signature (signing secret, 5-minute window) is checked on
  the raw body before anything else; the click is answered at once (Slack wants 200 within 3 s),
  the Kafka send and the ephemeral answer to the clicker follow in the background.
- `POST /jira/webhook`: the `X-Hub-Signature` HMAC is checked; a status change to Approved or
  Rejected is a decision by the Jira user who made it; on an incident issue, a move to one of the
  policy's incident statuses is an update (gateway/incident_desk.py). Webhooks of our own
  transitions are ignored.
- `GET /healthz`.

Both channels end in `flows.approvals.commands.submit`, the path the CLI and the Prefect UI take too: a
refused attempt is recorded with its reason and answered (ephemeral message, Jira comment), and
produces no event. Bad signatures get 401 and touch nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

from flows.approvals.commands import Submission, attempt_key, submit
from flows.approvals.messages import APPROVE_ACTION, JIRA_REOPEN, REASON_BLOCK, REASON_INPUT, REJECT_ACTION
from flows.approvals.rules import Attempt
from flows.incidents.commands import Result
from flows.incidents.messages import DONE_ACTION, NOTE_BLOCK, NOTE_INPUT, SLACK_ACTIONS
from gateway.incident_desk import IncidentDesk
from gateway.review_desk import ReviewDesk
from schemas.payloads import Decision, DecisionChannel

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from connectors.jira_issues import IssueTracker
    from connectors.register.store import Register
    from connectors.slack import Chat
    from schemas.policy import Policy
    from schemas.settings import AimsSettings

log = logging.getLogger("aims.gateway")

SLACK_WINDOW = 300  # seconds: Slack's own replay window
ACTIONS = {APPROVE_ACTION: Decision.approve, REJECT_ACTION: Decision.reject}
JIRA_STATUSES = {"approved": Decision.approve, "rejected": Decision.reject}


# -- what we read of the payloads (everything else is ignored, not refused) -------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlackUser(_Loose):
    id: str
    username: str | None = None
    name: str | None = None


class SlackAction(_Loose):
    action_id: str
    value: str | None = None
    action_ts: str | None = None


class BlockActions(_Loose):
    type: str
    user: SlackUser
    actions: list[SlackAction]
    response_url: str | None = None
    state: dict[str, Any] = {}
    trigger_id: str | None = None

    def reason(self) -> str:
        return self.typed(REASON_BLOCK, REASON_INPUT)

    def typed(self, block_id: str, action_id: str) -> str:
        """What the person typed in the message's input block (Slack sends it with the click)."""
        values = self.state.get("values", {}) if isinstance(self.state, dict) else {}
        block = values.get(block_id, {}) if isinstance(values, dict) else {}
        typed = block.get(action_id, {}) if isinstance(block, dict) else {}
        return str(typed.get("value") or "").strip() if isinstance(typed, dict) else ""


class JiraUser(_Loose):
    # Jira's own field names.
    accountId: str
    displayName: str | None = None
    emailAddress: str | None = None


class JiraIssue(_Loose):
    id: str | None = None
    key: str


class JiraChange(_Loose):
    field: str
    fromString: str | None = None
    toString: str | None = None


class JiraChangelog(_Loose):
    id: str | None = None
    items: list[JiraChange] = []


class JiraComment(_Loose):
    body: str = ""


class JiraWebhook(_Loose):
    webhookEvent: str
    timestamp: int | None = None
    user: JiraUser | None = None
    issue: JiraIssue
    changelog: JiraChangelog | None = None
    comment: JiraComment | None = None


# -- signatures -------------------------------------------------------------------------------


def slack_signature_ok(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> bool:
    """Slack's v0 scheme: HMAC-SHA256 of "v0:<ts>:<raw body>", and the timestamp within 5 minutes."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > SLACK_WINDOW:
        return False
    base = b"v0:" + str(ts).encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def jira_signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    if not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


# -- decisions from the channels ----------------------------------------------------------------


@dataclass
class Outcome:
    """What the HTTP layer answers now, and what is done after the answer has gone."""

    status: int
    body: dict[str, Any]
    later: list[Callable[[], object]] = field(default_factory=list)


class DecisionDesk:
    """Turns a verified Slack click or Jira transition into an attempt on the one decision path."""

    def __init__(
        self,
        register: Register,
        policy: Callable[[], Policy],
        topic: str,
        send: Callable[[list[str]], object],
        chat: Chat | None,
        tracker: IssueTracker | None,
    ) -> None:
        self.register = register
        self.policy = policy
        self.topic = topic
        self.send = send
        self.chat = chat
        self.tracker = tracker
        self.incidents = IncidentDesk(register, policy, topic, tracker)
        self.reviews = ReviewDesk(register, policy, tracker)
        self._slack_people: dict[str, str] = {}

    def slack_person(self, user: SlackUser) -> str:
        """The policy's name (email) of a Slack user, found by looking the members up by email."""
        if user.id not in self._slack_people and self.chat is not None:
            policy = self.policy()
            people = {m for g in policy.approver_groups.values() for m in g.members}
            people |= {
                w for s in policy.slas.values() for step in s.escalation for w in step.notify if "@" in w
            }
            for person in sorted(people):
                if person.startswith("U") and "@" not in person:
                    self._slack_people.setdefault(person, person)  # the policy names a Slack user id
                elif (found := self.chat.user_id(person)) is not None:
                    self._slack_people.setdefault(found, person)
        # Unknown people keep their Slack id: the attempt is refused and recorded under it.
        return self._slack_people.get(user.id, f"slack:{user.id}")

    def slack(self, payload: BlockActions) -> Outcome:
        updates = [a for a in payload.actions if a.action_id in SLACK_ACTIONS and a.value]
        if payload.type == "block_actions" and updates:
            return self._incident_click(payload, updates[0])
        clicks = [a for a in payload.actions if a.action_id in ACTIONS and a.value]
        if payload.type != "block_actions" or not clicks:
            return Outcome(200, {"ignored": "not an approval action"})
        click = clicks[0]
        assert click.value is not None
        approver = self.slack_person(payload.user)
        attempt = Attempt(
            approval_id=click.value,
            approver=approver,
            decision=ACTIONS[click.action_id],
            channel=DecisionChannel.slack,
            reason=payload.reason(),
            at=datetime.now(UTC),
        )
        result = self._submit(
            attempt, attempt_key("slack", click.value, payload.user.id, click.action_ts or "")
        )
        outcome = Outcome(200, {"status": result.status})
        if payload.response_url and self.chat is not None:
            chat, url = self.chat, payload.response_url
            text = _answer(result, f"your {result.message}")
            outcome.later.append(lambda: chat.respond(url, text))
        return self._sending(result.keys, outcome)

    def _incident_click(self, payload: BlockActions, click: SlackAction) -> Outcome:
        assert click.value is not None
        person = self.slack_person(payload.user)
        if person.startswith("slack:") and click.action_id == DONE_ACTION:
            person = self._action_owner(click.value, payload.user.id) or person
        result = self.incidents.slack(
            click.action_id,
            click.value,
            person,
            payload.typed(NOTE_BLOCK, NOTE_INPUT),
            f"{payload.user.id}:{click.action_ts or ''}",
        )
        outcome = Outcome(200, {"status": result.status})
        if payload.response_url and self.chat is not None:
            chat, url = self.chat, payload.response_url
            text = _answer(result, result.message)
            outcome.later.append(lambda: chat.respond(url, text))
        return self._sending(result.keys, outcome)

    def _action_owner(self, action_id: str, slack_user: str) -> str | None:
        """An action's owner may mark it done without being in the policy: matched by Slack's email lookup."""
        with self.register.reader() as uow:
            action = uow.corrective_actions.get(action_id)
        if action is None or self.chat is None or "@" not in action.owner:
            return None
        return action.owner if self.chat.user_id(action.owner) == slack_user else None

    def jira(self, hook: JiraWebhook) -> Outcome:
        if hook.user is None or hook.changelog is None:
            return Outcome(200, {"ignored": "no user or no change"})
        if self.tracker is not None and hook.user.accountId == self.tracker.account_id():
            return Outcome(200, {"ignored": "our own transition"})
        moved = [c for c in hook.changelog.items if c.field == "status" and c.toString]
        if moved:
            handled = self.incidents.jira(
                hook.issue.key,
                moved[-1].toString or "",
                moved[-1].fromString or "",
                hook.user.emailAddress or hook.user.accountId,
                hook.comment.body.strip() if hook.comment else "",
                datetime.fromtimestamp(hook.timestamp / 1000, UTC) if hook.timestamp else datetime.now(UTC),
                hook.changelog.id or str(hook.timestamp),
            )
            if handled is not None:
                outcome = Outcome(200, {"status": handled.result.status}, list(handled.later))
                return self._sending(handled.result.keys, outcome)
            reviewed = self.reviews.jira(
                hook.issue.key,
                moved[-1].toString or "",
                moved[-1].fromString or "",
                hook.user.emailAddress or hook.user.accountId,
                hook.comment.body if hook.comment else "",
                datetime.fromtimestamp(hook.timestamp / 1000, UTC) if hook.timestamp else datetime.now(UTC),
            )
            if reviewed is not None:
                return Outcome(200, {"status": reviewed.status}, list(reviewed.later))
        moves = [
            c
            for c in hook.changelog.items
            if c.field == "status" and (c.toString or "").lower() in JIRA_STATUSES
        ]
        if not moves:
            return Outcome(200, {"ignored": "not a decision transition"})
        with self.register.reader() as uow:
            found = uow.approvals.find(jira_issue=hook.issue.key, limit=1)
        if not found:
            return Outcome(200, {"ignored": f"{hook.issue.key} is no approval issue"})
        approver = hook.user.emailAddress or hook.user.accountId
        attempt = Attempt(
            approval_id=found[0].id,
            approver=approver,
            decision=JIRA_STATUSES[(moves[-1].toString or "").lower()],
            channel=DecisionChannel.jira,
            reason=(hook.comment.body.strip() if hook.comment else ""),
            at=datetime.fromtimestamp(hook.timestamp / 1000, UTC) if hook.timestamp else datetime.now(UTC),
        )
        delivery = hook.changelog.id or str(hook.timestamp)
        result = self._submit(attempt, attempt_key("jira", hook.issue.key, approver, delivery))
        outcome = Outcome(200, {"status": result.status})
        if result.status == "refused" and result.fresh and self.tracker is not None:
            tracker, key = self.tracker, hook.issue.key
            comment = f"AIMS did not record this decision by {approver}: {result.message}."

            def answer() -> None:
                # Put the issue back so Jira does not show a decision the register does not hold.
                if not tracker.transition(key, JIRA_REOPEN, comment):
                    tracker.comment(key, comment)

            outcome.later.append(answer)
        return self._sending(result.keys, outcome)

    def _submit(self, attempt: Attempt, refusal_id: str) -> Submission:
        result = submit(self.register, self.policy(), attempt, self.topic, refusal_id)
        log.info(
            "%s %s of %s by %s via %s: %s",
            result.status,
            attempt.decision.value,
            attempt.approval_id,
            attempt.approver,
            attempt.channel.value,
            result.message,
        )
        return result

    def _sending(self, staged: tuple[str, ...], outcome: Outcome) -> Outcome:
        if staged:
            keys = list(staged)
            # First thing after the answer: the update is in the register already, so a send that
            # fails here is only late (the router's outbox relay sends it).
            outcome.later.insert(0, lambda: self.send(keys))
        return outcome


def _answer(result: Submission | Result, accepted: str) -> str:
    """The clicker's ephemeral reply; `accepted` says what was recorded."""
    if result.status == "accepted":
        return f"Recorded: {accepted}."
    if result.status == "duplicate":
        return "Already recorded; nothing changed."
    return f"Not recorded: {result.message}."


# -- HTTP -------------------------------------------------------------------------------------


def _run_later(outcome: Outcome) -> None:
    for step in outcome.later:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the answer has gone; log and let the next step run
            log.warning("after answering: %s", exc)


def create_app(settings: AimsSettings, desk: DecisionDesk, clock: Callable[[], float]) -> Starlette:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def reply(outcome: Outcome) -> Response:
        task = BackgroundTask(_run_later, outcome) if outcome.later else None
        return JSONResponse(outcome.body, status_code=outcome.status, background=task)

    async def slack_interactions(request: Request) -> Response:
        secret = settings.slack_signing_secret
        if secret is None:
            return JSONResponse({"error": "set AIMS_SLACK_SIGNING_SECRET to accept Slack interactions"}, 503)
        body = await request.body()
        headers = request.headers
        if not slack_signature_ok(
            secret.get_secret_value(),
            body,
            headers.get("x-slack-request-timestamp"),
            headers.get("x-slack-signature"),
            clock(),
        ):
            log.warning("Slack interaction with a bad or stale signature refused (%s)", request.client)
            return JSONResponse({"error": "invalid signature"}, 401)
        try:
            raw = parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0]
            payload = BlockActions.model_validate_json(raw)
        except (KeyError, ValueError, UnicodeDecodeError, ValidationError) as exc:
            return JSONResponse({"error": f"not a Slack interaction payload: {str(exc)[:200]}"}, 400)
        return reply(await run_in_threadpool(desk.slack, payload))

    async def jira_webhook(request: Request) -> Response:
        secret = settings.jira_webhook_secret
        if secret is None:
            return JSONResponse({"error": "set AIMS_JIRA_WEBHOOK_SECRET to accept Jira webhooks"}, 503)
        body = await request.body()
        if not jira_signature_ok(secret.get_secret_value(), body, request.headers.get("x-hub-signature")):
            log.warning("Jira webhook with a bad signature refused (%s)", request.client)
            return JSONResponse({"error": "invalid signature"}, 401)
        try:
            hook = JiraWebhook.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"error": f"not a Jira issue webhook: {str(exc)[:200]}"}, 400)
        return reply(await run_in_threadpool(desk.jira, hook))

    async def healthz(request: Request) -> Response:
        def check() -> dict[str, Any]:
            with desk.register.reader() as uow:
                pending = uow.approvals.count(status="pending")
                open_incidents = uow.incidents.count(closed_at=None)
                clocks = uow.incidents.count(serious=True, reported_to_authority_at=None, closed_at=None)
            return {
                "status": "ok",
                "pending_approvals": pending,
                "open_incidents": open_incidents,
                "art73_clocks_running": clocks,
            }

        try:
            state = await run_in_threadpool(check)
        except Exception as exc:  # noqa: BLE001 - any failure is "not healthy", with its reason
            return JSONResponse({"status": "unhealthy", "error": str(exc)[:300]}, 503)
        state |= {"slack": desk.chat is not None, "jira": desk.tracker is not None}
        return JSONResponse(state)

    return Starlette(
        routes=[
            Route("/slack/interactions", slack_interactions, methods=["POST"]),
            Route("/jira/webhook", jira_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def status_path(state_dir: Path) -> Path:
    """Where a running gateway says which port it listens on."""
    return state_dir / "gateway.json"


def serve(settings: AimsSettings, ready: Callable[[int], None] | None = None) -> None:
    """Run the gateway until SIGTERM/SIGINT; `ready` gets the bound port (the setting may say 0)."""
    import time

    import uvicorn

    from connectors.jira_issues import jira_from_settings
    from connectors.register import open_register
    from connectors.slack import slack_from_settings
    from events.kafka_clients import make_producer
    from events.outbox import OutboxRelay
    from schemas.policy_file import load_policy

    if not settings.kafka_bootstrap_servers:
        raise RuntimeError("the gateway needs KAFKA_BOOTSTRAP_SERVERS (set by `aims up`)")
    register = open_register(settings)
    relay = OutboxRelay(
        register, make_producer(settings.kafka_bootstrap_servers, client_id="aims-gateway"), "gateway"
    )
    chat = slack_from_settings(settings)
    desk = DecisionDesk(
        register,
        lambda: load_policy(settings.policy_file),
        settings.events_topic,
        relay.send,
        chat,
        jira_from_settings(settings),
    )
    socket_mode = None
    if settings.slack_app_token is not None:
        from gateway.slack_socket import SocketModeListener

        socket_mode = SocketModeListener(settings, desk, _run_later)
        socket_mode.start()
    config = uvicorn.Config(
        create_app(settings, desk, time.time),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    # Bound here, so the port is known (and connections queue) before uvicorn starts serving.
    sock = socket.create_server((settings.gateway_host, settings.gateway_port))
    port = sock.getsockname()[1]
    log.info("gateway listening on http://%s:%d", settings.gateway_host, port)
    if ready is not None:
        ready(port)
    try:
        server.run(sockets=[sock])
    finally:
        if socket_mode is not None:
            socket_mode.stop()
        relay.producer.close(timeout=10)
