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

The probes are in aims.status_probes, the routers' heartbeats in aims.status_routers; this module puts
their answers together and renders them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aims.endpoints import Endpoints
from aims.status_probes import (
    HEARTBEAT_MAX_BYTES,
    KAFKA_PENDING,
    NO_KAFKA,
    Budget,
    Probe,
    Section,
    gateway_probe,
    kafka_probe,
    prefect_probe,
    run_probes,
)
from aims.status_routers import (
    HEARTBEAT_FORGET_SECONDS,
    HEARTBEAT_STALE_SECONDS,
    read_routers,
    router_view,
)
from schemas.settings import AimsSettings

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
    "HEARTBEAT_FORGET_SECONDS",
    "HEARTBEAT_MAX_BYTES",
    "HEARTBEAT_STALE_SECONDS",
    "NO_KAFKA",
    "Budget",
    "Probe",
    "Section",
    "collect",
    "gateway_probe",
    "healthy",
    "kafka_probe",
    "prefect_probe",
    "read_routers",
    "render",
    "router_view",
    "routers_line",
    "routers_probe",
    "run_probes",
]

DEFAULT_DEADLINE_SECONDS = 3.0


# -- routers ---------------------------------------------------------------------------------


# Here, not beside read_routers: it looks read_routers up in this module, where tests replace it.
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
                Section(KAFKA_PENDING, bootstrap=endpoints.bootstrap or None),
                kafka_probe(settings, endpoints.kafka),
            ),
            "prefect": (
                Section({"reachable": "error", "runs": "runs_error"}, api=endpoints.prefect_api_url),
                prefect_probe(endpoints.prefect_api_url, endpoints.prefect_auth),
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
