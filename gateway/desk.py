"""The gateway's desk: a verified Slack click or Jira webhook → a command → `flows.commands.handle`
(and, beside it, the MLflow desk for model-registry webhooks, gateway/mlflow_desk.py, and the
OpenLineage desk for pipelines' run events, gateway/openlineage_desk.py).

The desk names the person (Slack's signed user, looked up by the policy's emails; Jira's signed
webhook user), finds the command in the Slack action table (`gateway.slack_actions`) or by the Jira
issue's kind (`gateway.jira_dispatch`), hands it to the one handler table, and answers the channel
from the verdict (`gateway.answers`). The same handlers serve the CLI and the flows: a refused
attempt is recorded with its reason and produces no event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from flows.commands import Actor, Command, Context, Verdict, handle
from gateway.answers import Outcome, answered, ignored, slack_reply
from gateway.jira_dispatch import JiraDispatch
from gateway.mlflow_desk import MlflowDesk
from gateway.openlineage_desk import OpenLineageDesk
from gateway.payloads import BlockActions, JiraWebhook, SlackUser
from gateway.slack_actions import Click, clicked
from schemas.payloads import DecisionChannel
from schemas.people import by_slack

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.mlflow_registry import VersionFactsSource
    from connectors.register.store import Register
    from connectors.slack import Chat
    from schemas.policy import Policy

log = logging.getLogger("aims.gateway")


class DecisionDesk:
    """Turns a verified Slack click or Jira transition into a command on the one command path."""

    def __init__(
        self,
        register: Register,
        policy: Callable[[], Policy],
        topic: str,
        send: Callable[[list[str]], object],
        chat: Chat | None,
        tracker: IssueTracker | None,
        registry: VersionFactsSource | None = None,
    ) -> None:
        self.register = register
        self.policy = policy
        self.topic = topic
        self.send = send
        self.chat = chat
        self.tracker = tracker
        self.jira_dispatch = JiraDispatch(register, policy, tracker, self.handle, send)
        # MLflow's deliveries are no human input: they record registry changes, not decisions.
        self.mlflow = MlflowDesk(register, policy, topic, send, registry)
        # OpenLineage's run events likewise: finished outputs to check, not decisions.
        self.openlineage = OpenLineageDesk(register, policy, topic, send)
        self._slack_people: dict[str, str] = {}

    def handle(self, command: Command) -> Verdict:
        verdict = handle(command, Context(self.register, self.policy(), self.topic))
        log.info(
            "%s %s by %s via %s: %s",
            verdict.status,
            command.describe(),
            command.actor.name,
            command.actor.channel.value,
            verdict.message,
        )
        return verdict

    def slack_person(self, user: SlackUser) -> str:
        """The policy's name (email) of a Slack user: the person the policy pins the id to, or else
        the one Slack's directory gives that (verified) e-mail address."""
        policy = self.policy()
        if (pinned := by_slack(policy.people, user.id)) is not None:
            return pinned
        if user.id not in self._slack_people and self.chat is not None:
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
        found = clicked(payload)
        if found is None:
            return ignored("not an approval action")
        action, row = found
        assert action.value is not None
        person = self.slack_person(payload.user)
        if person.startswith("slack:") and row.owner_may_act:
            person = self._action_owner(action.value, payload.user.id) or person
        click = Click(payload, action, action.value, Actor(person, DecisionChannel.slack, payload.user.id))
        verdict = self.handle(row.command(click))
        outcome = answered(verdict, self.send)
        slack_reply(outcome, verdict, self.chat, payload.response_url)
        return outcome

    def _action_owner(self, action_id: str, slack_user: str) -> str | None:
        """An action's owner may mark it done without being in the policy: matched by Slack's email lookup."""
        with self.register.reader() as uow:
            action = uow.corrective_actions.get(action_id)
        if action is None or self.chat is None or "@" not in action.owner:
            return None
        return action.owner if self.chat.user_id(action.owner) == slack_user else None

    def jira(self, hook: JiraWebhook) -> Outcome:
        return self.jira_dispatch(hook)
