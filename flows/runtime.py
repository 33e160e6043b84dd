"""The resources a flow run uses, built once per process by its composition root and handed in.

A flow-run process (the worker's, `infra/resources.py`) or a test builds one `Runtime` and installs
it with `use(...)` before the flow runs; flows and their tasks read it with `current()` and pass what
they need on to the pure code. Nothing here opens a connection or reads a setting by itself, so a
test hands in its register, its policy and its fakes instead of patching module attributes
(Dagster's resources: bound once, real and test implementations, passed in rather than looked up).

The policy is parsed at most once per runtime, on first use: a flow that never needs it (onboarding
a model) runs without a policy file.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.mlflow_registry import RegistryWriter
    from connectors.register.store import Register
    from connectors.slack import Chat
    from schemas.policy import Policy
    from schemas.settings import AimsSettings


class OutboxSender(Protocol):
    """Sends staged outbox rows now (Kafka in production); what cannot go stays for the relay."""

    def send(self, keys: Iterable[str], actor: str) -> int: ...


class NoRuntime(RuntimeError):
    """Flow code ran without a runtime: its composition root (worker, test) must install one."""


@dataclass
class Runtime:
    settings: AimsSettings
    register: Register
    # Parses the policy file, or None when there is none; called at most once (see `policy`).
    load_policy: Callable[[], Policy | None]
    chat: Chat | None = None
    tracker: IssueTracker | None = None
    # None where no broker is configured: staged rows then wait for the router's relay.
    outbox: OutboxSender | None = None
    # MLflow's model registry (AIMS_MLFLOW_TRACKING_URI), for the write-back; None when not set.
    mlflow: RegistryWriter | None = None
    _policy: tuple[Policy | None] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def optional_policy(self) -> Policy | None:
        """The policy, parsed on first use and kept (one parse per run); None without a policy file."""
        with self._lock:
            if self._policy is None:
                self._policy = (self.load_policy(),)
            return self._policy[0]

    @property
    def policy(self) -> Policy:
        """The policy; there is no sensible default for who may accept a risk, so none means stop."""
        from schemas.policy_file import PolicyMissing

        policy = self.optional_policy
        if policy is None:
            raise PolicyMissing(
                self.settings.policy_file, "the flows need the AIMS policy (risk scales, appetite, approvers)"
            )
        return policy

    @property
    def events_topic(self) -> str:
        return self.settings.events_topic


_installed: Runtime | None = None
# Where no composition root runs before the flow (Prefect's own engine): builds the runtime on first use.
_provider: Callable[[], Runtime] | None = None
_provider_lock = threading.Lock()


def install(runtime: Runtime | None) -> None:
    """Make `runtime` the one flow code uses in this process (None removes it)."""
    global _installed
    _installed = runtime


@contextlib.contextmanager
def use(runtime: Runtime) -> Iterator[Runtime]:
    """Install `runtime` for the duration of a block, then put back what was there (tests nest)."""
    before = _installed
    install(runtime)
    try:
        yield runtime
    finally:
        install(before)


def installed() -> bool:
    return _installed is not None


def provide(factory: Callable[[], Runtime] | None) -> None:
    """Have `current()` build the runtime with `factory` the first time flow code asks for it.

    For processes where no composition root of ours runs before the flow: Prefect's own engine
    (`python -m prefect.engine`, started by Prefect's process and Kubernetes workers) imports the
    deployment's entrypoint and runs the flow at once. The entrypoints (`infra/flow_process.py`) call
    this at import, which opens nothing; the register is opened when the run first needs it.
    """
    global _provider
    _provider = factory


def current() -> Runtime:
    global _installed
    if _installed is None and _provider is not None:
        # Tasks may run on threads: one runtime per process, built once.
        with _provider_lock:
            if _installed is None:
                _installed = _provider()
    if _installed is None:
        raise NoRuntime(
            "flow code ran without its resources: the worker installs them for each run "
            "(infra/resources.py); a test must install one with flows.runtime.use(Runtime(...))"
        )
    return _installed
