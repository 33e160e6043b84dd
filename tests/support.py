"""Helpers for integration tests: the session stack, routers, and reading outcomes back."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import SecretStr

from connectors.prefect_api import FlowRunView, PrefectApi
from events.kafka_clients import make_producer
from events.topics import ensure_topics, topic_specs
from infra.deployments import served, worker_ready
from infra.kafka_broker import KafkaBroker
from infra.postgres import PostgresServer, PostgresUnavailable
from infra.prefect_server import PrefectServer, prefect_client_env
from infra.processes import ManagedProcess, wait_until
from schemas.settings import AimsSettings, environment_values
from tests.jira_workflow import add_incident_workflow
from tests.kafka_reads import KafkaReads
from tests.people import prove_people

if TYPE_CHECKING:
    from connectors.register.store import Register
    from events.producer import EventPublisher
    from tests.fakes.jira import JiraFake
    from tests.fakes.slack import SlackFake

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
# Test-only credentials of the Slack and Jira fakes: nothing real is behind them.
SLACK_BOT_TOKEN = "xoxb-aims-test-bot"
SLACK_SIGNING_SECRET = "slack-signing-secret-for-tests"
JIRA_BOT = "aims-bot@northwind.example"
JIRA_BOT_TOKEN = "jira-bot-token-for-tests"
JIRA_WEBHOOK_SECRET = "jira-webhook-secret-for-tests"
# The key the session's flows, routers and CLI runs sign and check the system's own events with.
EVENT_SIGNING_KEY = "event-signing-key-for-tests-0123456789abcdef"

# Every session worker's settings (SessionStack.worker_env): a dead worker's claims and runs that died
# with their worker are scheduled again sooner than in production (infra.reclaim, infra.unresponsive).
WORKER_SETTINGS = {"AIMS_WORKER_RECLAIM_AFTER_SECONDS": "15", "AIMS_FLOW_UNRESPONSIVE_AFTER_SECONDS": "60"}

FILES_SOURCE = "test-files"  # the session policy's files data source (roots: the base temp folder)
MLFLOW_MODEL = "mlflow-it-model"  # the session policy maps it to MLFLOW_SYSTEM (mlflow.models)
MLFLOW_SYSTEM = "mlflow-it"
# The write-back tests' models (mapped like MLFLOW_MODEL), each its own AI system, so one test's
# pending approvals never hold another's versions; and the alias AIMS moves on approval.
MLFLOW_WRITTEN_MODEL = "mlflow-wb-model"
MLFLOW_WRITTEN_SYSTEM = "mlflow-wb"
MLFLOW_HAND_MODEL = "mlflow-hand-model"
MLFLOW_HAND_SYSTEM = "mlflow-hand"
MLFLOW_APPROVED_ALIAS = "production"


class SessionStack(KafkaReads):
    def __init__(self, state: Path, libs_dir: Path, data_root: Path | None = None) -> None:
        self.state = state
        self.data_root = data_root
        # The session runs as a production installation does: its broker on SASL_SSL (SCRAM over TLS)
        # and its Prefect server behind an auth string. AIMS_KAFKA_LOCAL_SECURITY=plaintext runs the
        # broker in plaintext instead (`aims up`'s default, which test_cli_stack covers either way).
        asked = "kafka_local_security" in environment_values(AimsSettings, os.environ)
        security = AimsSettings().kafka_local_security if asked else "sasl_ssl"
        self.broker = KafkaBroker(state, libs_dir=libs_dir, security=security)
        # The session's server requires an auth string, as the one `aims up` starts does.
        self.prefect_auth = SecretStr(f"aims-tests:{secrets.token_hex(16)}")
        self.server = PrefectServer(state, auth=self.prefect_auth)
        # On PostgreSQL, the production shape (`aims up --prefect-db postgres`): it creates runs about
        # three times as fast as SQLite on two cores, which the suite's bursts of events wait on.
        self.prefect_postgres: PostgresServer | None = None
        self.worker: ManagedProcess | None = None
        self.bootstrap = ""
        self.api_url = ""
        self._register: Register | None = None
        self.slack: SlackFake | None = None
        self.jira: JiraFake | None = None
        # Policy member → Slack user id; Jira API token per member (the fakes' workspace and site).
        self.slack_users: dict[str, str] = {}
        self.jira_tokens: dict[str, str] = {}
        self.jira_accounts: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.bootstrap = self.broker.start()
        self.server.database_url = self._prefect_database()
        self.api_url = self.server.start()
        # The in-process routers of the tests use the Prefect SDK: point it here before import.
        os.environ.update(prefect_client_env(self.state, self.api_url, auth=self.prefect_auth))
        os.environ["PREFECT_CLIENT_MAX_RETRIES"] = "0"  # as `aims router` runs it
        os.environ.update(self.broker.client_env())  # the address, and the user and CA with SASL_SSL
        # As `aims up` hands its processes the installation's key: the worker's flows sign what they
        # publish, the in-process routers check it (they read it through AimsSettings).
        os.environ["AIMS_EVENT_SIGNING_KEY"] = EVENT_SIGNING_KEY
        # Flows may write baseline suites: into a copy, never into the repository's suites/.
        shutil.copytree(REPO / "suites", self.suites_dir, dirs_exist_ok=True)
        os.environ["AIMS_SUITES_DIR"] = str(self.suites_dir)
        # Checks start at once unless a test asks for a coalescing window (`router(coalesce_seconds=…)`).
        policy = yaml.safe_load((REPO / "policy" / "aims-policy.yaml").read_text())
        policy["data_quality"]["coalesce_seconds"] = 0
        # Data-changed events name sources of the policy (issue 19): the tests' files, under the
        # session's temporary folder; SQL sources are declared by the tests that use them.
        if self.data_root is not None:
            policy["data_sources"] = {FILES_SOURCE: {"kind": "files", "roots": [str(self.data_root)]}}
            # The MLflow runs of tests/integration/test_mlflow_intake.py log their datasets there too.
            policy["mlflow"]["dataset_locations"] = [{"prefix": f"{self.data_root}/", "source": FILES_SOURCE}]
            # And the OpenLineage outputs of tests/integration/test_openlineage_intake.py ("file" datasets).
            location = {"namespace": "file", "prefix": f"{self.data_root}/", "source": FILES_SOURCE}
            policy["openlineage"] = {"dataset_locations": [location]}
        # The model the MLflow intake test registers through MLflow's client, mapped as a policy would.
        for model, system in [
            (MLFLOW_MODEL, MLFLOW_SYSTEM),
            (MLFLOW_WRITTEN_MODEL, MLFLOW_WRITTEN_SYSTEM),
            (MLFLOW_HAND_MODEL, MLFLOW_HAND_SYSTEM),
        ]:
            policy["mlflow"]["models"][model] = {
                "ai_system": system,
                "owner": "ml-platform",
                "intended_use": "Exercise the MLflow intake in the integration tests",
            }
        # Written back only where a test points the worker at an MLflow server (test_mlflow_intake).
        policy["mlflow"]["write_back"] = {"tags": True, "approved_alias": MLFLOW_APPROVED_ALIAS}
        self.start_fakes(policy)
        prove_people(policy, self.slack_users, self.jira_accounts)
        (self.state / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
        os.environ["AIMS_POLICY_FILE"] = str(self.state / "policy.yaml")
        ensure_topics(self.kafka, topic_specs(AimsSettings(state_dir=self.state)))  # where flows publish
        self.start_worker()

    def _prefect_database(self) -> str:
        """PostgreSQL for the session's Prefect server; SQLite where there are no server binaries
        (a note says so; in CI, AIMS_CI=1, PostgreSQL is required and its absence fails the session)."""
        self.prefect_postgres = PostgresServer(self.state, "prefect", database="prefect")
        try:
            self.prefect_postgres.start()
        except PostgresUnavailable as exc:
            self.prefect_postgres = None
            if required_in_ci():
                raise
            warnings.warn(f"the session's Prefect server runs on SQLite: {exc}", stacklevel=1)
            return self.server.database_url
        return self.prefect_postgres.url()

    def start_fakes(self, policy: dict[str, Any]) -> None:
        """Slack and Jira on loopback, with the policy's people, for every flow run of the session."""
        from tests.fakes.jira import JiraFake
        from tests.fakes.slack import SlackFake

        self.slack = SlackFake(bot_token=SLACK_BOT_TOKEN).start()
        self.jira = JiraFake().start()
        people = {m for g in policy["approver_groups"].values() for m in g["members"]}
        people |= {"ceo@northwind.example", "dev@northwind.example"}
        people |= {a["email"] for a in policy["management_review"]["attendees"]}
        for email in sorted(people):
            self.slack_users[email] = self.slack.add_user(email)
            self.jira_tokens[email] = f"jira-token-{email.split('@')[0]}"
            self.jira_accounts[email] = self.jira.add_user(
                email, email.split("@")[0].replace(".", " ").title(), self.jira_tokens[email]
            )
        self.jira.add_user(JIRA_BOT, "AIMS", JIRA_BOT_TOKEN)
        for group in policy["approver_groups"].values():
            if group.get("jira_project"):
                self.jira.add_project(group["jira_project"])
        self.jira.add_project(policy["incidents"]["jira_project"])
        if policy["management_review"].get("jira_project"):
            self.jira.add_project(policy["management_review"]["jira_project"])
        add_incident_workflow(self.jira, policy["incidents"].get("jira_statuses", {}))
        os.environ.update(
            {
                "AIMS_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
                "AIMS_SLACK_API_URL": self.slack.base_url,
                "AIMS_SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
                "AIMS_JIRA_URL": self.jira.url,
                "AIMS_JIRA_EMAIL": JIRA_BOT,
                "AIMS_JIRA_API_TOKEN": JIRA_BOT_TOKEN,
                "AIMS_JIRA_WEBHOOK_SECRET": JIRA_WEBHOOK_SECRET,
            }
        )

    @property
    def suites_dir(self) -> Path:
        return self.state / "suites"

    def stop(self) -> None:
        self.stop_worker()
        for fake in (self.slack, self.jira):
            if fake is not None:
                fake.stop()
        self.server.stop()
        if self.prefect_postgres is not None:
            self.prefect_postgres.stop()
        self.broker.stop()

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        # The worker keeps Prefect's own retries; routers turn them off themselves.
        env.pop("PREFECT_CLIENT_MAX_RETRIES", None)
        env.update(prefect_client_env(self.state, self.api_url, auth=self.prefect_auth))
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        env.update(extra)
        return env

    def worker_env(self, **extra: str) -> dict[str, str]:
        """What every `aims worker` of the session's pool runs with: the same settings, as a team's
        workers of one pool have (each keeps the pool's automation to its own setting)."""
        return self.env(**{**WORKER_SETTINGS, **extra})

    def start_worker(self, **settings: str) -> None:
        self.worker = ManagedProcess(
            "worker",
            [sys.executable, "-m", "aims", "worker"],
            self.state / "logs" / "worker.log",
            self.worker_env(**settings),
        )
        self.worker.start()
        api = self.api()
        try:
            wait_until(
                lambda: worker_ready(self.state, self.worker.pid if self.worker else None) and served(api),
                120,
                "worker",
                self.worker,
            )
        finally:
            api.close()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def ensure_worker(self, **settings: str) -> None:
        """The session's worker, started (with these settings over `WORKER_SETTINGS`) if it is not up."""
        if self.worker is None or not self.worker.alive():
            self.start_worker(**settings)

    @contextmanager
    def pool_paused(self) -> Iterator[None]:
        """The session's work pool paused in Prefect: runs are created and counted, none is handed to
        the worker, which stays up and warm (stopping and starting it again cost a minute a module)."""
        path = f"/work_pools/{AimsSettings().work_pool}"
        api = self.api()
        try:
            api.request("PATCH", path, json={"is_paused": True}).raise_for_status()
            yield
        finally:
            api.request("PATCH", path, json={"is_paused": False}).raise_for_status()
            api.close()

    # -- per test ----------------------------------------------------------------------------

    def settings(self, names: dict[str, str], **overrides: Any) -> AimsSettings:
        return AimsSettings(
            state_dir=self.state,
            events_topic=names["AIMS_EVENTS_TOPIC"],
            dead_letter_topic=names["AIMS_DEAD_LETTER_TOPIC"],
            consumer_group=names["AIMS_CONSUMER_GROUP"],
            **overrides,
        )

    def create_topics(self, names: dict[str, str]) -> None:
        ensure_topics(self.kafka, topic_specs(self.settings(names)))

    def api(self) -> PrefectApi:
        return PrefectApi(self.api_url, auth=self.prefect_auth)

    def publisher(self, topic: str) -> EventPublisher:
        """A publisher that sends as the system does (the CLI, the demo): urn:aims: events signed."""
        from events.producer import EventPublisher

        return EventPublisher(self.kafka, topic, signing_key=signing_key())

    def register(self) -> Register:
        """The register the session's flows and routers write (SQLite in the session's state folder)."""
        from connectors.register import open_register

        if self._register is None:
            self._register = open_register(AimsSettings(state_dir=self.state))
        return self._register

    @contextmanager
    def router(
        self,
        names: dict[str, str],
        coalesce_seconds: float = 0.0,
        outbox: bool = False,
        launcher: Any = None,
        **overrides: Any,
    ) -> Iterator[Any]:
        """An in-process router on a thread, stopped (commit, leave group) on exit; `launcher` is
        the class it starts runs with (Prefect's by default)."""
        from connectors.prefect_runs import PrefectLauncher
        from connectors.register.receipts import RegisterReceipts
        from events.outbox import OutboxRelay
        from events.router import Router

        relay = (
            OutboxRelay(self.register(), make_producer(self.kafka), "router:test", signing_key())
            if outbox
            else None
        )

        router = Router(
            self.settings(names, **overrides),
            self.kafka,
            launcher or PrefectLauncher,
            heartbeat_dir=self.state / "routers",
            receipts=RegisterReceipts(self.register(), actor="router:test"),
            coalesce_seconds=coalesce_seconds,
            outbox=relay,
        )
        thread = threading.Thread(target=router.run, name="test-router", daemon=True)
        thread.start()
        try:
            # A join the Kafka client lost is made afresh within three sessions (events.rebalance).
            assert router.wait_ready(90), "router did not get partitions within 90 s"
            yield router
        finally:
            router.stop()
            thread.join(60)
            if relay is not None:
                relay.producer.close(timeout=10)
            assert not thread.is_alive(), "router did not stop within 60 s of stop()"

    @contextmanager
    def default_topic_router(self, label: str) -> Iterator[Any]:
        """A router on the default events topic, where the flows publish, from its end on.

        For tests of flows that announce events other flows take (requests, decisions, updates):
        the earlier tests' events on that topic are left alone.
        """
        import uuid

        topic = AimsSettings().events_topic
        tag = uuid.uuid4().hex[:8]
        names = {
            "AIMS_EVENTS_TOPIC": topic,
            "AIMS_DEAD_LETTER_TOPIC": f"dlq.{label}-{tag}",
            "AIMS_CONSUMER_GROUP": f"router.{label}-{tag}",
        }
        self.create_topics(names)
        self.start_group_at_end(names["AIMS_CONSUMER_GROUP"], topic)
        with self.router(names, outbox=True) as running:
            yield running

    @contextmanager
    def gateway(self, name: str) -> Iterator[str]:
        """`aims gateway` as its own process on a free port, with the Jira fake's webhook on it; its URL."""
        import httpx

        from gateway.status_file import status_path

        status = status_path(self.state)
        status.unlink(missing_ok=True)
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", "aims", "gateway", "--port", "0"],
            self.state / "logs" / f"{name}.log",
            self.env(AIMS_STATE_DIR=str(self.state)),
        )
        proc.start()
        try:
            wait_until(status.exists, 60, name, proc)
            url = "http://127.0.0.1:{port}".format(**json.loads(status.read_text()))
            assert httpx.get(f"{url}/healthz", timeout=5).json()["status"] == "ok"
            if self.jira is not None:
                self.jira.set_webhook(f"{url}/jira/webhook", JIRA_WEBHOOK_SECRET)
            yield url
        finally:
            if self.jira is not None:
                self.jira.set_webhook(None)
            proc.stop()

    def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        key: str,
        start_at: datetime | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> str:
        """Start a run of a deployment directly, as the router would; its flow run id."""
        import anyio

        from connectors.prefect_runs import PrefectLauncher, TransientLaunchError

        async def go() -> str:
            async with PrefectLauncher() as launcher:
                # As the router does: the session's SQLite server answers 503 when busy; the key makes
                # a retry return the run a cut-short attempt may have created.
                for attempt in range(5):
                    try:
                        return str(await launcher.launch(deployment, parameters, key, start_at, tags, name))
                    except TransientLaunchError:
                        if attempt == 4:
                            raise
                        await anyio.sleep(1 + attempt)
                raise AssertionError("unreachable")

        return anyio.run(go)

    def aims(self, *args: str, **env: str) -> Any:
        """`aims ARGS` in a subprocess against the session's stack and register."""
        import subprocess

        return subprocess.run(
            [sys.executable, "-m", "aims", *args],
            capture_output=True,
            text=True,
            env=self.env(AIMS_STATE_DIR=str(self.state), **env),
            timeout=120,
        )

    def router_process(self, names: dict[str, str], name: str) -> ManagedProcess:
        proc = ManagedProcess(
            f"router-{name}",
            [sys.executable, "-m", "aims", "router", "--name", name],
            self.state / "logs" / f"router-{name}.log",
            self.env(AIMS_STATE_DIR=str(self.state), **names),
        )
        proc.start()
        return proc

    def heartbeat(self, name: str) -> dict[str, Any]:
        path = self.state / "routers" / f"router-{name}.json"
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def discard_runs(self, keys: list[str]) -> None:
        """Delete the runs of these events, so the worker does not spend later tests executing
        runs that were only created to count them."""
        api = self.api()
        try:
            for run in api.runs_for_keys(keys):
                api.delete_run(run.id)
            left = api.runs_for_keys(keys)
        finally:
            api.close()
        assert not left, f"{len(left)} runs could not be deleted"

    def wait_for_runs(
        self, keys: list[str], timeout: float = 180, states: set[str] | None = None
    ) -> list[FlowRunView]:
        """Flow runs for these idempotency keys, once every key has one (in `states`, if given)."""
        api = self.api()
        try:

            def ready() -> list[FlowRunView] | None:
                runs = api.runs_for_keys(keys)
                have = {r.idempotency_key for r in runs if states is None or r.state in states}
                return runs if have >= set(keys) else None

            return poll(ready, timeout, f"flow runs for {len(keys)} events")
        finally:
            api.close()


def required_in_ci() -> bool:
    """In CI (`.ci/run` sets AIMS_CI=1) PostgreSQL and Chromium are there: their tests fail, never skip."""
    return os.environ.get("AIMS_CI", "") not in ("", "0")


def signing_key() -> SecretStr:
    return SecretStr(EVENT_SIGNING_KEY)


def slack(stack: SessionStack) -> SlackFake:
    """The session's Slack fake (started with the stack)."""
    assert stack.slack is not None
    return stack.slack


def jira(stack: SessionStack) -> JiraFake:
    """The session's Jira fake (started with the stack)."""
    assert stack.jira is not None
    return stack.jira


def jira_move(stack: SessionStack, key: str, who: str, transition: str, comment: str | None = None) -> None:
    """A person moves the Jira issue along a transition, as they would in Jira's UI."""
    from jira import JIRA

    client = JIRA(server=jira(stack).url, basic_auth=(who, stack.jira_tokens[who]), max_retries=0)
    client.transition_issue(key, transition, comment=comment)


def poll(fn: Callable[[], T | None], timeout: float, what: str, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
