"""A burst of data-changed events: coalesced into a check per dataset, every event recorded (issue 23).

    make bench-burst BENCH_BURST_ARGS="--events 10000 --subjects 200"
    .venv/bin/python -m bench.burst [--events N] [--subjects N] [--backend sqlite|postgres]
                                    [--pool-limit N] [--floor-runs N] [--settle-seconds S]
                                    [--drain-timeout S]

The stack of bench.faults (bench.faults_stack: a KRaft broker, a Prefect server, `aims worker`, an
`aims router` process, the stack's policy; state in `.aims/bench-burst`). First the create-run floor
(bench.floors: --floor-runs runs created one at a time on the same server). Then N data-changed events
(`aims demo`'s, each a new version) over --subjects datasets are published at once to one router.

How a burst is coalesced (events.router_chains, flows/data_quality/check_data_quality.py): the router
still creates one run per event (idempotency key = the event's source#id), but starts it the policy's
`data_quality.coalesce_seconds` later, tagged `coalesce:dataset:<id>`, and stands the dataset's previous
run down (Cancelled, `Superseded`) when the next change comes, if it is still Scheduled. The check that
runs records the stood-down changes as `superseded` (register and evidence; the runs become `Superseded,
recorded`); a run that was not stood down in time finds the later run when it starts, records itself,
and stands down and records the dataset's other runs still waiting before the later one. So:
- time to drain: from the first publish until every event has its run and the group's lag is 0; as
  events/s, against the floor (the least time the floor allows is N / floor runs/s);
- lost (an event without a run, or without the router's receipt in the register) and duplicated (more
  than one run): either gives exit status 1;
- checks started: dataset versions judged by a check (any status but superseded); target ≤ --subjects;
- recorded: events whose dataset version is in the register, superseded ones included; all N once
  every run has finished. Runs not finished --settle-seconds after the drain are deleted and the
  shortfall printed (a time, so never a failure);
- the worker's process tree (peak RSS/PSS, processes) and Pending/Running runs against the pool's limit.

Nothing fails on a time; the machine's load average is printed with each phase.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path
from typing import Any

from bench.common import Progress, fmt, interrupt, ratio_text
from bench.faults_stack import Stack, make_events, prepare_state, start_stack

BACKENDS = ("sqlite", "postgres")


def render(result: dict[str, Any], floor: Any, args: argparse.Namespace, stack: Stack) -> list[str]:
    rec = result["recorded"]
    drain = result["drain_s"]
    rate = args.events / drain if drain else None
    least = args.events / floor.rate if floor.rate else None
    limit = "none" if stack.pool_limit is None else str(stack.pool_limit)
    settled = (
        f"all finished {fmt(result['settled_s'], '.0f')}s after the first publish"
        if result["settled_s"] is not None
        else f"NOT all finished {args.settle_seconds:g}s after the drain"
    )
    checks_ok = "meets" if rec.checked <= args.subjects else "MISSES"
    lines = [
        f"Burst ({args.events} data-changed events over {args.subjects} datasets, published in "
        f"{result['publish_s']:.2f}s; Prefect on {args.backend}; `aims worker` with a work pool limit of "
        f"{limit}; coalescing window {result['window_s']}s; load {result['load'][0]}→{result['load'][1]})",
        f"floor: {floor.rate:.1f} runs/s created one at a time ({floor.runs} runs, p50 {floor.p50_ms:.0f} / "
        f"p99 {floor.p99_ms:.0f} ms; load {floor.load[0]}→{floor.load[1]})",
        f"drain: every event with its run and lag 0 after {fmt(drain, '.1f')}s = {fmt(rate, '.1f')} events/s "
        f"= {ratio_text(rate, floor.rate)} the floor (the floor alone would take {fmt(least, '.0f')}s)"
        + (f"; GAVE UP: {result['gave_up']}" if result["gave_up"] else ""),
        f"runs: {result['runs']} for {result['events']} events; lost {result['lost']}, duplicated "
        f"{result['duplicated']}; {settled}; states {result['states']}",
        f"checks started: {rec.checked} (target ≤ {args.subjects}, one per dataset: {checks_ok}); "
        f"superseded {rec.superseded}; dataset versions recorded {rec.versions} of {rec.events} "
        f"{rec.statuses}; router receipts {rec.receipts} of {rec.events}",
        f"worker: before {result['baseline_processes']} processes, {result['baseline_rss_mb']:.0f} MB RSS; "
        "peak "
        f"{result['peak_rss_mb']:.0f} MB RSS / {result['peak_pss_mb']:.0f} MB PSS in "
        f"{result['peak_processes']} processes; at most {result['peak_running']} Running, "
        f"{result['peak_active']} Pending+Running (limit {limit})",
    ]
    if rec.without_receipt:
        lines.append(f"WITHOUT A RECEIPT: {len(rec.without_receipt)}, e.g. {rec.without_receipt[:5]}")
    if result["routers_exited"]:
        lines.append(f"ROUTER EXITED during the burst: {result['routers_exited']}")
    for name, log in result["logs"].items():
        if log["warnings"] or log["errors"] or log["tracebacks"]:
            lines.append(
                f"router-{name}.log: {log['warnings']} warnings, {log['errors']} errors, {log['tracebacks']} "
                "tracebacks; e.g. " + " | ".join(log["examples"])
            )
    lines.append(
        f"burst: lost {result['lost'] + len(rec.without_receipt)}, duplicated {result['duplicated']}; "
        f"drain {ratio_text(rate, floor.rate)} the floor; checks {rec.checked} for {args.subjects} datasets; "
        f"recorded {rec.versions}/{rec.events}. Times never fail the benchmark; a lost or doubled event does."
    )
    return lines


def run(args: argparse.Namespace) -> int:
    import traceback

    from bench.burst_run import run_burst
    from bench.floors import WARMUP, create_run_floor
    from bench.router import templates
    from schemas.events import DATA_CHANGED
    from schemas.policy_file import data_quality_policy
    from schemas.settings import load_settings

    say = Progress("burst")
    settings = load_settings()
    state = settings.state_path / "bench-burst"
    stack = Stack(state, args, say)
    signal.signal(signal.SIGTERM, interrupt)
    result: dict[str, Any] | None = None
    floor: Any = None
    crashed = interrupted = False
    try:
        prepare_state(state, say)
        start_stack(stack)
        base = [e for e in templates(state / "data") if e.type == DATA_CHANGED]
        tag = time.strftime("%H%M%S")
        api = stack.api()
        try:
            events = make_events(base, args.floor_runs + WARMUP, f"{tag}-floor", args.subjects)
            floor = create_run_floor(api, events, say)
        finally:
            api.close()
        say(
            f"BURST: {args.events} data-changed events over {args.subjects} datasets, at once, to one router…"
        )
        result = run_burst(stack, base, tag)
        result["window_s"] = data_quality_policy(Path(stack.env["AIMS_POLICY_FILE"])).coalesce_seconds
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
        print("\n".join(render(result, floor, args, stack)), flush=True)
        print(f"logs: {state / 'logs'} (router, worker), {state / 'prefect' / 'server.log'}")
    wrong = result is not None and bool(
        result["lost"]
        or result["duplicated"]
        or result["recorded"].without_receipt
        or result["routers_exited"]
    )
    return 130 if interrupted else 1 if crashed or wrong else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.burst",
        description="A burst of data-changed events: drained, coalesced per dataset, every one recorded.",
    )
    add = parser.add_argument
    add("--events", type=int, default=10_000, metavar="N", help="events in the burst (default %(default)s)")
    add("--subjects", type=int, default=200, metavar="N", help="datasets they change (default %(default)s)")
    add("--backend", choices=BACKENDS, default="sqlite", help="Prefect's database (default %(default)s)")
    add(
        "--pool-limit",
        type=int,
        default=4,
        metavar="N",
        help="AIMS_WORK_POOL_CONCURRENCY for the worker: runs at once (default %(default)s)",
    )
    add(
        "--floor-runs",
        type=int,
        default=100,
        metavar="N",
        help="runs in the create-run floor (default %(default)s)",
    )
    add(
        "--settle-seconds",
        type=float,
        default=3600,
        metavar="S",
        help="after the drain, how long the runs may take to finish (default %(default)s)",
    )
    add(
        "--drain-timeout",
        type=float,
        default=7200,
        metavar="S",
        help="after the first publish, how long the drain may take before events count as lost "
        "(default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.events < 10 or args.subjects < 1 or args.floor_runs < 10 or args.pool_limit < 0:
        raise SystemExit("--events and --floor-runs need at least 10, --subjects 1, --pool-limit 0 or more")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
