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
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ENV_PREFIX = "AIMS_"
MIN_SIGNING_KEY_CHARS = 32
# A secret's variable with this suffix names a file holding the secret (as container platforms mount
# them), read when the variable itself is unset.
FILE_SUFFIX = "_FILE"

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


def _kafka_alias(name: str) -> AliasChoices:
    # As KAFKA_BOOTSTRAP_SERVERS: the plain Kafka name first, the project's prefixed one second.
    return AliasChoices(f"KAFKA_{name}", f"AIMS_KAFKA_{name}")


class SecretFile:
    """A secret's `*_FILE` variable, read (and its error reported) when the settings are validated."""

    def __init__(self, variable: str, path: str) -> None:
        self.variable = variable
        self.path = Path(path)

    def read(self) -> str:
        try:
            # Mounted secrets usually end with a line break that is not part of the secret.
            return self.path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ValueError(f"{self.variable}={self.path}: cannot read the secret file ({reason})") from None


class AimsSettings(BaseModel):
    # Errors never echo what was given: several settings are secrets (keys, tokens, credentials).
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
    prefect_database: Literal["sqlite", "postgres"] = Field(
        "sqlite",
        description="The database of the Prefect server `aims up` starts: `sqlite`, a file in the state "
        "folder (about 2-5 flow runs created per second, 'database is locked' under load), or "
        "`postgres`, a PostgreSQL server it starts in the state folder (about 15 per second on two "
        "cores; needs the server binaries, see AIMS_PG_BIN). `aims up --prefect-db postgres`.",
    )
    prefect_database_url: SecretStr | None = Field(
        None,
        description="An existing PostgreSQL for the Prefect server `aims up` starts, "
        "`postgresql+asyncpg://user:password@host:5432/prefect`; wins over AIMS_PREFECT_DATABASE. "
        "Secret: it may carry a password.",
    )
    prefect_api_auth_string: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("PREFECT_API_AUTH_STRING", "AIMS_PREFECT_API_AUTH_STRING"),
        description="The Prefect API's basic-auth credentials, `user:password`: every process of the "
        "stack and the CLI send them, and the local server `aims up` starts requires them (its "
        "PREFECT_SERVER_API_AUTH_STRING); when unset, `aims up` creates one in the state folder "
        "(`prefect-api.auth`, also the Prefect UI's login). Secret.",
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
    replication_factor: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Copies of each topic the router and `aims up` create; default: as many as the local "
        "cluster has nodes, up to 3 (1 towards an existing cluster, whose topics are usually its own).",
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Copies a write must reach before it counts (producers ask for all of them, "
        "acks=all); default: one fewer than the replication factor, at least 1.",
    )
    kafka_create_topics: bool = Field(
        True,
        description="Whether the router (and `aims up` on an existing cluster) creates the topics above "
        "when they are missing. false where the topics are managed elsewhere (Strimzi's KafkaTopic "
        "resources) and the router's Kafka user may not create topics: it then only checks that they "
        "exist, and stops with an error naming the missing ones.",
    )
    consumer_group: str = Field("aims-router", description="Consumer group of the routers.")
    max_event_bytes: int = Field(
        256 * 1024, ge=1024, le=900 * 1024, description="Larger events are dead-lettered."
    )
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
        description="Records of one partition a router is still working on before it stops fetching that "
        "partition: while one subject waits, the partition's other subjects keep flowing up to this many "
        "(records done behind a waiting one count only toward the router's bound of 200,000 held).",
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
    worker_reclaim_after_seconds: float = Field(
        120,
        ge=5,
        le=86_400,
        description="A run claimed (Pending) this long by a worker that went offline before starting it is "
        "scheduled again by a live worker of the pool (infra/reclaim.py). Well above the few seconds a "
        "claim takes to reach its process.",
    )
    flow_heartbeat_seconds: int = Field(
        30,
        ge=0,
        le=3_600,
        description="How often a flow run of `aims worker` tells Prefect it is alive (Prefect's "
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY, at least 30; Prefect's own default is 180). 0: the worker "
        "leaves Prefect's default and keeps no automation, so a run whose process died with its worker "
        "(a pod killed) stays Running.",
    )
    flow_unresponsive_after_seconds: float = Field(
        120,
        ge=60,
        le=86_400,
        description="A Running run with no heartbeat for this long is marked Crashed by the automation "
        "`aims worker` keeps in Prefect, and scheduled again by a live worker of the pool "
        "(infra/unresponsive.py). At least two heartbeats.",
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
        "it, writing without it is refused. `aims up` creates one in the state folder when it is unset; "
        "or a file holding it in AIMS_AUDIT_KEY_FILE. Secret.",
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
    mlflow_webhook_secret: SecretStr | None = Field(
        None,
        description="The secret of the MLflow webhook that calls the gateway (X-MLflow-Signature); "
        "unset: the gateway refuses MLflow deliveries. Create the webhook with the same secret.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow's tracking server, asked who registered a new version, its registered "
        "model's tags and its run's datasets; unset: only what the webhook carries is known.",
    )
    mlflow_tracking_token: SecretStr | None = Field(
        None, description="Bearer token for that server (as MLflow's MLFLOW_TRACKING_TOKEN), if it needs one."
    )
    mlflow_webhook_window_seconds: int = Field(
        300,
        ge=60,
        le=24 * 3600,
        description="Replay window of MLflow webhooks: the signed X-MLflow-Timestamp must be this close "
        "to now, either way. MLflow's retries of a delivery resend its first timestamp (3 retries, "
        "1-4 s apart, 30 s timeout each by default), so keep it above a few minutes.",
    )
    openlineage_api_key: SecretStr | None = Field(
        None,
        description="The key OpenLineage clients send (HTTP transport, auth type api_key: "
        "`Authorization: Bearer <key>`) to the gateway's /api/v1/lineage; unset: the gateway refuses "
        "OpenLineage events. Or a file holding it in AIMS_OPENLINEAGE_API_KEY_FILE. Secret.",
    )
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

    # -- Kafka client security (every producer, consumer and admin client: events/kafka_clients.py) --
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT",
        validation_alias=_kafka_alias("SECURITY_PROTOCOL"),
        description="How clients talk to the brokers: PLAINTEXT (no authentication, no encryption: a "
        "local broker only), SSL (TLS, optionally with a client certificate), SASL_PLAINTEXT, SASL_SSL.",
    )
    kafka_sasl_mechanism: KafkaSaslMechanism = Field(
        "SCRAM-SHA-512",
        validation_alias=_kafka_alias("SASL_MECHANISM"),
        description="SASL mechanism for the SASL_* protocols. PLAIN sends the password itself: use it "
        "only over TLS.",
    )
    kafka_sasl_username: str | None = Field(
        None, validation_alias=_kafka_alias("SASL_USERNAME"), description="The SASL user (principal)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None,
        validation_alias=_kafka_alias("SASL_PASSWORD"),
        description="The SASL user's password; or a file holding it in KAFKA_SASL_PASSWORD_FILE. Secret.",
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        validation_alias=_kafka_alias("SSL_CAFILE"),
        description="PEM file of the CA(s) that signed the brokers' certificates; unset: the system's "
        "trust store.",
    )
    kafka_ssl_certfile: Path | None = Field(
        None,
        validation_alias=_kafka_alias("SSL_CERTFILE"),
        description="PEM client certificate (chain), for brokers that authenticate clients by TLS.",
    )
    kafka_ssl_keyfile: Path | None = Field(
        None, validation_alias=_kafka_alias("SSL_KEYFILE"), description="PEM private key of that certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        None,
        validation_alias=_kafka_alias("SSL_KEY_PASSWORD"),
        description="Password of an encrypted client key (or KAFKA_SSL_KEY_PASSWORD_FILE). Secret.",
    )
    kafka_ssl_check_hostname: bool = Field(
        True,
        validation_alias=_kafka_alias("SSL_CHECK_HOSTNAME"),
        description="Check that the broker's certificate names the host connected to. Turn off only "
        "for a broker whose certificate cannot name its address.",
    )
    kafka_local_brokers: int = Field(
        1,
        ge=1,
        le=5,
        description="Nodes of the local KRaft cluster `aims up` starts (`aims up --brokers 3`): three "
        "give replicated topics that survive a node, as in production.",
    )
    kafka_local_security: Literal["plaintext", "sasl_ssl"] = Field(
        "plaintext",
        description="How the broker `aims up` and the tests start listens: plaintext on 127.0.0.1, or "
        "SASL_SSL with a CA, certificates and SCRAM users generated in the state folder.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _secret_files_are_read(cls, value: Any) -> Any:
        # A *_FILE variable is read here, so a missing file is an error naming the variable.
        return value.read() if isinstance(value, SecretFile) else value

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> AimsSettings:
        # Caught when a process starts, not as an authentication failure at the first connection.
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and (self.kafka_sasl_username is None or self.kafka_sasl_password is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together: set both or neither")
        return self

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

    @field_validator("prefect_database_url")
    @classmethod
    def _prefect_database_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        # Prefect's server talks to PostgreSQL through asyncpg only; the message never quotes the URL.
        if value is not None and not value.get_secret_value().startswith("postgresql+asyncpg://"):
            raise ValueError(
                "must be a PostgreSQL URL for asyncpg: postgresql+asyncpg://user:password@host/db"
            )
        return value

    @field_validator("prefect_api_auth_string")
    @classmethod
    def _auth_string_has_a_password(cls, value: SecretStr | None) -> SecretStr | None:
        # Prefect compares the whole decoded "user:password"; the UI's login form splits at the first
        # colon, so without one (or without a password after it) nobody could log in there.
        if value is not None:
            user, colon, password = value.get_secret_value().partition(":")
            if not user or not colon or not password:
                raise ValueError("must be `user:password`, both parts non-empty")
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

    @model_validator(mode="after")
    def _flow_heartbeats_fit(self) -> AimsSettings:
        # Prefect sends no heartbeat more often than every 30 s; one late beat is not a dead run.
        beat = self.flow_heartbeat_seconds
        if 0 < beat < 30:
            raise ValueError(
                f"flow_heartbeat_seconds ({beat}) must be 0 (off) or at least 30, Prefect's minimum: "
                "set AIMS_FLOW_HEARTBEAT_SECONDS to 0 or 30 or more"
            )
        if beat and self.flow_unresponsive_after_seconds < 2 * beat:
            raise ValueError(
                f"flow_unresponsive_after_seconds ({self.flow_unresponsive_after_seconds:g}) must be at "
                f"least two heartbeats ({2 * beat} s): raise AIMS_FLOW_UNRESPONSIVE_AFTER_SECONDS or lower "
                "AIMS_FLOW_HEARTBEAT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _in_sync_fits_the_copies(self) -> AimsSettings:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.topic_replication:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) cannot exceed the topics' replication "
                f"factor ({self.topic_replication}): no write could ever succeed; lower "
                "AIMS_MIN_INSYNC_REPLICAS or raise AIMS_REPLICATION_FACTOR"
            )
        return self

    @property
    def topic_replication(self) -> int:
        """Copies of each topic: the setting, else up to 3 on a local cluster, 1 on an existing one."""
        if self.replication_factor is not None:
            return self.replication_factor
        return 1 if self.kafka_bootstrap_servers else min(3, self.kafka_local_brokers)

    @property
    def topic_min_insync(self) -> int:
        """Copies a write must reach: the setting, else one fewer than the copies, at least 1."""
        return self.min_insync_replicas or max(1, self.topic_replication - 1)

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
        variables = env_names(name, field)
        for variable in variables:
            if variable.lower() in folded:
                raw = folded[variable.lower()]
                values[name] = json.loads(raw) if _structured(field.annotation) else raw
                break
        else:
            if _secret(field.annotation):
                for variable in variables:
                    file_variable = variable + FILE_SUFFIX
                    if file_variable.lower() in folded:
                        values[name] = SecretFile(file_variable, folded[file_variable.lower()])
                        break
    return values


def _secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def load_settings(**overrides: object) -> AimsSettings:
    return AimsSettings(**overrides)
