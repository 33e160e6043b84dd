"""Slack: approval requests as Block Kit messages, updates, direct messages and ephemeral answers.

Flows and the gateway depend on the small `Chat` Protocol; `SlackChat` is the real adapter on
slack-sdk's `WebClient`, pointed at `AIMS_SLACK_API_URL` (the loopback fake in tests). Rate limits
(429 + Retry-After) and 5xx answers are retried by the SDK's own retry handlers, so a message is
posted once however often Slack asks us to slow down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from schemas.settings import AimsSettings

Blocks = list[dict[str, Any]]


class ChatError(RuntimeError):
    """Slack refused or could not be reached after the retries."""


class MessageRef(NamedTuple):
    channel: str
    ts: str


class Chat(Protocol):
    def post(
        self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None
    ) -> MessageRef:
        """Post to a channel (id or name); `text` is the notification fallback."""
        ...

    def update(self, ref: MessageRef, text: str, blocks: Blocks) -> None: ...

    def post_to_person(self, email: str, text: str, blocks: Blocks | None = None) -> MessageRef | None:
        """A direct message; None when Slack knows nobody by that email."""
        ...

    def user_id(self, email: str) -> str | None: ...

    def respond(self, response_url: str, text: str) -> None:
        """An ephemeral answer to the person who clicked, through the interaction's response_url."""
        ...


class SlackChat:
    def __init__(self, token: str, base_url: str, retries: int = 3, timeout: int = 10) -> None:
        self._token = token
        self._base_url = base_url
        self._retries = retries
        self._timeout = timeout
        self._client: WebClient | None = None
        self._users: dict[str, str | None] = {}

    @property
    def client(self) -> WebClient:
        if self._client is None:
            from slack_sdk import WebClient
            from slack_sdk.http_retry.builtin_handlers import (
                ConnectionErrorRetryHandler,
                RateLimitErrorRetryHandler,
                ServerErrorRetryHandler,
            )

            self._client = WebClient(
                token=self._token,
                base_url=self._base_url,
                timeout=self._timeout,
                retry_handlers=[
                    ConnectionErrorRetryHandler(max_retry_count=self._retries),
                    RateLimitErrorRetryHandler(max_retry_count=self._retries),
                    ServerErrorRetryHandler(max_retry_count=self._retries),
                ],
            )
        return self._client

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """One Web API method by its SDK name (e.g. chat_postMessage), with Slack's error code on failure."""
        from slack_sdk.errors import SlackApiError

        try:
            response = getattr(self.client, method)(**params)
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            raise ChatError(f"Slack {method} failed: {error or exc.response.status_code}") from exc
        except OSError as exc:
            raise ChatError(f"Slack {method}: cannot reach {self._base_url}: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post(
        self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None
    ) -> MessageRef:
        params: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            params["blocks"] = blocks
        if thread_ts:
            params["thread_ts"] = thread_ts
        data = self._call("chat_postMessage", **params)
        return MessageRef(str(data["channel"]), str(data["ts"]))

    def update(self, ref: MessageRef, text: str, blocks: Blocks) -> None:
        self._call("chat_update", channel=ref.channel, ts=ref.ts, text=text, blocks=blocks)

    def user_id(self, email: str) -> str | None:
        if email not in self._users:
            try:
                data = self._call("users_lookupByEmail", email=email)
            except ChatError as exc:
                if "users_not_found" not in str(exc):
                    raise
                self._users[email] = None
            else:
                self._users[email] = str(data["user"]["id"])
        return self._users[email]

    def post_to_person(self, email: str, text: str, blocks: Blocks | None = None) -> MessageRef | None:
        user = self.user_id(email)
        if user is None:
            return None
        channel = self._call("conversations_open", users=user)["channel"]["id"]
        return self.post(str(channel), text, blocks)

    def respond(self, response_url: str, text: str) -> None:
        from slack_sdk.webhook import WebhookClient

        response = WebhookClient(response_url, timeout=self._timeout).send(
            text=text, response_type="ephemeral", replace_original=False
        )
        if response.status_code != 200:
            raise ChatError(f"Slack response_url answered {response.status_code}: {response.body[:200]}")


def slack_from_settings(settings: AimsSettings) -> SlackChat | None:
    """The configured Slack, or None when no bot token is set (Slack is then not used)."""
    if settings.slack_bot_token is None:
        return None
    return SlackChat(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
