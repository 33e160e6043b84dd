"""Runtime settings, read from the environment (prefix AIMS_) when a command starts.

Every setting the code reads from the environment is a field here (AIMS_WARM_READY_FD is not one:
it is the pipe the worker hands its own child processes). Nothing reads the environment at import
time: build `AimsSettings()` (or call `load_settings()`) when a command or a process starts.

The environment is read by `environment_values` below rather than by pydantic-settings: the same
rules for these flat fields (AIMS_ + the field's name, or the field's listed aliases, case-insensitive,
keyword arguments first), without the 0.1-0.2 s that importing pydantic-settings (and its sources for
CLI flags, cloud secrets and dotenv files, none used here) added to every command (issue 18, item 12).
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ENV_PREFIX = "AIMS_"
MIN_SIGNING_KEY_CHARS = 32


class AimsSettings(BaseModel):
    # hide_input_in_errors: a refused key (too short) must not appear in the traceback of a process
    # that fails to start, nor in its log.
    model_config = ConfigDict(
        extra="ignore", frozen=True, validate_default=True, populate_by_name=True, hide_input_in_errors=True
    )

    def __init__(self, **values: Any) -> None:
        # Keyword arguments win over the environment, as pydantic-settings ordered its sources.
        super().__init__(**{**environment_values(type(self), os.environ), **values})

    state_dir: Path = Field(
        Path(".aims"),
        description="Project-local folder for the broker data, Prefect database, evidence and logs.",
    )
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "AIMS_KAFKA_BOOTSTRAP_SERVERS"),
        description="An existing Kafka cluster; when unset, `aims up` starts a local broker.",
    )
    kafka_home: Path | None = Field(
        None,
        validation_alias=AliasChoices("KAFKA_HOME", "AIMS_KAFKA_HOME"),
        description="A Kafka installation whose libs/ the local broker runs from.",
    )
    prefect_api_url: str | None = Field(
        None,
        validation_alias=AliasChoices("PREFECT_API_URL", "AIMS_PREFECT_API_URL"),
        description="An existing Prefect API; when unset, `aims up` starts a local server.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="The register's SQLAlchemy URL (PostgreSQL in production); "
        "default: an SQLite file in the state folder. Secret: it may carry a password.",
    )
    policy_file: Path = Field(Path("policy/aims-policy.yaml"), description="The policy the flows apply.")
    suites_dir: Path = Field(Path("suites"), description="Expectation suites, one YAML file per dataset.")
    events_topic: str = Field("aims.events", description="Inbound CloudEvents topic.")
    events_partitions: int = Field(4, ge=1, le=1000, description="Partitions of the events topic.")
    dead_letter_topic: str = Field("aims.events.dlq", description="Where rejected events go.")
    dead_letter_partitions: int = Field(1, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=16)
    consumer_group: str = Field("aims-router", description="Consumer group of the routers.")
    max_event_bytes: int = Field(
        256 * 1024, ge=1024, le=900 * 1024, description="Larger events are dead-lettered."
    )
    router_batch_size: int = Field(200, ge=1, le=5000)
    router_concurrency: int = Field(
        4, ge=1, le=64, description="Flow-run creations in flight at once (different subjects)."
    )
    router_launch_timeout: float = Field(
        10, gt=0, le=300, description="Seconds one flow-run creation may take before it is retried."
    )
    router_max_in_flight: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Records of one partition a router holds uncommitted before it stops fetching that "
        "partition: while one subject waits, the partition's other subjects keep flowing up to this many.",
    )
    consumer_session_timeout_ms: int = Field(
        10_000,
        ge=6_000,
        le=300_000,
        description="How long a router may be silent before the group gives its partitions to another "
        "(the broker's group.min.session.timeout.ms is 6 s by default). Kafka's default of 45 s left "
        "a crashed router's partitions waiting that long.",
    )
    consumer_heartbeat_interval_ms: int = Field(
        3_000, ge=500, le=60_000, description="How often a router tells the group it is alive."
    )
    work_pool: str = Field(
        "aims", min_length=1, description="The Prefect work pool the deployments and `aims worker` share."
    )
    worker_poll_seconds: float = Field(
        0.5, ge=0.1, le=60, description="How often the worker polls its work pool for new runs (s)."
    )
    warm_processes: int = Field(
        3, ge=0, le=32, description="Flow-run processes the worker keeps started ahead of need."
    )
    warm_gx_processes: int = Field(
        1,
        ge=0,
        le=32,
        description="Of those, processes that also imported Great Expectations, for data-quality runs "
        "(5-12 s of CPU each to start; 0: none).",
    )
    work_pool_concurrency: int = Field(
        4,
        ge=0,
        le=10_000,
        description="Flow runs the work pool lets start at once (Pending or Running), so a burst cannot "
        "start more processes than the machine has memory for; applied when the pool is created or has "
        "no limit, never over a limit or a pause the team set in Prefect. 0: no limit.",
    )

    event_signing_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 that signs the system's own events (sources urn:aims:…): "
        "the flows, the CLI and the demo sign what they publish with it, and the router dead-letters an "
        "urn:aims: event without a valid signature. At least 32 characters (e.g. `openssl rand -hex 32`), "
        "the same for every process of one installation; `aims up` creates one in the state folder "
        "when it is unset. Secret.",
    )
    audit_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 that chains the register's audit log, kept outside the "
        "database so that whoever can write the database cannot re-chain the log. At least 32 "
        "characters, the same for every process of one installation; once an entry was written with "
        "it, writing without it is refused. `aims up` creates one in the state folder when it is unset. "
        "Secret.",
    )
    audit_key_file: Path | None = Field(
        None,
        description="A file holding the audit key (a mounted secret); read when AIMS_AUDIT_KEY is unset.",
    )
    audit_anchors_topic: str = Field(
        "aims.audit.anchors",
        description="Append-only topic where the routers publish the audit log's head (seq and HMAC) "
        "that `aims audit verify` checks the log against.",
    )
    audit_anchor_seconds: float = Field(
        300, ge=1, le=24 * 3600, description="How often a router publishes the audit head when it moved (s)."
    )
    dq_password: SecretStr | None = Field(
        None,
        description="Password of the SQL data sources whose `credentials` name this setting in the "
        "policy; given to those sources' URLs only (events never carry credentials or URLs).",
    )
    pg_bin: Path | None = Field(
        None, description="Folder of the PostgreSQL server binaries the local stack and tests start."
    )

    # -- approvals in Slack and Jira (secrets only from the environment) --
    slack_bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-…) that posts approval requests; unset: Slack is not used."
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Verifies that interactions really come from Slack (required by the gateway)."
    )
    slack_app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-…): the gateway also takes interactions over Socket Mode."
    )
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL.")
    jira_url: str | None = Field(None, description="Jira site, e.g. https://example.atlassian.net.")
    jira_email: str | None = Field(None, description="The Jira account that files approval issues.")
    jira_api_token: SecretStr | None = Field(None, description="That account's API token.")
    jira_webhook_secret: SecretStr | None = Field(
        None, description="The secret of the Jira webhook that calls the gateway (X-Hub-Signature)."
    )
    jira_issue_type: str = Field("Task", min_length=1, description="Issue type of approval issues.")
    gateway_host: str = Field("127.0.0.1", description="Where `aims gateway` listens.")
    gateway_port: int = Field(8787, ge=0, le=65535, description="Port of `aims gateway` (0: any free one).")
    # The gateway's caps (gateway/limits.py) apply before any signature is checked: a signature needs
    # the whole body, so without them an unsigned POST could make the gateway hold any size in memory.
    gateway_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body the gateway reads (bytes); larger ones get 413 unread. Slack "
        "interactions and Jira issue webhooks are a few KiB to a few hundred.",
    )
    gateway_max_concurrent_requests: int = Field(
        32,
        ge=1,
        le=1000,
        description="Requests the gateway handles at once; more get 503 with Retry-After at once, not "
        "a queue. Bodies in memory stay under this × the body cap (32 MiB by default); 32 also stays "
        "under the 40 threads that run the handlers, so an admitted request never waits for one.",
    )
    gateway_body_timeout: float = Field(
        10,
        gt=0,
        le=300,
        description="Seconds a request's body may take to arrive before 408, so slow senders cannot "
        "hold the gateway's request slots (Slack wants its answer within 3 s anyway).",
    )
    jira_webhook_window_seconds: int = Field(
        2100,
        ge=60,
        le=7 * 24 * 3600,
        description="Replay window of Jira webhooks: the signed body's `timestamp` must be this close "
        "to now, either way. Jira retries a delivery with the same body for up to 30 minutes, hence 35.",
    )

    @model_validator(mode="before")
    @classmethod
    def _audit_key_from_file(cls, values: Any) -> Any:
        # AIMS_AUDIT_KEY wins; the file is read once, here, when the settings are built.
        if isinstance(values, dict) and not values.get("audit_key") and values.get("audit_key_file"):
            path = Path(values["audit_key_file"])
            try:
                values = {**values, "audit_key": path.read_text(encoding="utf-8").strip()}
            except OSError as exc:
                raise ValueError(f"audit_key_file: cannot read {path}: {exc.strerror}") from None
        return values

    @field_validator("event_signing_key", "audit_key")
    @classmethod
    def _signing_key_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short key can be guessed offline from one signed event; the message never quotes it.
        if value is not None and len(value.get_secret_value()) < MIN_SIGNING_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_SIGNING_KEY_CHARS} characters (e.g. the output of "
                "`openssl rand -hex 32`)"
            )
        return value

    @model_validator(mode="after")
    def _heartbeats_fit_the_session(self) -> AimsSettings:
        # Kafka refuses a heartbeat interval at or above the session timeout; a third of it leaves a
        # router two missed beats before the group gives its partitions away.
        if self.consumer_heartbeat_interval_ms * 3 > self.consumer_session_timeout_ms:
            raise ValueError(
                f"consumer_heartbeat_interval_ms ({self.consumer_heartbeat_interval_ms}) must be at most a "
                f"third of consumer_session_timeout_ms ({self.consumer_session_timeout_ms}): lower "
                "AIMS_CONSUMER_HEARTBEAT_INTERVAL_MS or raise AIMS_CONSUMER_SESSION_TIMEOUT_MS"
            )
        return self

    @property
    def state_path(self) -> Path:
        return self.state_dir.resolve()


def env_names(name: str, field: Any) -> list[str]:
    """The variables a field is read from, in order: its aliases if it lists them, else AIMS_NAME."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [ENV_PREFIX + name.upper()]


def _structured(annotation: Any) -> bool:
    """Whether a field's value is written as JSON in the environment (a list, a dict, a model)."""
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    for kind in kinds:
        origin = typing.get_origin(kind) or kind
        if origin in (list, dict, set, tuple, frozenset) or (
            isinstance(origin, type) and issubclass(origin, BaseModel)
        ):
            return True
    return False


def environment_values(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of `model` that the environment sets, by field name; names match case-insensitively."""
    folded = {key.lower(): value for key, value in environ.items()}
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        for variable in env_names(name, field):
            if variable.lower() in folded:
                raw = folded[variable.lower()]
                values[name] = json.loads(raw) if _structured(field.annotation) else raw
                break
    return values


def load_settings(**overrides: object) -> AimsSettings:
    return AimsSettings(**overrides)
