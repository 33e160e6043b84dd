"""The router benchmark's throughput phase (bench.router): M events published first, then one router
or several in one group drain them, against the floor measured before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench.common import Progress, parse_time
from bench.router_measure import Context
from bench.router_parts import RouterThread, make_events, runs_by_key

if TYPE_CHECKING:
    from schemas.events import AimsEvent


def measure_router(ctx: Context, floor_rate: float, round_no: int = 0, routers: int = 1) -> dict[str, Any]:
    """M events drained by `routers` fresh routers in one group.

    One router finds the events published already (its start-up is outside the measured span). Several
    first settle their shares of the partitions on an empty topic, then the events are published: had
    they a backlog waiting, the first to join would start on every partition and the group's rebalance
    as the others arrive would sit inside the span, measuring the join rather than the routers.

    Results are keyed `router_rate`, `ratio`, … for one router and `router2_rate`, `ratio2`, … for two,
    so that rounds with several counts keep their figures apart.
    """
    from events.topics import ensure_topics, topic_specs

    count = ctx.args.events
    label = f"throughput{round_no}" + (f"x{routers}" if routers > 1 else "")
    events = make_events(ctx.base_events, count, label, ctx.tag)
    settings = ctx.settings(label)
    ensure_topics(ctx.kafka, topic_specs(settings))
    group = [RouterThread(settings, ctx.kafka, f"bench-{label}-{n}") for n in range(routers)]
    try:
        if routers == 1:
            publish(ctx, settings.events_topic, events)
        for router in group:
            router.launch()  # all started before any is waited for: they join together
        for router in group:
            router.wait_ready()
        ready = time.monotonic()
        if routers > 1:
            publish(ctx, settings.events_topic, events)
        wait_all_handled(group, count, timeout=120 + 10 * count / max(floor_rate, 0.1), say=ctx.say)
        wall = time.monotonic() - ready
    finally:
        for router in group:
            router.stop()
    api = ctx.api()
    try:
        runs = runs_by_key(api, [e.dedup_key for e in events])
    finally:
        api.close()
    created = sorted(parse_time(r.created) for r in runs.values())
    span = created[-1] - created[0] if len(created) > 1 else float("nan")
    rate = (len(created) - 1) / span if span > 0 else float("nan")
    dead = sum(r.router.stats.dead_lettered for r in group)
    suffix = "" if routers == 1 else str(routers)
    result = {
        f"router{suffix}_events": count,
        f"router{suffix}_runs": len(runs),
        f"router{suffix}_dead_lettered": dead,
        f"router{suffix}_rate": rate,
        f"router{suffix}_wall_rate": count / wall if wall > 0 else float("nan"),
        f"ratio{suffix}": rate / floor_rate if floor_rate > 0 else float("nan"),
    }
    ctx.say(
        f"ROUTER ×{routers}: {rate:.1f} events/s first→last run created ({len(runs)} runs, {dead} "
        f"dead-lettered; {result[f'router{suffix}_wall_rate']:.1f} events/s wall from partitions assigned), "
        f"ratio to the floor {result[f'ratio{suffix}']:.2f}"
    )
    return result


def wait_all_handled(group: list[RouterThread], count: int, timeout: float, say: Progress) -> None:
    """Until the routers together handled `count` events (a record read again after the group's
    rebalance counts twice: the runs are looked up afterwards, by key, all the same)."""
    if len(group) == 1:
        group[0].wait_handled(count, timeout=timeout, say=say)
        return
    deadline = time.monotonic() + timeout
    next_report = time.monotonic() + 10
    while sum(r.handled for r in group) < count:
        for router in group:
            router.check()
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"the routers handled {sum(r.handled for r in group)} of {count} events")
        if now > next_report:
            say(f"  … {'+'.join(str(r.handled) for r in group)}/{count} events routed")
            next_report = now + 10
        time.sleep(0.05)


def publish(ctx: Context, topic: str, events: list[AimsEvent]) -> None:
    from events.producer import EventPublisher

    publisher = EventPublisher(ctx.kafka, topic, signing_key=ctx.signing_key)
    try:
        for event in events:
            publisher.publish(event)
    finally:
        publisher.close()
    ctx.say(f"  published {len(events)} events to {topic}")
