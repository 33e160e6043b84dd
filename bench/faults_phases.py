"""The two phases of a fault-benchmark round (bench.faults): the floor (no faults) and the faults (a
router joins, one is killed, the broker restarts), each with its figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import fmt, load_average
from bench.faults_stack import MB, Phase, Stack, new_phase, publish, wait_assigned, wait_split
from bench.faults_watch import DrainWatch, Sampler, clear_runs, read_back, settle, wait_idle

if TYPE_CHECKING:
    from schemas.events import AimsEvent


def finish_phase(
    phase: Phase, sampler: Sampler, watch: DrainWatch, first: float, last: bool = False
) -> dict[str, Any]:
    """After the drain: wait for the runs, count them, clear them; the phase's figures.

    The `last` phase of a run leaves its unfinished runs to the stack's shutdown: clearing is for the
    next phase's sake, and deleting ten thousand runs one request at a time takes minutes."""
    say = phase.stack.say
    say(f"  waiting for the runs to finish (at most {phase.stack.args.settle_seconds:g}s)…")
    settled_s = settle(phase, say, first)
    sampler.stop()
    counted, states = read_back(phase)
    unstarted, started = (0, 0) if last else clear_runs(phase, say)
    baseline_rss, baseline_processes = sampler.first or (0, 0)
    if phase.stack.idle_processes is None:
        phase.stack.idle_processes = baseline_processes
    if not last:
        wait_idle(phase.stack)
    if counted.lost:
        say(f"  LOST: {len(counted.lost)} events without a run, e.g. {counted.lost[:5]}")
    if counted.duplicated:
        say(
            f"  DUPLICATED: {len(counted.duplicated)} events with several runs, e.g. "
            f"{dict(list(counted.duplicated.items())[:5])}"
        )
    return {
        "events": counted.events,
        "runs": counted.runs,
        "lost": len(counted.lost),
        "duplicated": len(counted.duplicated),
        "drain_s": watch.drain_s,
        "gave_up": watch.gave_up,
        "settled_s": settled_s,
        "states": states,
        # Crashed before or while running: the event has its run, but nothing runs it again.
        "crashed": states.get("Crashed", 0),
        "deleted_unstarted": unstarted,
        "deleted_started": started,
        "baseline_rss_mb": baseline_rss / MB,
        "baseline_processes": baseline_processes,
        "peak_rss_mb": sampler.peak_rss / MB,
        "peak_pss_mb": sampler.peak_pss / MB,
        "peak_processes": sampler.peak_processes,
        "peak_running": sampler.peak_running,
        "peak_active": sampler.peak_active,
        "samples": f"{sampler.memory_samples} memory / {sampler.prefect_samples} Prefect",
    }


def run_floor(stack: Stack, base: list[AimsEvent], tag: str, n: int) -> dict[str, Any]:
    """N events at once to one router, no faults: the drain the fault phase is compared with."""
    say = stack.say
    phase = new_phase(stack, f"floor{n}", base, tag)
    name = f"floor{n}"
    load = [load_average()]
    sampler = Sampler(stack)
    watch: DrainWatch | None = None
    phase.start_router(name)
    try:
        waited = wait_assigned(phase, name, lambda p: p == phase.all_partitions)
        say(f"  router {name} holds partitions {sorted(phase.all_partitions)} after {waited:.1f}s")
        sampler.start()
        first, end = publish(phase)
        say(f"  published {len(phase.events)} events to {phase.settings.events_topic} (end offsets {end})")
        watch = DrainWatch(phase, first, end, stack.args.drain_timeout).start()
        watch.wait(say)
        say(
            f"FLOOR: drained in {fmt(watch.drain_s, '.1f')}s"
            + (f"; GAVE UP: {watch.gave_up}" if watch.gave_up else "")
        )
        alive = phase.routers[name].alive()
        if not alive:
            say(f"  router {name} EXITED during the phase: {phase.routers[name].failure()}")
    except BaseException:
        sampler.stop()
        if watch is not None:
            watch.stop()
        raise
    finally:
        exits = phase.stop_routers()
    result = finish_phase(phase, sampler, watch, first)
    load.append(load_average())
    result.update({"load": load, "routers_exited": [] if alive else [name], "exit_codes": exits})
    result["logs"] = log_summary(stack.state, [name])
    return result


def run_faults(stack: Stack, base: list[AimsEvent], tag: str, n: int) -> dict[str, Any]:
    """N events at once to router A; B joins, one is SIGKILLed, the broker restarts; then the drain."""
    say, args = stack.say, stack.args
    broker = stack.broker
    assert broker is not None
    phase = new_phase(stack, f"faults{n}", base, tag)
    first_name, joiner = f"a{n}", f"b{n}"
    victim, survivor = (first_name, joiner) if args.kill == "first" else (joiner, first_name)
    count = len(phase.events)
    load = [load_average()]
    result: dict[str, Any] = {"victim": victim, "survivor": survivor, "joiner": joiner}
    sampler = Sampler(stack)
    watch: DrainWatch | None = None
    phase.start_router(first_name)
    try:
        waited = wait_assigned(phase, first_name, lambda p: p == phase.all_partitions)
        say(f"  router {first_name} holds partitions {sorted(phase.all_partitions)} after {waited:.1f}s")
        sampler.start()
        first, end = publish(phase)
        say(f"  published {count} events to {phase.settings.events_topic} (end offsets {end})")
        watch = DrainWatch(phase, first, end, args.drain_timeout).start()
        running = watch

        def since() -> float:
            return time.monotonic() - first

        def reach(fraction: float, what: str, key: str) -> None:
            while running.fraction < fraction and not running.done.wait(0.25):
                pass
            if running.done.is_set():
                say(f"  NOTE: {what} comes after the drain ended ({running.runs}/{count} had runs)")
            result[f"{key}_fraction"] = running.fraction
            result[f"{key}_s"] = since()

        # 1. A second router joins once routing is under way.
        reach(args.join_at, f"router {joiner} joining", "join")
        say(f"  {watch.runs}/{count} have runs at +{since():.1f}s: starting router {joiner}")
        phase.start_router(joiner)
        result["joiner_assigned_s"] = wait_split(phase, first_name, joiner)
        say(
            f"  router {joiner} got partitions after {result['joiner_assigned_s']:.1f}s: {first_name} has "
            f"{sorted(stack.partitions(first_name))}, {joiner} {sorted(stack.partitions(joiner))}"
        )
        # 2. One of them is SIGKILLed: no commit, no leaving the group; the survivor waits for the
        # group to notice (the session timeout) and reads the victim's partitions from their commits.
        reach(args.kill_at, f"killing router {victim}", "kill")
        held = sorted(stack.partitions(victim))
        say(f"  {watch.runs}/{count} have runs at +{since():.1f}s: SIGKILL router {victim} (it held {held})")
        phase.routers[victim].kill()
        killed = time.monotonic()
        wait_assigned(phase, survivor, lambda p: p == phase.all_partitions)
        result["takeover_s"] = time.monotonic() - killed
        say(f"  router {survivor} holds every partition {result['takeover_s']:.1f}s after the kill")
        # 3. The broker stops and starts again: every client has its address, so it must keep it.
        reach(0.0, "the broker restart", "restart")
        before = broker.bootstrap
        say(f"  {watch.runs}/{count} have runs at +{since():.1f}s: stopping the broker at {before}")
        down = time.monotonic()
        broker.stop()
        after = broker.start()
        result["broker_down_s"] = time.monotonic() - down
        result["broker_before"], result["broker_after"] = before, after
        say(
            f"  broker back after {result['broker_down_s']:.1f}s at {after} "
            + ("(the same address)" if after == before else "— A NEW ADDRESS: the routers cannot find it")
        )
        watch.wait(say)
        say(
            f"FAULTS: drained in {fmt(watch.drain_s, '.1f')}s"
            + (f"; GAVE UP: {watch.gave_up}" if watch.gave_up else "")
        )
        alive = phase.routers[survivor].alive()
        if not alive:
            say(f"  router {survivor} EXITED during the phase: {phase.routers[survivor].failure()}")
    except BaseException:
        sampler.stop()
        if watch is not None:
            watch.stop()
        raise
    finally:
        exits = phase.stop_routers()
    result.update(finish_phase(phase, sampler, watch, first))
    load.append(load_average())
    result.update({"load": load, "routers_exited": [] if alive else [survivor], "exit_codes": exits})
    result["logs"] = log_summary(stack.state, [first_name, joiner])
    return result


def log_summary(state: Path, routers: list[str]) -> dict[str, dict[str, Any]]:
    """Per router log: warnings, errors and tracebacks, and the first few distinct warning texts."""
    summary: dict[str, dict[str, Any]] = {}
    for name in routers:
        try:
            lines = (state / "logs" / f"router-{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        notable = [ln for ln in lines if " WARNING " in ln or " ERROR " in ln]
        texts: list[str] = []
        for line in notable:
            # "date time LEVEL logger: message": the message, without the numbers that change.
            text = line.split(": ", 1)[-1][:140]
            shape = "".join("#" if c.isdigit() else c for c in text)
            if shape not in {"".join("#" if c.isdigit() else c for c in t) for t in texts}:
                texts.append(text)
        summary[name] = {
            "warnings": sum(" WARNING " in ln for ln in lines),
            "errors": sum(" ERROR " in ln for ln in lines),
            "tracebacks": sum(ln.startswith("Traceback") for ln in lines),
            "examples": texts[:4],
        }
    return summary
