"""Where Kafka and Prefect are: the environment first, then a running local stack's stack.json."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pydantic import SecretStr

from aims.errors import CliError
from events.kafka_clients import KafkaConnection, KafkaSecurity
from schemas.settings import AimsSettings


@dataclass(frozen=True)
class Endpoints:
    bootstrap: str
    prefect_api_url: str | None
    prefect_ui_url: str | None
    # The API's `user:password` (PREFECT_API_AUTH_STRING); None: send none.
    prefect_auth: SecretStr | None = None
    # The settings' client security (KAFKA_SECURITY_PROTOCOL…; the local broker's, beside the stack).
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def kafka(self) -> KafkaConnection:
        return KafkaConnection(self.bootstrap, self.kafka_security)


def resolve(settings: AimsSettings) -> Endpoints:
    from infra.stack import StackInfo

    info = StackInfo.load(settings.state_path)
    bootstrap = settings.kafka_bootstrap_servers or (info.bootstrap if info else None)
    if not bootstrap:
        raise CliError(
            "no Kafka to talk to: start the local stack with `aims up` (or `make demo`), "
            "or set KAFKA_BOOTSTRAP_SERVERS"
        )
    api = settings.prefect_api_url or (info.prefect_api_url if info else None)
    ui = (
        info.prefect_ui_url
        if info and api == info.prefect_api_url
        else (api.removesuffix("/api") if api else None)
    )
    return Endpoints(bootstrap, api, ui, prefect_auth(settings, api), KafkaSecurity.from_settings(settings))


def prefect_auth(settings: AimsSettings, api_url: str | None) -> SecretStr | None:
    """The settings' auth string, else the one the local stack made for the server it runs, and for
    that server only: the local credentials are never sent to another API."""
    from infra.stack import StackInfo
    from infra.stack_state import stored_prefect_auth

    if settings.prefect_api_auth_string is not None or api_url is None:
        return settings.prefect_api_auth_string
    info = StackInfo.read(settings.state_path)
    if info is None or info.prefect_api_url != api_url or "prefect-server" not in info.pids:
        return None
    return stored_prefect_auth(settings.state_path)


def use_prefect(settings: AimsSettings, endpoints: Endpoints) -> str:
    """Point the Prefect SDK at the stack's API. Call before importing prefect."""
    from infra.prefect_server import prefect_client_env

    if not endpoints.prefect_api_url:
        raise CliError("no Prefect API: start the local stack with `aims up`, or set PREFECT_API_URL")
    for key, value in prefect_client_env(
        settings.state_path, endpoints.prefect_api_url, settings.worker_poll_seconds, endpoints.prefect_auth
    ).items():
        os.environ.setdefault(key, value)
    return endpoints.prefect_api_url
