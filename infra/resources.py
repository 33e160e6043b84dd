"""The composition root: the resources each kind of process uses, built once from the settings.

The worker's flow-run processes install `flow_runtime()` before a run; the gateway, the router and
the CLI build theirs here too, so the register, the policy, Slack, Jira and the outbox's Kafka
producer are each made in one place and passed in. Tests build a `flows.runtime.Runtime` of their
own (a register in a temporary folder, the example policy, recording fakes) instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.runtime import Runtime

if TYPE_CHECKING:
    from schemas.policy import Policy
    from schemas.settings import AimsSettings


def policy_if_any(settings: AimsSettings) -> Policy | None:
    """The validated policy the settings name; None without a file; an invalid file is an error."""
    from schemas.policy_file import load_policy

    path = settings.policy_file
    return load_policy(path) if path.exists() else None


def flow_runtime(settings: AimsSettings | None = None) -> Runtime:
    """What a flow-run process uses: opens the register (schema checked) and builds the clients."""
    from connectors.jira_issues import jira_from_settings
    from connectors.register import open_register
    from connectors.slack import slack_from_settings
    from events.outbox import KafkaOutbox
    from schemas.settings import load_settings

    settings = settings or load_settings()
    register = open_register(settings)
    return Runtime(
        settings=settings,
        register=register,
        load_policy=lambda: policy_if_any(settings),
        chat=slack_from_settings(settings),
        tracker=jira_from_settings(settings),
        outbox=KafkaOutbox(register, settings.kafka_bootstrap_servers, client_id="aims-flow-outbox"),
    )
