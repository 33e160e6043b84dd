"""A soak at half the create-run floor while a router, the broker and the Prefect server are each
SIGKILLed and started again: lost, doubled, lag, and the memory of every process (issue 23).

    make bench-soak BENCH_SOAK_ARGS="--duration 1200"
    .venv/bin/python -m bench.soak [--duration S] [--routers 1|2] [--rate R] [--subjects N]
                                   [--backend postgres|sqlite] [--pool-limit N] [--floor-runs N]
                                   [--down-seconds S] [--settle-seconds S] [--drain-timeout S]
                                   [--execute-runs]

The stack of bench.faults (bench.faults_stack; state in `.aims/bench-soak`): a KRaft broker, a Prefect
server, `aims worker` (its pool paused after the floor, unless --execute-runs), and --routers `aims
router` processes in one group. First the create-run floor (bench.floors); then `aims demo`'s three
kinds of events (unique ids, over --subjects subjects, signed) are produced at half of it (or --rate)
for --duration seconds (20 minutes by default), by a producer that sends again whatever the broker did
not acknowledge. A quarter of the way in router a is SIGKILLed and started again --down-seconds later;
at half the broker; at three quarters the Prefect server (each back on its own address, or nothing
finds it: printed).

Figures:
- lost: an event without a run, or without the router's receipt in the register; duplicated: an event
  with more than one run. Either gives exit status 1, as does a router or the worker that exited
  on its own, or a crash of the benchmark;
- the group's lag every 2 s (acknowledged end offsets minus committed offsets): its maximum, and how
  long the drain took after the last event was acknowledged;
- memory, every 5 s, of each process under the pid it has then: routers, the worker (alone, and with
  its flow-run processes), the broker and the Prefect server (with their children). Per life of a
  process (a restart begins another): resident memory a minute into it against the end, and the peak;
- the runs' final states (a run cut off by the server's death is Crashed: counted, not a failure),
  the worker's peak processes and Running runs against the pool's limit.

The runs are created, not executed, unless --execute-runs: the work pool is paused after the floor.
Executing each costs seconds of CPU (a flow-run process, its flow, its register writes), and on two
cores the worker cannot keep up with half the create floor: the first 20-minute soak that tried it
saturated the machine (load 14), the routers fell behind the producer, and the lag grew by 100
records a minute for as long as it ran, which says nothing about the routers. Paused, the soak
measures the event path the faults hit (routers, broker, Prefect's API and database) at a rate that
path can sustain; `make bench-faults` and the cluster tests measure runs executed.

Prefect runs on PostgreSQL by default, the production shape (`--backend sqlite` for the other): on
SQLite, two routers at half its floor met "database is locked" (503) while Prefect marked thousands
of waiting runs Late beside them, and the lag grew for as long as the soak ran.

Nothing fails on a time; the machine's load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Any

from bench.common import Progress, fmt, interrupt, ratio_text
from bench.soak_figures import MB, lag_summary, life_text, lives

BACKENDS = ("sqlite", "postgres")
# A process's first minute is imports and start-up: its memory is read from then on.
WARMUP_S = 60.0


def render(result: dict[str, Any], floor: Any, args: argparse.Namespace, limit: int | None) -> list[str]:
    lag = lag_summary(result["lag_samples"])
    without = result["without_receipt"]
    lost = result["lost"] + len(without)
    settled = (
        "left Scheduled in the paused work pool (--execute-runs to run them)"
        if not args.execute_runs
        else f"all finished {fmt(result['settled_s'], '.0f')}s after the first send"
        if result["settled_s"] is not None
        else f"NOT all finished {args.settle_seconds:g}s after the drain"
    )
    r = result
    lines = [
        f"Soak ({args.duration:g}s at {r['rate']:.2f} events/s = {ratio_text(r['rate'], floor.rate)} the "
        f"floor; {r['events']} events over {args.subjects} subjects; {args.routers} router(s); Prefect on "
        f"{args.backend}; worker pool limit {limit}; load {r['load'][0]}→{r['load'][1]})",
        f"floor: {floor.rate:.1f} runs/s created one at a time ({floor.runs} runs, p50 {floor.p50_ms:.0f} / "
        f"p99 {floor.p99_ms:.0f} ms; load {floor.load[0]}→{floor.load[1]})",
    ]
    for f in r["faults"]:
        where = ""
        if "after" in f:
            where = f" at {f['after']}" + (" — MOVED from " + f["before"] if f["moved"] else "")
        back = f"serving again after {f['back_s']:.1f}s{where}"
        lines.append(f"fault: {f['what']} SIGKILLed at +{f['at_s']:.0f}s, {back}")
    lines += [
        f"events: {r['events']} acknowledged after {r['produced_s']:.0f}s ({r['resent']} sent again); "
        f"lost {lost} ({r['lost']} without a run, {len(without)} without a receipt), duplicated "
        f"{r['duplicated']}; runs {r['runs']}, {settled}; states {r['states']}",
        f"lag: max {fmt(lag.max_lag, 'd')} records at +{fmt(lag.max_at_s, '.0f')}s ({lag.unknown} of "
        f"{lag.samples} samples unreadable while the broker was down); drained {fmt(r['tail_s'], '.0f')}s "
        "after the last acknowledgement",
        f"worker: peak {r['peak_rss_mb']:.0f} MB RSS / {r['peak_pss_mb']:.0f} MB PSS in "
        f"{r['peak_processes']} processes; at most {r['peak_running']} Running, {r['peak_active']} "
        f"Pending+Running (limit {limit})",
        f"memory (RSS, {WARMUP_S:.0f}s into each life → the end of the soak; a restart begins a new life):",
    ]
    for role, samples in result["memory"].items():
        found = lives(samples, WARMUP_S)
        lines.append(f"  {role}: " + ("; ".join(life_text(x) for x in found) if found else "no samples"))
    for name, log in result["logs"].items():
        if log["errors"] or log["tracebacks"]:
            lines.append(
                f"router-{name}.log: {log['warnings']} warnings, {log['errors']} errors, {log['tracebacks']} "
                "tracebacks; e.g. " + " | ".join(log["examples"])
            )
    if result["routers_exited"] or result["worker_exited"]:
        lines.append(f"EXITED ON THEIR OWN: routers {r['routers_exited']}, worker {r['worker_exited']}")
    peak = max((max((s[2] for s in v), default=0) for v in result["memory"].values()), default=0)
    lines.append(
        f"soak: lost {lost}, duplicated {r['duplicated']}; max lag {fmt(lag.max_lag, 'd')}; runs Crashed "
        f"{r['crashed']}; largest process {peak / MB:.0f} MB. Times never fail the benchmark; a lost or "
        "doubled event does."
    )
    return lines


def run(args: argparse.Namespace) -> int:
    import traceback

    from bench.faults_stack import Stack, make_events, prepare_state, start_stack
    from bench.floors import WARMUP, create_run_floor
    from bench.router import templates
    from bench.soak_run import run_soak
    from schemas.settings import load_settings

    say = Progress("soak")
    state = load_settings().state_path / "bench-soak"
    stack = Stack(state, args, say)
    signal.signal(signal.SIGTERM, interrupt)
    result: dict[str, Any] | None = None
    floor: Any = None
    crashed = interrupted = False
    try:
        prepare_state(state, say)
        start_stack(stack)
        base = templates(state / "data")
        tag = time.strftime("%H%M%S")
        api = stack.api()
        try:
            floor = create_run_floor(
                api, make_events(base, args.floor_runs + WARMUP, f"{tag}-floor", args.subjects), say
            )
        finally:
            api.close()
        rate = args.rate or floor.rate / 2
        if not args.execute_runs:
            pause_pool(stack)
            args.settle_seconds = 0
        say(f"SOAK: {args.duration:g}s at {rate:.2f} events/s, faults at 25/50/75 %…")
        result = run_soak(stack, base, tag, rate)
    except KeyboardInterrupt:
        say("interrupted: stopping what was started")
        interrupted = True
    except Exception:  # noqa: BLE001 - printed; the stack must still stop
        traceback.print_exc()
        crashed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
    if result is not None:
        print()
        print("\n".join(render(result, floor, args, stack.pool_limit)), flush=True)
        print(f"logs: {state / 'logs'}, {state / 'kafka' / 'broker.log'}, {state / 'prefect' / 'server.log'}")
    wrong = result is not None and bool(
        result["lost"]
        or result["duplicated"]
        or result["without_receipt"]
        or result["routers_exited"]
        or result["worker_exited"]
    )
    return 130 if interrupted else 1 if crashed or wrong else 0


def pause_pool(stack: Any) -> None:
    """Runs are created and wait: the worker stays up (and its memory is watched) but takes none."""
    from schemas.settings import AimsSettings

    pool = AimsSettings(state_dir=stack.state).work_pool
    api = stack.api()
    try:
        api.request("PATCH", f"/work_pools/{pool}", json={"is_paused": True}).raise_for_status()
    finally:
        api.close()
    stack.say(f"work pool {pool!r} paused: the soak's runs are created, not executed (--execute-runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Half the floor for a long time while a router, the broker and Prefect are killed.",
    )
    add = parser.add_argument
    add(
        "--duration", type=float, default=1200, metavar="S", help="seconds of producing (default %(default)s)"
    )
    add("--routers", type=int, choices=(1, 2), default=2, help="routers in the group (default %(default)s)")
    add("--rate", type=float, default=None, metavar="R", help="events/s instead of half the floor")
    add("--subjects", type=int, default=40, metavar="N", help="distinct subjects (default %(default)s)")
    # PostgreSQL, the production shape: on SQLite two routers at half its floor met "database is locked"
    # (503) while thousands of waiting runs were marked Late beside them, and the lag grew for good.
    add("--backend", choices=BACKENDS, default="postgres", help="Prefect's database (default %(default)s)")
    add(
        "--execute-runs",
        action="store_true",
        help="the worker executes the runs too (two cores cannot keep up at half the create floor)",
    )
    add(
        "--pool-limit",
        type=int,
        default=4,
        metavar="N",
        help="runs at once in the worker (default %(default)s)",
    )
    add("--floor-runs", type=int, default=100, metavar="N", help="runs in the floor (default %(default)s)")
    add(
        "--down-seconds",
        type=float,
        default=10,
        metavar="S",
        help="each fault's downtime (default %(default)s)",
    )
    add(
        "--settle-seconds",
        type=float,
        default=600,
        metavar="S",
        help="after the drain, how long the runs may take to finish (default %(default)s)",
    )
    add(
        "--drain-timeout",
        type=float,
        default=3600,
        metavar="S",
        help="after the first send, how long until events without a run count as lost (default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.duration < 60 or args.subjects < 1 or args.floor_runs < 10 or args.pool_limit < 0:
        raise SystemExit(
            "--duration needs at least 60, --subjects 1, --floor-runs 10, --pool-limit 0 or more"
        )
    args.events = 0  # the stack's phases take their count from the rate and the duration
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The broker and the server are down on purpose for a while: the clients' errors are expected noise.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
