"""Runtime settings, read from the environment (prefix AIMS_) when a command starts.

Nothing here reads the environment at import time: call `load_settings()`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AimsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIMS_", extra="ignore", frozen=True)

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
    work_pool: str = Field(
        "aims", min_length=1, description="The Prefect work pool the deployments and `aims worker` share."
    )
    worker_poll_seconds: float = Field(
        0.5, ge=0.1, le=60, description="How often the worker polls its work pool for new runs (s)."
    )
    warm_processes: int = Field(
        3, ge=0, le=32, description="Flow-run processes the worker keeps started ahead of need."
    )

    @property
    def state_path(self) -> Path:
        return self.state_dir.resolve()


def load_settings(**overrides: object) -> AimsSettings:
    return AimsSettings(**overrides)  # type: ignore[arg-type]
