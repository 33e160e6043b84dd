"""The soak itself (bench.soak): routers, producer and watchers started, a router, the broker and the
Prefect server each SIGKILLed and started again on schedule, then the drain, the runs and the count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.common import fmt, load_average
from bench.faults_phases import finish_phase, log_summary
from bench.faults_stack import Phase, Stack, new_phase, wait_assigned, wait_split
from bench.faults_watch import DrainWatch, Sampler
from bench.register_reads import receipts
from bench.soak_watch import LagWatch, MemoryWatch, RatedProducer

if TYPE_CHECKING:
    from schemas.events import AimsEvent

# When each fault comes, as a share of the soak: one at a time, each long after the one before.
FAULTS = (("router", 0.25), ("broker", 0.5), ("prefect", 0.75))


def kill_router(phase: Phase, name: str, down: float) -> dict[str, Any]:
    proc = phase.routers[name]
    old = proc.pid
    proc.kill()  # SIGKILL: nothing committed on the way out, nothing handed over
    time.sleep(down)
    phase.start_router(name)  # a new process under the same name, as the supervisor would
    return {"what": f"router {name}", "old_pid": old, "new_pid": phase.routers[name].pid, "moved": False}


def kill_broker(stack: Stack, down: float) -> dict[str, Any]:
    broker = stack.broker
    assert broker is not None
    before = broker.bootstrap
    broker.kill()
    time.sleep(down)
    after = broker.start()
    return {"what": "broker", "before": before, "after": after, "moved": after != before}


def kill_prefect(stack: Stack, down: float) -> dict[str, Any]:
    server = stack.server
    assert server is not None and server.process is not None
    before = server.api_url
    server.process.kill()  # its process group: the server and whatever it started
    time.sleep(down)
    after = server.start()  # the same port: every process has the address in its environment
    return {"what": "Prefect server", "before": before, "after": after, "moved": after != before}


def watch_roles(memory: MemoryWatch, stack: Stack, phase: Phase) -> None:
    """Every process of the stack, under the pid it has at each sample."""

    def router(name: str) -> Callable[[], int | None]:
        return lambda: phase.routers[name].pid

    for name in phase.routers:
        memory.watch(f"router {name}", router(name), tree=False)
    worker = stack.worker
    assert worker is not None
    memory.watch("worker (its own process)", lambda: worker.pid, tree=False)
    memory.watch("worker (with its flow-run processes)", lambda: worker.pid)
    broker, server = stack.broker, stack.server
    assert broker is not None and server is not None
    memory.watch("broker", lambda: next((p.pid for p in broker.processes()), None))
    memory.watch("Prefect server", lambda: server.process.pid if server.process else None)


def run_soak(stack: Stack, base: list[AimsEvent], tag: str, rate: float) -> dict[str, Any]:
    say, args = stack.say, stack.args
    count = max(10, round(rate * args.duration))
    phase = new_phase(stack, "soak", base, tag, prefix="soak", count=count)
    names = ["a", "b"][: args.routers]
    load = [load_average()]
    for name in names:
        phase.start_router(name)
    sampler = Sampler(stack)
    start = time.monotonic()
    memory = MemoryWatch(start)
    watchers: list[Any] = []
    faults: list[dict[str, Any]] = []
    try:
        if len(names) == 2:
            waited = wait_split(phase, "a", "b")
        else:
            waited = wait_assigned(phase, "a", lambda p: p == phase.all_partitions)
        say(f"  routers {', '.join(names)} hold the partitions after {waited:.1f}s")
        watch_roles(memory, stack, phase)
        sampler.start()
        start = memory.start_at = time.monotonic()
        producer = RatedProducer(phase, rate)
        lag = LagWatch(phase, producer, start)
        watchers = [memory.start(), producer.start(), lag.start()]
        say(f"  producing {count} events at {rate:.2f}/s for {args.duration:g}s")
        actions = {
            "router": lambda: kill_router(phase, "a", args.down_seconds),
            "broker": lambda: kill_broker(stack, args.down_seconds),
            "prefect": lambda: kill_prefect(stack, args.down_seconds),
        }
        for what, share in FAULTS:
            while time.monotonic() < start + share * args.duration:
                time.sleep(min(60.0, max(0.0, start + share * args.duration - time.monotonic())))
                say(f"  … {len(producer.acked)}/{count} acknowledged, lag {_last(lag.samples)}")
            at = time.monotonic() - start
            say(f"  SIGKILL {what} at +{at:.0f}s, {args.down_seconds:g}s down, then started again…")
            done = actions[what]()
            done.update({"at_s": at, "back_s": time.monotonic() - start - at})
            faults.append(done)
            say(
                f"  {done['what']} back after {done['back_s']:.1f}s"
                + (" AT A NEW ADDRESS" if done["moved"] else "")
            )
        while not producer.finished.wait(60):
            say(f"  … {len(producer.acked)}/{count} acknowledged, lag {_last(lag.samples)}")
        produced_s = time.monotonic() - start
        say(f"  every event acknowledged after {produced_s:.0f}s ({producer.resent} sent again); draining…")
        assert producer.first is not None
        watch = DrainWatch(
            phase, producer.first, producer.end_total, args.drain_timeout, interval=2.0
        ).start()
        watchers.append(watch)
        watch.wait(say)
        say(
            f"SOAK: drained {fmt(watch.drain_s, '.0f')}s after the first send"
            + (f"; GAVE UP: {watch.gave_up}" if watch.gave_up else "")
        )
        for w in (memory, lag):
            w.stop()
        exited = [n for n in names if not phase.routers[n].alive()]
        worker_alive = stack.worker is not None and stack.worker.alive()
    except BaseException:
        sampler.stop()
        for w in watchers:
            w.stop()
        raise
    finally:
        exits = phase.stop_routers()
    result = finish_phase(phase, sampler, watch, producer.first, last=True)
    load.append(load_average())
    without = sorted(set(phase.keys) - receipts(stack.state, phase.keys))
    result.update(
        {
            "rate": rate,
            "faults": faults,
            "produced_s": produced_s,
            "resent": producer.resent,
            "tail_s": None if watch.drained_at is None else watch.drained_at - start - produced_s,
            "lag_samples": lag.samples,
            "memory": memory.samples,
            "without_receipt": without,
            "routers_exited": exited,
            "worker_exited": not worker_alive,
            "exit_codes": exits,
            "load": load,
            "logs": log_summary(stack.state, names),
        }
    )
    return result


def _last(samples: list[tuple[float, int | None]]) -> str:
    return "?" if not samples or samples[-1][1] is None else str(samples[-1][1])
