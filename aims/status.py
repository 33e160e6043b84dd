"""`aims status`: is everything up, how far behind is the router, what ran recently."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from aims.endpoints import Endpoints
from events.routing import ROUTES
from schemas.settings import AimsSettings

HEARTBEAT_STALE_SECONDS = 15


def _kafka_status(settings: AimsSettings, bootstrap: str) -> dict[str, Any]:
    from kafka.errors import KafkaError
    from kafka.structs import TopicPartition

    from events.kafka_clients import make_admin, make_consumer

    out: dict[str, Any] = {"bootstrap": bootstrap, "reachable": False, "topics": {}, "lag": {}}
    try:
        admin = make_admin(bootstrap, request_timeout_ms=5000)
    except KafkaError as exc:
        out["error"] = str(exc)
        return out
    try:
        out["reachable"] = bool(admin.describe_cluster().get("brokers"))
        wanted = [settings.events_topic, settings.dead_letter_topic]
        for topic in admin.describe_topics(wanted):
            if topic.get("error_code", 0) == 0:
                out["topics"][topic["name"]] = len(topic["partitions"])
        group = settings.consumer_group
        committed = admin.list_group_offsets(group).get(group, {})
        described = admin.describe_groups([group]).get(group) or {}
        out["group_members"] = len(described.get("members") or [])
    finally:
        admin.close()
    consumer = make_consumer(bootstrap, None)
    try:
        for topic, count in out["topics"].items():
            partitions = [TopicPartition(topic, p) for p in range(count)]
            ends = consumer.end_offsets(partitions)
            if topic == settings.events_topic:
                lag = {
                    tp.partition: ends[tp] - (committed[tp].offset if tp in committed else 0)
                    for tp in partitions
                }
                out["lag"] = lag
            out.setdefault("messages", {})[topic] = sum(ends.values())
    finally:
        consumer.close()
    return out


def _routers(settings: AimsSettings) -> list[dict[str, Any]]:
    beats = []
    for path in sorted((settings.state_path / "routers").glob("router-*.json")):
        try:
            beat = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        beat["alive"] = time.time() - beat.get("at", 0) < HEARTBEAT_STALE_SECONDS
        beats.append(beat)
    return beats


def _prefect_status(api_url: str | None) -> dict[str, Any]:
    from connectors.prefect_api import PrefectApi

    out: dict[str, Any] = {"api": api_url, "reachable": False, "runs": {}}
    if not api_url:
        return out
    api = PrefectApi(api_url)
    try:
        out["reachable"] = api.healthy()
        if not out["reachable"]:
            return out
        runs = api.recent_runs(limit=200)
        for event_type, routes in ROUTES.items():
            for route in routes:
                mine = [r for r in runs if r.flow_name == route.flow_name]
                out["runs"][event_type] = {
                    "deployment": route.deployment,
                    "states": dict(Counter(r.state for r in mine)),
                    "latest": mine[0].created if mine else None,
                }
    finally:
        api.close()
    return out


def _gateway_status(settings: AimsSettings) -> dict[str, Any]:
    """Where `aims gateway` listens (it says so in the state folder) and what its health check says."""
    import httpx

    from events.gateway import status_path

    try:
        where = json.loads(status_path(settings.state_path).read_text())
    except (OSError, json.JSONDecodeError):
        return {"url": None, "reachable": False}
    url = f"http://{where['host']}:{where['port']}"
    try:
        health = httpx.get(f"{url}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {"url": url, "reachable": False}
    return {"url": url, "reachable": health.get("status") == "ok", **health}


def collect(settings: AimsSettings, endpoints: Endpoints) -> dict[str, Any]:
    return {
        "kafka": _kafka_status(settings, endpoints.bootstrap),
        "gateway": _gateway_status(settings),
        "routers": _routers(settings),
        "prefect": _prefect_status(endpoints.prefect_api_url),
        "ui": endpoints.prefect_ui_url,
    }


def _gateway_line(g: dict[str, Any]) -> str:
    if not g.get("url"):
        return "Gateway   -     not running (Slack and Jira decisions are not taken)"
    if not g.get("reachable"):
        return f"Gateway   DOWN  {g['url']}"
    channels = ", ".join(n for n in ("slack", "jira") if g.get(n)) or "no Slack or Jira configured"
    work = (
        f"{g.get('pending_approvals', 0)} approvals pending; {g.get('open_incidents', 0)} incidents open"
        f" ({g.get('art73_clocks_running', 0)} Art. 73 clocks running)"
    )
    return f"Gateway   up    {g['url']}   {work}; {channels}"


def render(status: dict[str, Any]) -> str:
    k, p = status["kafka"], status["prefect"]
    ok = {True: "up", False: "DOWN"}
    lines = [
        f"Kafka     {ok[k['reachable']]:5} {k['bootstrap']}",
        f"Prefect   {ok[p['reachable']]:5} {p['api'] or '(not configured)'}   UI: {status['ui'] or '-'}",
        _gateway_line(status.get("gateway", {})),
        "",
        "Topics",
    ]
    for topic, parts in k["topics"].items():
        lines.append(f"  {topic:30} {parts} partitions, {k.get('messages', {}).get(topic, 0)} messages")
    lag = k.get("lag", {})
    lines.append(
        f"Consumer lag  {sum(lag.values())} total  " + "  ".join(f"p{p}={v}" for p, v in sorted(lag.items()))
    )
    routers = status["routers"]
    alive = [r for r in routers if r["alive"]]
    lines.append(f"Routers   {len(alive)} alive, {k.get('group_members', 0)} in the consumer group")
    for r in routers:
        state = "alive" if r["alive"] else "stale"
        hold = "  HOLDING: " + r["last_error"] if r.get("holding") else ""
        lines.append(
            f"  {r['name']:28} {state}  routed={r['routed']} dead-lettered={r['dead_lettered']}{hold}"
        )
    lines.append("")
    lines.append("Recent flow runs (last 200)")
    for event_type, info in p["runs"].items():
        states = ", ".join(f"{s}={n}" for s, n in sorted(info["states"].items())) or "none"
        lines.append(f"  {event_type:38} → {info['deployment']:28} {states}")
    return "\n".join(lines)
