"""The burst benchmark's phase (bench.burst): one router drains a burst of data-changed events, the
worker runs the coalesced checks, and the register is read back for what each event left there.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import fmt, load_average
from bench.faults_phases import finish_phase, log_summary
from bench.faults_stack import Stack, new_phase, publish, wait_assigned
from bench.faults_watch import DrainWatch, Sampler
from bench.register_reads import dataset_statuses, receipts

if TYPE_CHECKING:
    from schemas.events import AimsEvent

SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Recorded:
    """What the register holds of a burst's events: the router's receipts, and a dataset version per
    event (the check's verdict, or `superseded` where a later change of the dataset stood in for it)."""

    events: int
    receipts: int
    versions: int  # events whose dataset version is in the register, superseded ones too
    checked: int  # versions a check judged: any status but superseded
    superseded: int
    statuses: dict[str, int]
    without_receipt: list[str]  # event keys the router did not record
    without_version: list[str]  # event keys with no dataset version (yet)


def recorded(
    events: Sequence[tuple[str, str, str]],
    receipt_keys: Iterable[str],
    versions: dict[tuple[str, str], str],
) -> Recorded:
    """`events` as (key, dataset, version); `versions` maps (dataset, version) to its status."""
    receipts = set(receipt_keys)
    statuses = Counter(versions[(d, v)] for _, d, v in events if (d, v) in versions)
    return Recorded(
        events=len(events),
        receipts=sum(k in receipts for k, _, _ in events),
        versions=sum(statuses.values()),
        checked=sum(n for status, n in statuses.items() if status != SUPERSEDED),
        superseded=statuses[SUPERSEDED],
        statuses=dict(sorted(statuses.items())),
        without_receipt=[k for k, _, _ in events if k not in receipts],
        without_version=[k for k, d, v in events if (d, v) not in versions],
    )


def read_register(state: Path, events: Sequence[AimsEvent]) -> Recorded:
    """The receipts and dataset versions of `events`, read from the register the stack's processes use."""
    keyed = [(e.dedup_key, e.data.dataset_id, e.data.version) for e in events]
    received = receipts(state, [k for k, _, _ in keyed])
    return recorded(keyed, received, dataset_statuses(state, sorted({d for _, d, _ in keyed})))


def run_burst(stack: Stack, base: list[AimsEvent], tag: str) -> dict[str, Any]:
    """Every event published at once to one router; drained, then the runs finish (or the cap), then
    the runs and the register are counted."""
    say, args = stack.say, stack.args
    phase = new_phase(stack, "burst", base, tag, prefix="burst")
    name = "burst"
    load = [load_average()]
    sampler = Sampler(stack)
    watch: DrainWatch | None = None
    phase.start_router(name)
    try:
        waited = wait_assigned(phase, name, lambda p: p == phase.all_partitions)
        say(f"  router {name} holds partitions {sorted(phase.all_partitions)} after {waited:.1f}s")
        sampler.start()
        first, end = publish(phase)
        publish_s = time.monotonic() - first  # until the last acknowledgement
        say(
            f"  published {len(phase.events)} events in {publish_s:.2f}s to {phase.settings.events_topic} "
            f"(end offsets {end})"
        )
        # One look at 10,000 keys is a large query: every few seconds, not every second.
        interval = max(1.0, len(phase.events) / 2000)
        watch = DrainWatch(phase, first, end, args.drain_timeout, interval).start()
        watch.wait(say, every=30)
        say(
            f"BURST: drained in {fmt(watch.drain_s, '.1f')}s"
            + (f"; GAVE UP: {watch.gave_up}" if watch.gave_up else "")
        )
        alive = phase.routers[name].alive()
        if not alive:
            say(f"  router {name} EXITED during the burst: {phase.routers[name].failure()}")
    except BaseException:
        sampler.stop()
        if watch is not None:
            watch.stop()
        raise
    finally:
        exits = phase.stop_routers()
    result = finish_phase(phase, sampler, watch, first, last=True)
    load.append(load_average())
    say("  reading the register…")
    result["recorded"] = read_register(stack.state, phase.events)
    result.update(
        {
            "publish_s": publish_s,
            "load": load,
            "routers_exited": [] if alive else [name],
            "exit_codes": exits,
            "logs": log_summary(stack.state, [name]),
        }
    )
    return result
