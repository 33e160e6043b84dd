"""The router benchmark's parts (bench.router): its events (one of each type `aims demo` sends, made
unique) and `events.router.Router` run in a thread with a launcher that times each launch.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from bench.common import Progress
from connectors.prefect_runs import FINAL_STATE_NAMES

if TYPE_CHECKING:
    from connectors.prefect_api import FlowRunView, PrefectApi
    from events.kafka_clients import KafkaConnection
    from events.router import Router
    from schemas.events import AimsEvent
    from schemas.settings import AimsSettings


# Distinct subjects (Kafka keys) in the generated events: the router runs one subject's events in
# order, different subjects concurrently, so a realistic spread of AI systems and datasets.
SUBJECTS = 16


FLOOR_WARMUP = 5


STEADY_WARMUP = 3


TERMINAL = FINAL_STATE_NAMES


TARGET_RATIO = 0.8


TARGET_P99_CREATED_MS = 300.0


TARGET_P50_RUNNING_S = 2.0


def bench_root() -> Path:
    from schemas.settings import load_settings

    return load_settings().state_path / "bench"


def deployment_names() -> list[str]:
    from events.routing import ROUTES

    return sorted({r.deployment for routes in ROUTES.values() for r in routes})


def templates(folder: Path) -> list[AimsEvent]:
    """One event of each type, as `aims demo` publishes them (its data file included)."""
    from aims.demo import sample_events

    first: dict[str, AimsEvent] = {}
    for event in sample_events(folder):
        first.setdefault(event.type, event)
    return list(first.values())


def make_events(base: list[AimsEvent], count: int, label: str, tag: str) -> list[AimsEvent]:
    """`count` events cycling through the types, each with a unique id and one of SUBJECTS subjects."""
    events = []
    for i in range(count):
        template = base[i % len(base)]
        raw = template.model_dump(mode="json", exclude_none=True)
        raw["id"] = f"bench-{tag}-{label}-{i:06d}"
        raw.pop("subject", None)  # derived again from the payload field below
        subject_field = type(template).subject_field
        raw["data"][subject_field] = f"{raw['data'][subject_field]}-{i % SUBJECTS:02d}"
        events.append(type(template).model_validate(raw))
    return events


def runs_by_key(api: PrefectApi, keys: list[str]) -> dict[str, FlowRunView]:
    found: dict[str, FlowRunView] = {}
    for start in range(0, len(keys), 50):  # the API caps a page at 200 rows
        for run in api.runs_for_keys(keys[start : start + 50]):
            if run.idempotency_key is not None:
                found[run.idempotency_key] = run
    return found


Launches = dict[str, tuple[float, float]]  # idempotency key → (launch called, launch returned), epoch s


class TimedLauncher:
    """The real `PrefectLauncher`, timing each launch: the Prefect share of the router's latency."""

    def __init__(self, launches: Launches) -> None:
        from connectors.prefect_runs import PrefectLauncher

        self._inner = PrefectLauncher()
        self._launches = launches
        self._first_call: dict[str, float] = {}

    async def __aenter__(self) -> TimedLauncher:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._inner.__aexit__(*exc_info)

    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        start_at: datetime | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> UUID:
        # The router retries a launch that timed out: time from the first attempt.
        called = self._first_call.setdefault(idempotency_key, time.time())
        run_id = await self._inner.launch(deployment, parameters, idempotency_key, start_at, tags, name)
        self._launches[idempotency_key] = (called, time.time())
        return run_id

    async def stand_down(self, run_id: UUID, message: str) -> bool:
        return await self._inner.stand_down(run_id, message)

    async def resume(self, deployment: str, tag: str, run_input: dict[str, Any]) -> UUID | None:
        return await self._inner.resume(deployment, tag, run_input)


class RouterThread:
    """`events.router.Router` with the real PrefectLauncher (timed), run in a thread of this process."""

    def __init__(self, settings: AimsSettings, kafka: KafkaConnection, name: str) -> None:
        from events.router import Router
        from events.topics import ensure_topics, topic_specs

        ensure_topics(kafka, topic_specs(settings))
        self.launches: Launches = {}
        self.router: Router = Router(settings, kafka, lambda: TimedLauncher(self.launches), name=name)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"router-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.router.run()
        except BaseException as exc:  # noqa: BLE001 - reported by check() in the main thread
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the router crashed: {self.error!r}") from self.error
        if not self.thread.is_alive():
            raise RuntimeError("the router thread ended")

    def start(self, timeout: float = 90) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the router's thread without waiting for its partitions (several join together)."""
        self.thread.start()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.router.wait_ready(0.5):
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the router got no partitions within {timeout:.0f}s")

    @property
    def handled(self) -> int:
        return self.router.stats.routed + self.router.stats.dead_lettered

    def wait_handled(self, count: int, timeout: float, say: Progress, every: float = 10) -> None:
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + every
        while self.handled < count:
            self.check()
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"the router handled {self.handled} of {count} events in {timeout:.0f}s "
                    f"(last error: {self.router.stats.last_error or 'none'})"
                )
            if now > next_report:
                say(f"  … {self.handled}/{count} events routed")
                next_report = now + every
            time.sleep(0.05)

    def stop(self) -> None:
        self.router.stop()
        self.thread.join(60)
