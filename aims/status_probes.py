"""The probes of `aims status` and the deadline they share: each runs in a daemon thread of its own and
fills its section as answers arrive; what it did not learn by the deadline is unknown, with the reason.

Kafka (reachable, topics, lag), Prefect (health, recent runs) and the gateway (its status file, then
/healthz). The routers' heartbeat files are read in aims.status_routers; aims.status puts it together.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aims.status_routers import HEARTBEAT_MAX_BYTES
from events.routing import ROUTES
from schemas.settings import AimsSettings

if TYPE_CHECKING:
    from pydantic import SecretStr

    from events.kafka_clients import KafkaConnection

NO_KAFKA = "no Kafka configured (start the stack with `aims up`, or set KAFKA_BOOTSTRAP_SERVERS)"


# -- the deadline and the sections the probes fill ---------------------------------------------


class Budget:
    """The overall deadline, shared by the probes so that every client timeout ends with it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        # Never 0: a zero timeout means "no timeout" to some clients.
        return max(0.05, self._end - time.monotonic())

    def left_ms(self) -> int:
        return max(50, int(self.left() * 1000))

    @property
    def no_answer(self) -> str:
        return f"no answer within {self.seconds:g} s"


class Section:
    """What one probe has learnt so far. The probe sets fields from its thread as answers arrive;
    `result` takes a copy at any moment, so a probe still waiting at the deadline keeps what it got.

    `pending` maps each field that must be either known or explained to the key of its reason.
    """

    def __init__(self, pending: Mapping[str, str], **known: Any) -> None:
        self._pending = dict(pending)
        self._data: dict[str, Any] = dict(known)
        self._lock = threading.Lock()

    def set(self, **values: Any) -> None:
        with self._lock:
            self._data.update(values)

    def unknown(self, reason: str, *fields: str) -> None:
        """These fields (default: all not yet known) are unknown for this reason."""
        with self._lock:
            self._fill(reason, fields or tuple(self._pending))

    def result(self, reason: str) -> dict[str, Any]:
        """A copy, with every field still missing reported as unknown for `reason`."""
        with self._lock:
            self._fill(reason, tuple(self._pending))
            return dict(self._data)

    def _fill(self, reason: str, fields: Iterable[str]) -> None:
        for field in fields:
            if field not in self._data:
                self._data[field] = None
                self._data.setdefault(self._pending[field], reason)


Probe = Callable[[Section, Budget], None]


def run_probes(probes: Mapping[str, tuple[Section, Probe]], seconds: float) -> dict[str, dict[str, Any]]:
    """Run every probe concurrently; return each section as it stands at the deadline."""
    budget = Budget(seconds)
    failures: dict[str, str] = {}

    def guarded(name: str, section: Section, probe: Probe) -> None:
        try:
            probe(section, budget)
        except Exception as exc:  # noqa: BLE001 - whatever a probe raises is reported in its section
            failures[name] = _reason(exc, budget)
            section.unknown(failures[name])
            section.set(probe_error=failures[name])

    threads = {
        name: threading.Thread(
            target=guarded, args=(name, section, probe), name=f"aims-status-{name}", daemon=True
        )
        for name, (section, probe) in probes.items()
    }
    for thread in threads.values():
        thread.start()
    end = time.monotonic() + seconds
    for thread in threads.values():
        thread.join(max(0.0, end - time.monotonic()))
    out = {}
    for name, (section, _) in probes.items():
        # A probe that returned without explaining a field is a bug, but still not a reason to say 0.
        reason = budget.no_answer if threads[name].is_alive() else failures.get(name, "not reported")
        out[name] = section.result(reason)
    return out


def _reason(exc: BaseException, budget: Budget) -> str:
    """Why a probe failed, in the words an operator searches for."""
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return "connection refused"
    # By class name: importing httpx or kafka only to classify an error would spend the deadline.
    classes = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or classes & {"TimeoutException", "KafkaTimeoutError"}:
        return budget.no_answer
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if "HTTPStatusError" in classes and getattr(getattr(exc, "response", None), "status_code", None) == 401:
        return "HTTP 401: the Prefect API requires its auth string (set PREFECT_API_AUTH_STRING)"
    text, name = str(exc).strip()[:300], type(exc).__name__
    return text if name in text else f"{name}: {text}" if text else name


# -- Kafka -------------------------------------------------------------------------------------

KAFKA_PENDING = {
    "reachable": "error",
    "topics": "topics_error",
    "messages": "messages_error",
    "group_members": "group_members_error",
    "lag": "lag_error",
    "lag_total": "lag_error",
}


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        item = item.strip().rpartition("://")[2]
        host, _, port = item.rpartition(":")
        if host and port.isdigit():
            out.append((host.strip("[]"), int(port)))
    return out


def _tcp_check(bootstrap: str, budget: Budget) -> tuple[bool | None, str | None]:
    """A plain TCP connect: says "refused" at once, where a Kafka client would retry until its
    timeout. (True, None) when some bootstrap address accepts; else (False|None, why)."""
    addresses = _addresses(bootstrap)
    if not addresses:
        return False, f"cannot read a host:port in {bootstrap!r}"
    reasons: list[tuple[bool | None, str]] = []
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=budget.left()):
                return True, None
        except OSError as exc:
            # A timeout says nothing about whether Kafka is up; a refusal or a bad name does.
            up = None if isinstance(exc, TimeoutError) else False
            reasons.append((up, _reason(exc, budget)))
    up = None if any(r[0] is None for r in reasons) else False
    if len(addresses) == 1:
        return up, reasons[0][1]
    return up, "; ".join(f"{h}:{p}: {r[1]}" for (h, p), r in zip(addresses, reasons, strict=True))


def kafka_probe(settings: AimsSettings, kafka: KafkaConnection) -> Probe:
    bootstrap = kafka.bootstrap

    def probe(section: Section, budget: Budget) -> None:
        if not bootstrap:
            section.set(reachable=False, error=NO_KAFKA)
            section.unknown(NO_KAFKA)
            return
        up, why = _tcp_check(bootstrap, budget)
        if why is not None:
            section.set(reachable=up, error=why)
            section.unknown(why)
            return
        _ask_kafka(section, budget, settings, kafka)

    return probe


def _ask_kafka(section: Section, budget: Budget, settings: AimsSettings, kafka: KafkaConnection) -> None:
    from kafka.errors import KafkaError, KafkaTimeoutError

    from events.kafka_clients import KafkaSecurityError, make_admin

    ms = budget.left_ms()
    try:
        # The admin client bootstraps (connects, asks for metadata) in its constructor; with the
        # defaults that is where a dead broker cost 30 s.
        admin = make_admin(
            kafka,
            client_id="aims-status",
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            reconnect_backoff_ms=50,
            reconnect_backoff_max_ms=250,
        )
    except KafkaSecurityError as exc:
        # It answers, but refuses us or we do not trust it: the message names the setting to fix.
        section.set(reachable=False, error=str(exc))
        section.unknown(str(exc))
        return
    except KafkaError as exc:
        why = _reason(exc, budget)
        section.set(reachable=None if isinstance(exc, KafkaTimeoutError) else False, error=why)
        section.unknown(why)
        return
    try:
        brokers = admin.describe_cluster().get("brokers")
        section.set(reachable=bool(brokers), error=None if brokers else "the cluster lists no brokers")
        _ask_topics_and_lag(section, budget, settings, admin)
    finally:
        admin.close()


def _ask_topics_and_lag(section: Section, budget: Budget, settings: AimsSettings, admin: Any) -> None:
    from kafka import OffsetSpec
    from kafka.errors import KafkaError
    from kafka.structs import TopicPartition

    topics: dict[str, int] = {}
    for topic in admin.describe_topics([settings.events_topic, settings.dead_letter_topic]):
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            topics[topic["name"]] = len(topic["partitions"])
    wanted = (settings.events_topic, settings.dead_letter_topic)
    section.set(topics=topics, topics_error=None, topics_missing=[t for t in wanted if t not in topics])

    group = settings.consumer_group
    committed: dict[Any, Any] | None = None
    try:
        committed = admin.list_group_offsets(group).get(group, {})
    except KafkaError as exc:
        section.unknown(f"committed offsets: {_reason(exc, budget)}", "lag", "lag_total")
    try:
        described = admin.describe_groups([group]).get(group) or {}
        section.set(group_members=len(described.get("members") or []), group_members_error=None)
    except KafkaError as exc:
        section.unknown(_reason(exc, budget), "group_members")

    partitions = [TopicPartition(t, p) for t, count in topics.items() for p in range(count)]
    if not partitions:
        section.set(messages={}, messages_error=None)
        section.unknown(f"topic {settings.events_topic} does not exist", "lag", "lag_total")
        return
    ends = {
        tp: o.offset
        for tp, o in admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST)).items()
    }
    section.set(
        messages={t: sum(o for tp, o in ends.items() if tp.topic == t) for t in topics}, messages_error=None
    )
    if settings.events_topic not in topics:
        section.unknown(f"topic {settings.events_topic} does not exist", "lag", "lag_total")
        return
    if committed is None:
        return
    mine = [tp for tp in partitions if tp.topic == settings.events_topic]
    # A partition the group never committed is read from its earliest offset (auto_offset_reset).
    fresh = [tp for tp in mine if tp not in committed or committed[tp].offset < 0]
    starts = {}
    if fresh:
        starts = {
            tp: o.offset
            for tp, o in admin.list_partition_offsets(dict.fromkeys(fresh, OffsetSpec.EARLIEST)).items()
        }
    lag = {
        tp.partition: max(0, ends[tp] - (starts[tp] if tp in starts else committed[tp].offset)) for tp in mine
    }
    section.set(lag=lag, lag_total=sum(lag.values()), lag_error=None)


# -- Prefect and the gateway -------------------------------------------------------------------


def prefect_probe(api_url: str | None, auth: SecretStr | None = None) -> Probe:
    def probe(section: Section, budget: Budget) -> None:
        if not api_url:
            why = "no Prefect API (start the stack with `aims up`, or set PREFECT_API_URL)"
            section.set(reachable=False, error=why)
            section.unknown(why)
            return
        import httpx

        from connectors.prefect_api import PrefectApi

        api = PrefectApi(api_url, timeout=budget.left(), auth=auth)
        try:
            try:
                response = _prefect_health(api, budget)
            except httpx.HTTPError as exc:
                why = _reason(exc, budget)
                section.set(reachable=None if why == budget.no_answer else False, error=why)
                section.unknown(why)
                return
            if response.status_code != 200:
                why = f"/health answered HTTP {response.status_code}"
                section.set(reachable=False, error=why)
                section.unknown(why)
                return
            section.set(reachable=True, error=None)
            try:
                runs = api.recent_runs(limit=200)
            except httpx.HTTPError as exc:
                section.unknown(_reason(exc, budget), "runs")
                return
            by_event: dict[str, Any] = {}
            for event_type, routes in ROUTES.items():
                for route in routes:
                    mine = [r for r in runs if r.flow_name == route.flow_name]
                    by_event[event_type] = {
                        "deployment": route.deployment,
                        "states": dict(Counter(r.state for r in mine)),
                        "latest": mine[0].created if mine else None,
                    }
            section.set(runs=by_event, runs_error=None)
        finally:
            api.close()

    return probe


def _prefect_health(api: Any, budget: Budget) -> Any:
    """GET /health, once per transport error: PrefectApi's own retries back off for seconds, and a
    refusal is the answer here, not something to wait out. A busy server (429, or 503 while its
    SQLite database is locked) is asked again while the deadline allows."""
    while True:
        response = api.request("GET", "/health", attempts=1, timeout=budget.left())
        if response.status_code not in (429, 503) or budget.left() < 0.5:
            return response
        time.sleep(0.2)


def gateway_probe(state_path: Path) -> Probe:
    """Where `aims gateway` listens (it says so in the state folder) and what its health check says."""

    def probe(section: Section, budget: Budget) -> None:
        import httpx

        from gateway.status_file import status_path

        path = status_path(state_path)
        try:
            where = json.loads(path.read_bytes()[:HEARTBEAT_MAX_BYTES])
            url = f"http://{where['host']}:{int(where['port'])}"
        except FileNotFoundError:
            section.set(url=None, reachable=False, error="not running")
            return
        except (OSError, ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            section.set(url=None, reachable=False, error=f"unreadable {path.name}: {_reason(exc, budget)}")
            return
        section.set(url=url)
        try:
            response = httpx.get(f"{url}/healthz", timeout=budget.left())
            health = response.json()
        except httpx.HTTPError as exc:
            why = _reason(exc, budget)
            section.set(reachable=None if why == budget.no_answer else False, error=why)
            return
        except ValueError:
            section.set(reachable=False, error=f"/healthz answered HTTP {response.status_code}, not JSON")
            return
        if not isinstance(health, dict):
            section.set(reachable=False, error="/healthz answered something other than an object")
            return
        ok = health.get("status") == "ok"
        extra = {k: v for k, v in health.items() if k not in ("url", "reachable", "error")}
        section.set(**extra, reachable=ok, error=None if ok else f"/healthz says {health.get('status')!r}")

    return probe
