"""A flood of malformed records with good events inside it: the router's dead-letter path against a
bare consume-and-produce loop, and how long the good events wait (issue 23).

    make bench-flood BENCH_FLOOD_ARGS="--malformed 50000 --good 500"
    .venv/bin/python -m bench.flood [--malformed N] [--good N] [--subjects N] [--backend sqlite|postgres]
                                    [--drain-timeout S]

The stack of bench.faults (bench.faults_stack; state in `.aims/bench-flood`), whose worker registers
the deployments and is then stopped, as bench.router does: the good events' runs are created and stay
Scheduled, so what is measured is the router, not the flows (and the server's late-runs service is
off, as there). --malformed records (not JSON, not an object, no CloudEvent, an unknown type, an
invalid payload, in turn; bench.flood_parts) with --good events (`aims demo`'s three kinds, signed)
spread evenly among them are sent as fast as one producer takes them, twice, each time to a fresh
topic whose consumer is already running:

1. BARE   — bench.flood_bare, its own process: a kafka-python loop that reads each record, sends it to
   another topic and commits once the copies are acknowledged. Its rate (copies/s, from the first
   copy's timestamp to the last) is the floor.
2. ROUTER — an `aims router` process: each malformed record dead-lettered (with its reason in the
   headers), each good event's run created. Its dead-letter rate is measured the same way, from the
   dead letters' timestamps; target ≥ 0.5 of the floor. The good events: produce → run created
   (Prefect's `created`) p50/p99/max, while the flood goes through.

Lost: a good event without a run, or fewer dead letters than malformed records; duplicated: a good
event with more than one run. Either gives exit status 1; nothing here fails on a time. The machine's
load average is printed with each phase.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from typing import Any

from bench.common import Progress, fmt, interrupt, ratio, ratio_text

BACKENDS = ("sqlite", "postgres")
TARGET_RATIO = 0.5


def render(bare: dict[str, Any], routed: dict[str, Any], args: argparse.Namespace) -> list[str]:
    measured = ratio(routed["rate"], bare["rate"])
    verdict = "–" if measured is None else "meets" if measured >= TARGET_RATIO else "MISSES"
    extra = routed["extra_dead_letters"]
    return [
        f"Flood ({args.malformed} malformed records, {args.good} good events spread among them, sent at once "
        f"by one producer; Prefect on {args.backend}; runs created, not executed)",
        f"floor: a bare kafka-python consume-and-produce loop forwarded {bare['records']} records at "
        f"{fmt(bare['rate'], '.0f')} records/s (load {bare['load'][0]}→{bare['load'][1]})",
        f"router: {routed['dead_letters']} dead letters at {fmt(routed['rate'], '.0f')} records/s = "
        f"{ratio_text(routed['rate'], bare['rate'])} the bare loop (target ≥ {TARGET_RATIO}: {verdict}); "
        f"all {routed['records']} records committed and every good event's run created after "
        f"{fmt(routed['drain_s'], '.1f')}s (load {routed['load'][0]}→{routed['load'][1]})"
        + (f"; GAVE UP: {routed['gave_up']}" if routed["gave_up"] else ""),
        f"good events during the flood: produce → run created p50 {fmt(routed['p50_ms'], '.0f')} ms, p99 "
        f"{fmt(routed['p99_ms'], '.0f')} ms, max {fmt(routed['max_ms'], '.0f')} ms; {routed['runs']} runs "
        f"for {routed['good']} events, states {routed['states']}",
        f"flood: lost {routed['lost']}, duplicated {routed['duplicated']}"
        + (f", {extra} dead letters more than malformed records" if extra else "")
        + (f"; ROUTER EXITED: {routed['routers_exited']}" if routed["routers_exited"] else "")
        + ". Times never fail the benchmark; a lost or doubled event does.",
    ]


def run(args: argparse.Namespace) -> int:
    import traceback

    from bench.faults_stack import Stack, new_phase, prepare_state, start_stack
    from bench.flood_run import flood_records, run_bare, run_router
    from bench.router import templates
    from schemas.settings import load_settings

    say = Progress("flood")
    state = load_settings().state_path / "bench-flood"
    stack = Stack(state, args, say)
    signal.signal(signal.SIGTERM, interrupt)
    bare: dict[str, Any] | None = None
    routed: dict[str, Any] | None = None
    crashed = interrupted = False
    # The good events' runs stay Scheduled (the worker stops once they are registered): marking them
    # Late would be the server's busy work, which a polled pool never sees (as in bench.router).
    os.environ["PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED"] = "false"
    try:
        prepare_state(state, say)
        start_stack(stack)
        assert stack.worker is not None
        say("stopping the worker: the deployments exist; the good events' runs are created, not run")
        stack.worker.stop(30)
        tag = time.strftime("%H%M%S")
        phase = new_phase(stack, "router", templates(state / "data"), tag, prefix="flood", count=args.good)
        records = flood_records(stack, phase.events)
        say(f"BARE: {len(records)} records to a bare consume-and-produce loop…")
        bare = run_bare(stack, records, tag)
        say(f"ROUTER: the same {len(records)} records to `aims router`…")
        routed = run_router(stack, phase, records)
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
    if bare is not None and routed is not None:
        print()
        print("\n".join(render(bare, routed, args)), flush=True)
        print(f"logs: {state / 'logs'} (router), {state / 'prefect' / 'server.log'}")
    wrong = routed is not None and bool(routed["lost"] or routed["duplicated"] or routed["routers_exited"])
    return 130 if interrupted else 1 if crashed or wrong else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flood",
        description="Malformed records with good events among them: dead letters vs. a bare loop.",
    )
    add = parser.add_argument
    add("--malformed", type=int, default=50_000, metavar="N", help="malformed records (default %(default)s)")
    add("--good", type=int, default=500, metavar="N", help="good events among them (default %(default)s)")
    add("--subjects", type=int, default=40, metavar="N", help="distinct keys (default %(default)s)")
    add("--backend", choices=BACKENDS, default="sqlite", help="Prefect's database (default %(default)s)")
    add(
        "--drain-timeout",
        type=float,
        default=1800,
        metavar="S",
        help="after the first send, how long the router may take before events count as lost "
        "(default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.malformed < 10 or args.good < 2 or args.subjects < 1:
        raise SystemExit("--malformed needs at least 10, --good 2, --subjects 1")
    # The stack's worker is started once, for its deployments: its limit does not matter here.
    args.pool_limit = 1
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
