"""`aims status`: is everything up, how far behind is the router, what ran recently.

It must answer quickly and must not mislead while something is broken, because that is when it is
read. So:
- every probe (Kafka, Prefect, the gateway, the routers' heartbeat files) runs in a daemon thread of
  its own, with client timeouts no longer than the time left, under one overall deadline; daemon
  threads because the interpreter joins non-daemon ones (`ThreadPoolExecutor`'s too) at exit, which
  would make the command last as long as the slowest probe;
- a probe fills its section as answers arrive; at the deadline, or when the probe fails, whatever it
  did not learn is reported as unknown (`None`) with the reason, never as 0 or as up;
- a router counts as alive only with a fresh heartbeat and partitions to route; the heartbeat files
  of routers whose process is gone are removed, so dead routers are not listed forever.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aims.endpoints import Endpoints
from events.routing import ROUTES
from schemas.settings import AimsSettings

DEFAULT_DEADLINE_SECONDS = 3.0
# A router writes its heartbeat every ~2 s; a beat older than this says nothing about it.
HEARTBEAT_STALE_SECONDS = 15
# A stale heartbeat from another host (whose process we cannot check) is no longer listed after this.
HEARTBEAT_FORGET_SECONDS = 600
# Heartbeats are a few hundred bytes; reading more than this is reading something else.
HEARTBEAT_MAX_BYTES = 64 * 1024
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
    text, name = str(exc).strip()[:300], type(exc).__name__
    return text if name in text else f"{name}: {text}" if text else name


# -- Kafka -------------------------------------------------------------------------------------

_KAFKA_PENDING = {
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


def kafka_probe(settings: AimsSettings, bootstrap: str) -> Probe:
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
        _ask_kafka(section, budget, settings, bootstrap)

    return probe


def _ask_kafka(section: Section, budget: Budget, settings: AimsSettings, bootstrap: str) -> None:
    from kafka.errors import KafkaError, KafkaTimeoutError

    from events.kafka_clients import make_admin

    ms = budget.left_ms()
    try:
        # The admin client bootstraps (connects, asks for metadata) in its constructor; with the
        # defaults that is where a dead broker cost 30 s.
        admin = make_admin(
            bootstrap,
            client_id="aims-status",
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            reconnect_backoff_ms=50,
            reconnect_backoff_max_ms=250,
        )
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


def prefect_probe(api_url: str | None) -> Probe:
    def probe(section: Section, budget: Budget) -> None:
        if not api_url:
            why = "no Prefect API (start the stack with `aims up`, or set PREFECT_API_URL)"
            section.set(reachable=False, error=why)
            section.unknown(why)
            return
        import httpx

        from connectors.prefect_api import PrefectApi

        api = PrefectApi(api_url, timeout=budget.left())
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

        from gateway.app import status_path

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


# -- routers -----------------------------------------------------------------------------------


def _printable(value: object, limit: int = 200) -> str | None:
    """Heartbeat text reaches a terminal: no control characters, bounded length."""
    if not isinstance(value, str):
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _time(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # JSON integers have no bound
        return None
    return seconds if math.isfinite(seconds) else None


def _partition_list(value: object) -> list[int] | None:
    """The partitions a router holds; None (unknown) unless it is a list of partition numbers."""
    if not isinstance(value, list):
        return None
    numbers = [_count(p) for p in value]
    if any(n is None for n in numbers):
        return None
    return sorted({n for n in numbers if n is not None})


def _process_running(pid: int) -> bool | None:
    if pid <= 0:  # 0 and negative numbers name process groups, not a process
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it belongs to another user
    except (OSError, OverflowError):  # OverflowError: a number no process can have
        return None
    return True


def _read_beat(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        with path.open("rb") as f:
            beat = json.loads(f.read(HEARTBEAT_MAX_BYTES))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if not isinstance(beat, dict):
        return None, f"a JSON {type(beat).__name__}, not an object"
    return beat, None


def router_view(path: Path, now: float, hostname: str) -> tuple[str, dict[str, Any] | None]:
    """What `aims status` says about one heartbeat file: ("listed", view); ("gone", None) when its
    process is not running on this host (the file is removed); ("forgotten", None) when nothing was
    heard from it for too long, or the file went away while we looked (the router stopped)."""
    try:
        written = path.stat().st_mtime
    except OSError:
        return "forgotten", None
    beat, unreadable = _read_beat(path)
    fallback_name = path.stem.removeprefix("router-")
    if beat is None:
        if now - written > HEARTBEAT_FORGET_SECONDS:
            return "forgotten", None
        return "listed", {
            "name": fallback_name,
            "condition": "unreadable",
            "alive": False,
            "error": unreadable,
        }
    # Heartbeats from older routers lack host and partitions: the host is then this one, and
    # partitions are unknown.
    host = _printable(beat.get("host")) or hostname
    pid = _count(beat.get("pid"))
    at = _time(beat.get("at"))
    running = _process_running(pid) if host == hostname and pid is not None else None
    if running is False:
        # In a read-only state folder the file stays, but it is still not listed: its process is gone.
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return "gone", None
    age = None if at is None else now - at
    fresh = age is not None and abs(age) < HEARTBEAT_STALE_SECONDS
    partitions = _partition_list(beat.get("partitions"))
    state = _printable(beat.get("state"), 20)
    holding = state == "holding" or (state is None and beat.get("holding") is True)
    if not fresh:
        # Listed as long as its process exists; otherwise for a while (we cannot look on another host).
        silent = age if age is not None and age > 0 else now - written
        if running is not True and silent > HEARTBEAT_FORGET_SECONDS:
            return "forgotten", None
        condition = "stale"
    elif holding:
        condition = "holding"
    elif partitions is None:
        condition = "unknown"
    else:
        condition = "routing" if partitions else "idle"
    return "listed", {
        "name": _printable(beat.get("name")) or fallback_name,
        "condition": condition,
        # Alive means doing its job: a fresh beat, with partitions to route.
        "alive": fresh and bool(partitions),
        "host": host,
        "pid": pid,
        "at": at,
        "age_seconds": None if age is None else round(age, 1),
        "partitions": partitions,
        "state": state,
        "holding_on": _printable(beat.get("holding_on"), 40),
        "in_flight": _count(beat.get("in_flight")),
        "waiting_subjects": _count(beat.get("waiting_subjects")),
        "consumed": _count(beat.get("consumed")),
        "routed": _count(beat.get("routed")),
        "dead_lettered": _count(beat.get("dead_lettered")),
        "last_error": _printable(beat.get("last_error"), 300),
    }


def read_routers(directory: Path, now: float, hostname: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The routers to list, and the names of the gone ones whose heartbeat files were removed."""
    listed, removed = [], []
    for path in sorted(directory.glob("router-*.json")):
        verdict, view = router_view(path, now, hostname)
        if view is not None:
            listed.append(view)
        elif verdict == "gone":
            removed.append(path.stem.removeprefix("router-"))
    return listed, removed


def routers_probe(directory: Path) -> Probe:
    def probe(section: Section, budget: Budget) -> None:
        routers, removed = read_routers(directory, time.time(), socket.gethostname())
        section.set(routers=routers, removed=removed, error=None)

    return probe


# -- collect -----------------------------------------------------------------------------------


def collect(
    settings: AimsSettings, endpoints: Endpoints, deadline: float = DEFAULT_DEADLINE_SECONDS
) -> dict[str, Any]:
    sections = run_probes(
        {
            "kafka": (
                Section(_KAFKA_PENDING, bootstrap=endpoints.bootstrap or None),
                kafka_probe(settings, endpoints.bootstrap),
            ),
            "prefect": (
                Section({"reachable": "error", "runs": "runs_error"}, api=endpoints.prefect_api_url),
                prefect_probe(endpoints.prefect_api_url),
            ),
            "gateway": (Section({"reachable": "error"}, url=None), gateway_probe(settings.state_path)),
            "routers": (Section({"routers": "error"}), routers_probe(settings.state_path / "routers")),
        },
        deadline,
    )
    routers = sections["routers"]
    return {
        "kafka": sections["kafka"],
        "gateway": sections["gateway"],
        "routers": routers["routers"],
        "routers_error": routers.get("error"),
        "routers_removed": routers.get("removed") or [],
        "prefect": sections["prefect"],
        "ui": endpoints.prefect_ui_url,
        "deadline_seconds": deadline,
    }


def healthy(status: Mapping[str, Any]) -> bool:
    """Kafka and Prefect both answered; unknown is not up."""
    return status["kafka"].get("reachable") is True and status["prefect"].get("reachable") is True


# -- render ------------------------------------------------------------------------------------


def _ranges(numbers: Iterable[int]) -> str:
    """[0, 1, 2, 3, 5] -> "0-3, 5"."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(set(numbers)):
        if run and n != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(n)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "at an unknown time"
    if seconds < 0:
        return f"{-seconds:.0f} s in the future (clocks apart?)"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def _word(reachable: object) -> str:
    if reachable is True:
        return "up"
    return "DOWN" if reachable is False else "unknown"


def _service_line(label: str, section: Mapping[str, Any], where: str) -> str:
    line = f"{label:9} {_word(section.get('reachable')):5} {where}"
    return line if section.get("reachable") is True else f"{line}   {section.get('error') or ''}".rstrip()


def _gateway_line(g: Mapping[str, Any]) -> str:
    if not g.get("url"):
        why = g.get("error") or "not running"
        if why == "not running":
            return "Gateway   -     not running (Slack and Jira decisions are not taken)"
        return f"Gateway   -     {why}"
    if g.get("reachable") is not True:
        return _service_line("Gateway", g, g["url"])
    channels = ", ".join(n for n in ("slack", "jira") if g.get(n)) or "no Slack or Jira configured"
    work = (
        f"{g.get('pending_approvals', 0)} approvals pending; {g.get('open_incidents', 0)} incidents open"
        f" ({g.get('art73_clocks_running', 0)} Art. 73 clocks running)"
    )
    return f"Gateway   up    {g['url']}   {work}; {channels}"


def routers_line(routers: list[dict[str, Any]] | None, kafka: Mapping[str, Any], why: str | None) -> str:
    """The summary, e.g.
    "Routers   2 routing (partitions 0-3), 1 idle (no partitions), 1 stale; 3 in the consumer group"."""
    members = kafka.get("group_members")
    group = (
        f"{members} in the consumer group"
        if members is not None
        else f"consumer group unknown ({kafka.get('group_members_error') or 'not asked'})"
    )
    if routers is None:
        return f"Routers   unknown ({why}); {group}"
    by: dict[str, list[dict[str, Any]]] = {}
    for r in routers:
        by.setdefault(r["condition"], []).append(r)
    routing = by.get("routing", [])
    held = _ranges(p for r in routing for p in r.get("partitions") or [])
    parts = [f"{len(routing)} routing" + (f" (partitions {held})" if held else "")]
    if by.get("holding"):
        on = sorted({r.get("holding_on") or "unknown" for r in by["holding"]})
        parts.append(f"{len(by['holding'])} holding (on {', '.join(on)})")
    if by.get("idle"):
        parts.append(f"{len(by['idle'])} idle (no partitions)")
    if by.get("unknown"):
        parts.append(f"{len(by['unknown'])} with partitions unknown")
    for condition in ("stale", "unreadable"):
        if by.get(condition):
            parts.append(f"{len(by[condition])} {condition}")
    return f"Routers   {', '.join(parts)}; {group}"


def _router_detail(r: Mapping[str, Any]) -> str:
    condition = r["condition"]
    if condition == "unreadable":
        return f"heartbeat file unreadable ({r.get('error')})"
    partitions = r.get("partitions")
    held = f"partitions {_ranges(partitions)}" if partitions else "no partitions"
    in_flight = f", {r['in_flight']} in flight" if r.get("in_flight") else ""
    if condition == "stale":
        where = f" (host {r['host']}, pid {r.get('pid')})"
        detail = f"last beat {_ago(r.get('age_seconds'))}; unknown whether it is alive{where}"
    elif condition == "holding":
        error = r.get("last_error") or "no error recorded"
        detail = f"on {r.get('holding_on') or 'unknown'}, last error: {error}; {held}{in_flight}"
    elif condition == "unknown":
        detail = "partitions unknown (a heartbeat without them: an older router?)"
    elif condition == "idle":
        detail = "no partitions" + (" (joining the consumer group)" if r.get("state") == "joining" else "")
    else:
        detail = held + in_flight

    def n(key: str) -> str:
        return "?" if r.get(key) is None else str(r[key])

    return f"{detail}  routed={n('routed')} dead-lettered={n('dead_lettered')}"


def render(status: Mapping[str, Any]) -> str:
    k, p = status["kafka"], status["prefect"]
    lines = [
        _service_line("Kafka", k, k.get("bootstrap") or "(not configured)"),
        _service_line("Prefect", p, f"{p.get('api') or '(not configured)'}   UI: {status.get('ui') or '-'}"),
        _gateway_line(status.get("gateway") or {}),
        "",
        "Topics",
    ]
    topics, messages = k.get("topics"), k.get("messages") or {}
    if topics is None:
        lines.append(f"  unknown ({k.get('topics_error')})")
    for topic, parts in (topics or {}).items():
        count = messages.get(topic)
        lines.append(f"  {topic:30} {parts} partitions, {'?' if count is None else count} messages")
    for topic in k.get("topics_missing") or []:
        lines.append(f"  {topic:30} missing (the router creates it when it starts)")
    lag = k.get("lag")
    if lag is None:
        lines.append(f"Consumer lag  unknown ({k.get('lag_error')})")
    else:
        each = "  ".join(f"p{p}={v}" for p, v in sorted(lag.items()))
        lines.append(f"Consumer lag  {k.get('lag_total')} total  {each}".rstrip())
    routers = status.get("routers")
    lines.append(routers_line(routers, k, status.get("routers_error")))
    for r in routers or []:
        # Upper case where someone has to act, as the DOWN of a service.
        condition = "HOLDING" if r["condition"] == "holding" else r["condition"]
        lines.append(f"  {r['name']:28} {condition:10} {_router_detail(r)}")
    lines.append("")
    runs = p.get("runs")
    if runs is None:
        lines.append(f"Recent flow runs  unknown ({p.get('runs_error')})")
    else:
        lines.append("Recent flow runs (last 200)")
        for event_type, info in runs.items():
            states = ", ".join(f"{s}={n}" for s, n in sorted(info["states"].items())) or "none"
            lines.append(f"  {event_type:38} → {info['deployment']:28} {states}")
    return "\n".join(lines)
