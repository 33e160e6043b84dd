"""Where Kafka and Prefect are: the environment first, then a running local stack's stack.json."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from aims.errors import CliError
from events.kafka_clients import KafkaConnection, KafkaSecurity
from schemas.settings import AimsSettings


@dataclass(frozen=True)
class Endpoints:
    bootstrap: str
    prefect_api_url: str | None
    prefect_ui_url: str | None
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
    return Endpoints(bootstrap, api, ui, KafkaSecurity.from_settings(settings))


def use_prefect(settings: AimsSettings, endpoints: Endpoints) -> str:
    """Point the Prefect SDK at the stack's API. Call before importing prefect."""
    from infra.prefect_server import prefect_client_env

    if not endpoints.prefect_api_url:
        raise CliError("no Prefect API: start the local stack with `aims up`, or set PREFECT_API_URL")
    for key, value in prefect_client_env(
        settings.state_path, endpoints.prefect_api_url, settings.worker_poll_seconds
    ).items():
        os.environ.setdefault(key, value)
    return endpoints.prefect_api_url
