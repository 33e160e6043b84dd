"""Slack Socket Mode: the same approval buttons for teams whose gateway has no public URL.

The gateway opens a WebSocket to Slack with the app-level token (`AIMS_SLACK_APP_TOKEN`) instead of
receiving HTTP posts. Socket Mode traffic is not signed, the TLS connection we opened is the proof,
so envelopes go straight to the desk (gateway/desk.py): acknowledged first (within Slack's 3 s), then
decided on the same path as an HTTP click.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from slack_sdk.socket_mode.builtin.client import SocketModeClient
    from slack_sdk.socket_mode.client import BaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest

    from gateway.answers import Outcome
    from gateway.desk import DecisionDesk
    from schemas.settings import AimsSettings

log = logging.getLogger("aims.gateway.socket")


class SocketModeListener:
    def __init__(self, settings: AimsSettings, desk: DecisionDesk, finish: Callable[[Outcome], None]) -> None:
        assert settings.slack_app_token is not None
        self._token = settings.slack_app_token.get_secret_value()
        self._bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        self._api_url = settings.slack_api_url
        self._desk = desk
        self._finish = finish
        self._client: SocketModeClient | None = None

    def start(self) -> None:
        from slack_sdk import WebClient
        from slack_sdk.socket_mode.builtin.client import SocketModeClient

        self._client = SocketModeClient(
            app_token=self._token, web_client=WebClient(token=self._bot_token, base_url=self._api_url)
        )
        self._client.socket_mode_request_listeners.append(self._on_request)
        self._client.connect()
        log.info("Slack Socket Mode connected")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        from gateway.payloads import BlockActions

        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "interactive":
            return
        try:
            payload = BlockActions.model_validate(request.payload)
        except ValidationError as exc:
            log.warning("Socket Mode envelope %s is no interaction payload: %s", request.envelope_id, exc)
            return
        self._finish(self._desk.slack(payload))
