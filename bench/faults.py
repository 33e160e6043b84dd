"""Routing through faults: a router joins, one is killed, the broker restarts (issue 17).

    make bench-faults BENCH_FAULTS_ARGS="--events 500 --repeat 3"
    .venv/bin/python -m bench.faults [--events N] [--repeat N] [--backend sqlite|postgres]
                                     [--subjects N] [--pool-limit N] [--kill first|joiner]
                                     [--join-at F] [--kill-at F] [--settle-seconds S]
                                     [--drain-timeout S]

Real parts only, each its own process, state in `.aims/bench-faults`: a KRaft Kafka broker (the jars
shared from `.aims/kafka/libs`), a Prefect server (SQLite, or PostgreSQL 15 from `infra.postgres` with
--backend postgres), `aims worker` with the work pool's concurrency limit from
AIMS_WORK_POOL_CONCURRENCY (--pool-limit), and routers as `aims router --name …` processes with
the stack's policy (so data checks are coalesced as in the stack). Each round runs two phases, each
on a fresh topic and consumer group:

1. FLOOR  — N events published at once to one router, no faults.
2. FAULTS — N fresh events published at once to router A; when --join-at of them have runs a
   second router B joins; when --kill-at have runs, one of them (--kill) is SIGKILLed; as soon as the
   survivor holds every partition, the broker is stopped and started again (it must come back at
   the same address, or nothing finds it: printed).

The events are published at once rather than as a stream: every fault then lands on a backlog, with
records in flight and uncommitted — where a lost or doubled event would come from — and the fault
phase's drain is directly comparable with the floor's. A stream slower than the routers would hide
what the faults cost in the stream's own length.

Events are the three kinds `aims demo` sends (bench.router's `templates`), unique ids and versions,
spread over --subjects subjects. Per phase:
- time to drain: from the first publish until every event has its flow run in Prefect (looked up by
  idempotency key `source#id`) and the group's committed offsets reach the topic's end (lag 0);
  polled every second. The ratio fault drain / floor drain is the figure to watch.
- lost (an event without a run) and duplicated (an event with more than one run), counted once the
  phase's runs have finished (or the cap below): either gives exit status 1. Runs that Crashed are
  counted apart: such an event has its run, but nothing runs it again.
- the worker's processes: every 0.5 s its whole process tree (the worker, its warm spares and
  flow-run processes) from /proc: peak VmRSS sum, peak Pss sum, peak process count; and Prefect's
  Pending and Running runs, whose peak must stay at or under the pool's limit (printed next to it).
  Sampled from before the first publish until the phase's runs have finished, or --settle-seconds
  after the drain. Runs not finished by then are deleted (unstarted ones at once, started ones after
  up to 2 minutes more), and the next phase waits until the worker is back to its idle processes,
  so that no phase's runs are executed or measured during the next one.

Nothing here fails on a time: the exit status says whether something crashed (1), an event was
lost or doubled (1), or the run was interrupted (130). Each phase prints the machine's load average:
the machine is shared, and the numbers move with it; --repeat N prints medians.

This module is the report and the command line; the stack, phases and watching are in
bench.faults_stack, bench.faults_phases and bench.faults_watch.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Any

from bench.common import Progress, fmt, interrupt
from bench.faults_phases import run_faults, run_floor
from bench.faults_stack import Stack, median, prepare_state, start_stack

# Re-exported: the benchmark's tests import them from here.
from bench.faults_stack import make_events as make_events
from bench.faults_stack import tally as tally

BACKENDS = ("sqlite", "postgres")


PHASES = ("floor", "faults")


def merged(rounds: list[dict[str, Any]], phase: str, key: str) -> float | None:
    return median([r[phase].get(key) for r in rounds])


def ratio(r: dict[str, Any]) -> float | None:
    floor, faults = r["floor"].get("drain_s"), r["faults"].get("drain_s")
    return faults / floor if floor and faults is not None else None


def per_round(rounds: list[dict[str, Any]], phase: str, key: str, spec: str = ".1f") -> str:
    return "/".join(fmt(r[phase].get(key), spec) for r in rounds)


def render(rounds: list[dict[str, Any]], args: argparse.Namespace, limit: int | None) -> list[str]:
    n = len(rounds)
    lines = [
        f"Fault run ({args.events} events over {args.subjects} subjects, published at once; Prefect on "
        f"{args.backend}; `aims worker` with a work pool limit of {_limit(limit)}; "
        + (f"medians of {n} rounds)" if n > 1 else "1 round)")
    ]
    header = (
        "phase",
        "drain s",
        "lost",
        "dup",
        "runs",
        "all finished s",
        "worker peak RSS / PSS MB",
        "procs",
        f"Running / Pending+Running (limit {_limit(limit)})",
        "load start→end",
    )
    rows: list[tuple[str, ...]] = [header]
    for phase in PHASES:
        lost = sum(r[phase]["lost"] for r in rounds)
        dup = sum(r[phase]["duplicated"] for r in rounds)
        loads = " ".join(f"{r[phase]['load'][0]}→{r[phase]['load'][1]}" for r in rounds)
        rows.append(
            (
                phase,
                fmt(merged(rounds, phase, "drain_s"), ".1f"),
                str(lost),
                str(dup),
                fmt(merged(rounds, phase, "runs"), ".0f"),
                fmt(merged(rounds, phase, "settled_s"), ".1f"),
                _pair(rounds, phase, "peak_rss_mb", "peak_pss_mb"),
                fmt(merged(rounds, phase, "peak_processes"), ".0f"),
                _pair(rounds, phase, "peak_running", "peak_active"),
                loads,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        cells = [
            c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        f"ratio fault drain / floor drain: {fmt(median([ratio(r) for r in rounds]), '.2f')}"
        + (f" (per round {'/'.join(fmt(ratio(r), '.2f') for r in rounds)})" if n > 1 else "")
        + "; the lost and dup columns are totals over the rounds, the rest medians"
    )
    for k, r in enumerate(rounds, 1):
        f = r["faults"]
        prefix = f"round {k}: " if n > 1 else ""
        same = f.get("broker_after") == f.get("broker_before")
        lines.append(
            f"{prefix}router {f['joiner']} joined at {_pct(f, 'join')} "
            f"routed (+{fmt(f.get('join_s'), '.1f')}s; "
            f"partitions after {fmt(f.get('joiner_assigned_s'), '.1f')}s); router {f['victim']} SIGKILLed at "
            f"{_pct(f, 'kill')} (+{fmt(f.get('kill_s'), '.1f')}s), its partitions at {f['survivor']} after "
            f"{fmt(f.get('takeover_s'), '.1f')}s (heartbeat every "
            f"~2s); broker restarted at {_pct(f, 'restart')} "
            f"(+{fmt(f.get('restart_s'), '.1f')}s): down {fmt(f.get('broker_down_s'), '.1f')}s, "
            f"{f.get('broker_before')} → {f.get('broker_after')} ({'same address' if same else 'MOVED'})"
        )
        for phase in PHASES:
            p = r[phase]
            exited = ", ".join(p["routers_exited"]) or "none"
            codes = ", ".join(f"{name} {code}" for name, code in p["exit_codes"].items())
            finished = (
                f"all finished {fmt(p['settled_s'], '.1f')}s after the first publish"
                if p["settled_s"] is not None
                else f"NOT all finished {args.settle_seconds:g}s after the drain"
            )
            lines.append(
                f"{prefix}{phase}: {p['runs']} runs for {p['events']} events, {finished}; "
                f"states {p['states']}; "
                f"deleted unfinished {p['deleted_unstarted']} unstarted + {p['deleted_started']} started; "
                f"surviving routers that exited: {exited} (exit codes on stop: {codes}); worker before "
                f"publishing {p['baseline_processes']} processes, {p['baseline_rss_mb']:.0f} MB RSS; "
                f"samples {p['samples']}" + (f"; GAVE UP: {p['gave_up']}" if p["gave_up"] else "")
            )
            for name, log in p["logs"].items():
                if log["warnings"] or log["errors"] or log["tracebacks"]:
                    lines.append(
                        f"{prefix}  router-{name}.log: {log['warnings']} warnings, {log['errors']} errors, "
                        f"{log['tracebacks']} tracebacks; e.g. " + " | ".join(log["examples"])
                    )
    if n > 1:
        for phase in PHASES:
            lines.append(
                f"per round, {phase}: drain s {per_round(rounds, phase, 'drain_s')}, peak RSS MB "
                f"{per_round(rounds, phase, 'peak_rss_mb', '.0f')}, procs "
                f"{per_round(rounds, phase, 'peak_processes', '.0f')}, Running "
                f"{per_round(rounds, phase, 'peak_running', '.0f')}, "
                f"lost {per_round(rounds, phase, 'lost', 'd')}, "
                f"dup {per_round(rounds, phase, 'duplicated', 'd')}"
            )
        lines.append(
            f"per round, takeover s {per_round(rounds, 'faults', 'takeover_s')}, broker down s "
            f"{per_round(rounds, 'faults', 'broker_down_s')}"
        )
    lines.append("")
    lines.append(summary_line(rounds, limit))
    return lines


def _pair(rounds: list[dict[str, Any]], phase: str, a: str, b: str) -> str:
    return f"{fmt(merged(rounds, phase, a), '.0f')} / {fmt(merged(rounds, phase, b), '.0f')}"


def _limit(limit: int | None) -> str:
    return "none" if limit is None else str(limit)


def _pct(result: dict[str, Any], key: str) -> str:
    value = result.get(f"{key}_fraction")
    return "–" if value is None else f"{100 * value:.0f}%"


def summary_line(rounds: list[dict[str, Any]], limit: int | None) -> str:
    lost = sum(r[p]["lost"] for r in rounds for p in PHASES)
    dup = sum(r[p]["duplicated"] for r in rounds for p in PHASES)
    running = max(r[p]["peak_running"] for r in rounds for p in PHASES)
    active = max(r[p]["peak_active"] for r in rounds for p in PHASES)
    over = limit is not None and active > limit
    crashed = sum(r[p]["crashed"] for r in rounds for p in PHASES)
    return (
        f"faults: lost {lost}, duplicated {dup}; drain "
        f"{fmt(merged(rounds, 'faults', 'drain_s'), '.1f')}s vs floor "
        f"{fmt(merged(rounds, 'floor', 'drain_s'), '.1f')}s = "
        f"{fmt(median([ratio(r) for r in rounds]), '.2f')}×; "
        f"takeover {fmt(merged(rounds, 'faults', 'takeover_s'), '.1f')}s; broker down "
        f"{fmt(merged(rounds, 'faults', 'broker_down_s'), '.1f')}s; worker peak "
        f"{fmt(max(r[p]['peak_rss_mb'] for r in rounds for p in PHASES), '.0f')} MB RSS, "
        f"{max(r[p]['peak_processes'] for r in rounds for p in PHASES)} processes, {running} Running "
        f"({active} Pending+Running; limit {_limit(limit)}{', OVER THE LIMIT' if over else ''}); "
        f"runs Crashed {crashed}. "
        "Times never fail the benchmark; a lost or doubled event does."
    )


def run(args: argparse.Namespace) -> int:
    import traceback

    from bench.router import templates
    from schemas.settings import load_settings

    say = Progress("faults")
    state = load_settings().state_path / "bench-faults"
    stack = Stack(state, args, say)
    signal.signal(signal.SIGTERM, interrupt)
    rounds: list[dict[str, Any]] = []
    crashed = interrupted = False
    try:
        prepare_state(state, say)
        start_stack(stack)
        base = templates(state / "data")
        tag = time.strftime("%H%M%S")
        for n in range(1, args.repeat + 1):
            of = f" (round {n} of {args.repeat})" if args.repeat > 1 else ""
            say(f"FLOOR{of}: {args.events} events at once to one router, no faults…")
            floor = run_floor(stack, base, tag, n)
            say(
                f"FAULTS{of}: {args.events} events at once to router a{n}; b{n} joins at "
                f"{100 * args.join_at:.0f}%, {args.kill} router killed at {100 * args.kill_at:.0f}%, then "
                "the broker restarts…"
            )
            faults = run_faults(stack, base, tag, n)
            rounds.append({"floor": floor, "faults": faults})
    except KeyboardInterrupt:
        say("interrupted: stopping what was started")
        interrupted = True
    except Exception:  # noqa: BLE001 - printed; the stack must still stop and finished rounds be reported
        traceback.print_exc()
        crashed = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
    if rounds:
        print()
        print("\n".join(render(rounds, args, stack.pool_limit)), flush=True)
        print(
            f"logs: {state / 'logs'} (routers, worker), {state / 'kafka' / 'broker.log'}, "
            f"{state / 'prefect' / 'server.log'}"
        )
    wrong = any(r[p]["lost"] or r[p]["duplicated"] for r in rounds for p in PHASES)
    return 130 if interrupted else 1 if crashed or wrong else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description="Events routed while a router joins, one is killed and the broker restarts.",
    )
    parser.add_argument(
        "--events", type=int, default=500, metavar="N", help="events per phase (default %(default)s)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="rounds of floor and faults; medians (default %(default)s)",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="sqlite", help="Prefect's database (default %(default)s)"
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=40,
        metavar="N",
        help="distinct subjects (Kafka keys) (default %(default)s)",
    )
    parser.add_argument(
        "--pool-limit",
        type=int,
        default=4,
        metavar="N",
        help="AIMS_WORK_POOL_CONCURRENCY for the worker: runs at once (default %(default)s)",
    )
    parser.add_argument(
        "--kill",
        choices=("first", "joiner"),
        default="first",
        help="which router is SIGKILLed: the one that had every partition, or the one that joined "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--join-at",
        type=float,
        default=0.1,
        metavar="F",
        help="share of events with runs when the second router joins (default %(default)s)",
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.3,
        metavar="F",
        help="share of events with runs when one router is killed (default %(default)s); the broker "
        "restarts as soon as the survivor holds every partition",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300,
        metavar="S",
        help="after the drain, how long the phase's runs may take to finish (default %(default)s)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=1200,
        metavar="S",
        help="after the first publish, how long the drain may take before events count as lost "
        "(default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.events < 10 or args.repeat < 1 or args.subjects < 1 or args.pool_limit < 0:
        raise SystemExit(
            "--events needs at least 10, --repeat and --subjects at least 1, --pool-limit 0 or more"
        )
    if not 0 < args.join_at < args.kill_at < 1:
        raise SystemExit("expected 0 < --join-at < --kill-at < 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The broker is down on purpose for a while: the clients' connection errors are expected noise.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
