"""What the gateway reads of Slack's and Jira's payloads; everything else is ignored, not refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


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
    # Read leniently: only the labels are used, and a webhook without them is still one.
    fields: Any = None

    def labels(self) -> frozenset[str]:
        labels = self.fields.get("labels") if isinstance(self.fields, dict) else None
        if not isinstance(labels, list):
            return frozenset()
        return frozenset(label for label in labels if isinstance(label, str))


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
