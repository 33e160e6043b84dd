"""Router throughput and latency against Prefect on PostgreSQL and SQLite (issue 2).

    make bench BENCH_ARGS="--backend both"
    .venv/bin/python -m bench.router [--backend postgres|sqlite|both] [--floor-runs N] [--events N]
                                     [--concurrency N] [--routers N [N ...]] [--steady-seconds S]
                                     [--repeat N] [--skip-running]

Per backend, in this order, on a fresh Prefect server (for PostgreSQL on a fresh PostgreSQL 15
server from `infra.postgres`, fsync off):

1. RUNNING  — the worker (`aims worker`, started as `aims up` starts it) polls the deployments'
   work pool; a few events, spaced apart, go through the router; latency = produce → the flow
   run's `start_time` (state Running), split into created → Pending (the worker's poll) and
   Pending → Running (handing the run to a warm process, which loads it and proposes Running).
2. FLOOR    — a tight client loop, one `create_flow_run_from_deployment` at a time (after a few
   warm-up runs), with the parameters the router sends and unique idempotency keys: runs/s, p50,
   p99. A repeated key must return the same run. For comparison, the same loop through
   `PrefectLauncher.launch` (what the router calls: read the deployment by name, then create).
3. ROUTER   — M events are published to a fresh topic first, then an in-process `events.router.Router`
   with the real `PrefectLauncher` drains them: events/s from the first flow run created to the last,
   and its ratio to the floor. With `--routers 1 2`, again on a fresh topic with two routers in one
   consumer group (threads of this process, started together), against the same floor: whether a
   second router adds anything when Prefect's create-run rate is the limit.
4. STEADY   — the router already running on a fresh topic (and warmed up by a few events); events
   are produced at half the floor rate for S seconds; latency = the run's `created` (Prefect API,
   looked up by idempotency key) minus the produce time, split into produce → launch called (Kafka
   and the router's batching) and the launch itself.

Events are the three `aims demo` samples with unique ids, spread over SUBJECTS subjects (AI
systems, datasets): the router keeps one subject's events in order and runs different subjects
concurrently, up to `--concurrency`.

How the deployments exist without their runs being executed: the worker registers them, runs
phase 1, and is stopped (with --skip-running it is stopped as soon as they exist). Runs are still
created from them; nothing polls for runs any more, so in phases 2-4 they stay Scheduled and the
benchmark measures run creation only. Starting the real worker keeps the deployments exactly as the
stack defines them and keeps the flows out of this process. Because those runs stay Scheduled, the
Prefect server runs with its late-runs service off: it would spend the server's time marking hundreds
of them Late, which a polled work pool never sees. Every other server service runs as in the stack.

Process layout: this process starts one Kafka broker (state folder `.aims/bench`) and runs each
backend in a fresh child process (`--child`): the Prefect SDK reads PREFECT_API_URL and its other
settings from the environment, so the child sets them before it imports Prefect. Each phase prints
the machine's load average: the machine is shared and the numbers move with it. Nothing here fails
on a time: numbers and targets are printed, the exit status says only whether something crashed.

This module runs the backends (each in a child process) and prints; the parts are in
bench.router_parts, the measurements in bench.router_measure and bench.router_throughput, the report in
bench.router_report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Progress, interrupt, load_average
from bench.router_measure import (
    Context,
    measure_floor,
    measure_running,
    measure_steady,
    start_worker,
)
from bench.router_parts import (
    FLOOR_WARMUP,
    bench_root,
)

# Re-exported: the fault benchmark and the tests import it from here.
from bench.router_parts import templates as templates
from bench.router_report import render_results
from bench.router_throughput import measure_router

BACKENDS = ("postgres", "sqlite")


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number's median over the rounds; flags hold only if they held every round."""
    merged: dict[str, Any] = {}
    for key, first in rounds[0].items():
        values = [r[key] for r in rounds]
        if isinstance(first, bool):
            merged[key] = all(values)
        elif isinstance(first, int):
            merged[key] = statistics.median_low(values)  # counts stay whole
        elif isinstance(first, float):
            merged[key] = statistics.median(values)
        else:
            merged[key] = first
    return merged


def _stopper(say: Progress, what: str, stop: Callable[[], object]) -> Callable[[], None]:
    """A cleanup step that runs once, whether called early or by the final cleanup."""
    done = threading.Event()

    def run() -> None:
        if done.is_set():
            return
        done.set()
        say(f"stopping {what}…")
        try:
            stop()
        except Exception as exc:  # noqa: BLE001 - keep stopping the rest; the error is printed
            say(f"stopping {what} failed: {exc}")

    return run


def run_backend(args: argparse.Namespace) -> int:
    from events.kafka_clients import KafkaConnection
    from infra.postgres import PostgresServer
    from infra.prefect_server import PrefectServer, prefect_client_env
    from infra.stack_state import ensure_signing_key
    from schemas.settings import load_settings

    backend = args.backend
    say = Progress(backend)
    state = bench_root() / backend
    cleanup = contextlib.ExitStack()
    signal.signal(signal.SIGTERM, interrupt)
    try:
        # A fresh start: PostgreSQL left running by an interrupted run would hold its folder.
        leftover = PostgresServer(state, "prefect", database="prefect")
        if backend == "postgres" and leftover.data_dir.exists():
            leftover.stop()
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        database_url = None
        if backend == "postgres":
            say("starting PostgreSQL…")
            postgres = PostgresServer(state, "prefect", database="prefect")
            cleanup.callback(_stopper(say, "PostgreSQL", postgres.stop))
            database_url = postgres.start()
            say(f"PostgreSQL ready: {database_url}")
        # Runs created in phases 2-4 stay Scheduled (nothing executes them); the late-runs service
        # would then spend the server's time marking hundreds of them Late, which a served
        # deployment never sees. Every other service runs as in the stack.
        os.environ["PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED"] = "false"
        say("starting the Prefect server (late-runs service off)…")
        server = PrefectServer(state, database_url=database_url)
        cleanup.callback(_stopper(say, "the Prefect server", server.stop))
        api_url = server.start()
        say(f"Prefect server ready at {api_url}")
        # Before the first `import prefect`: the SDK reads these from the environment.
        os.environ.update(prefect_client_env(state, api_url))

        ctx = Context(
            backend=backend,
            state=state,
            # The parent's broker: its cluster with the settings' security, or its plaintext broker.
            kafka=KafkaConnection.from_settings(load_settings(), args.bootstrap),
            api_url=api_url,
            tag=time.strftime("%Y%m%d%H%M%S"),
            args=args,
            say=say,
            base_events=templates(state / "data"),
            signing_key=ensure_signing_key(state),
        )
        result: dict[str, Any] = {"backend": backend, "concurrency": args.concurrency}
        loads: dict[str, list[float]] = {}
        result["load"] = loads
        say("starting the worker (aims worker)…")
        worker = start_worker(ctx)
        stop_worker = _stopper(say, "the worker", lambda: worker.stop(30))
        cleanup.callback(stop_worker)
        if args.skip_running:
            say("RUNNING: skipped (--skip-running)")
        else:
            say(f"RUNNING: {args.running_events} events, {args.running_spacing:g}s apart, worker polling…")
            loads["running"] = [load_average()]
            result.update(measure_running(ctx))
            loads["running"].append(load_average())
        stop_worker()  # from here on, created runs stay Scheduled

        rounds: list[dict[str, Any]] = []
        for n in range(args.repeat):
            of = f" (round {n + 1} of {args.repeat})" if args.repeat > 1 else ""
            suffix = str(n + 1) if args.repeat > 1 else ""
            measured: dict[str, Any] = {}
            say(f"FLOOR{of}: {args.floor_runs} runs, one at a time (after {FLOOR_WARMUP} warm-up runs)…")
            loads[f"floor{suffix}"] = [load_average()]
            measured.update(measure_floor(ctx, n))
            loads[f"floor{suffix}"].append(load_average())
            for routers in args.routers:
                # One router's phase keeps its old names ("router", "ratio"); more get their count.
                phase = f"router{'' if routers == 1 else f'x{routers}'}{suffix}"
                say(
                    f"ROUTER{of}: {args.events} events, {routers} router(s), concurrency "
                    f"{args.concurrency} each…"
                )
                loads[phase] = [load_average()]
                measured.update(measure_router(ctx, measured["floor_rate"], n, routers))
                loads[phase].append(load_average())
            say(f"STEADY{of}: half the floor rate for {args.steady_seconds:g}s…")
            loads[f"steady{suffix}"] = [load_average()]
            measured.update(measure_steady(ctx, measured["floor_rate"], n))
            loads[f"steady{suffix}"].append(load_average())
            rounds.append(measured)
        result.update(medians(rounds))
        result["rounds"] = rounds
        Path(args.result).write_text(json.dumps(result, indent=2))
        return 0
    except KeyboardInterrupt:
        say("interrupted: stopping what was started")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup.close()


def child_command(args: argparse.Namespace, backend: str, bootstrap: str, result: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "bench.router",
        "--child",
        "--backend",
        backend,
        "--bootstrap",
        bootstrap,
        "--result",
        str(result),
        "--floor-runs",
        str(args.floor_runs),
        "--events",
        str(args.events),
        "--concurrency",
        str(args.concurrency),
        "--repeat",
        str(args.repeat),
        "--steady-seconds",
        str(args.steady_seconds),
        "--running-events",
        str(args.running_events),
        "--running-spacing",
        str(args.running_spacing),
    ]
    command += ["--routers", *(str(n) for n in args.routers)]
    if args.skip_running:
        command.append("--skip-running")
    return command


def run_all(args: argparse.Namespace) -> int:
    from events.kafka_security import without_kafka_security
    from infra.kafka_broker import KafkaBroker
    from schemas.settings import load_settings

    settings = load_settings()
    root = settings.state_path / "bench"
    say = Progress("bench")
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    broker: KafkaBroker | None = None
    child: subprocess.Popen[bytes] | None = None
    child_env = dict(os.environ)

    def on_term(signum: int, frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    results: list[dict[str, Any]] = []
    crashed = interrupted = False
    try:
        bootstrap = settings.kafka_bootstrap_servers
        if bootstrap:
            say(f"Kafka: using the existing cluster at {bootstrap}")
        else:
            say("Kafka: starting a local KRaft broker…")
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(root / "kafka" / "data", ignore_errors=True)  # topics of earlier runs
            broker = KafkaBroker(root, settings.kafka_home)
            bootstrap = broker.start()
            say(f"Kafka: broker ready at {bootstrap}")
            # The children talk to this plaintext broker, not with the environment's client security.
            child_env = without_kafka_security(os.environ)
        for backend in backends:
            result_path = root / f"result-{backend}.json"
            result_path.unlink(missing_ok=True)
            say(f"=== {backend}: a fresh child process ===")
            child = subprocess.Popen(child_command(args, backend, bootstrap, result_path), env=child_env)
            try:
                code = child.wait()
            except KeyboardInterrupt:
                say("interrupted: waiting for the child to stop what it started…")
                try:
                    child.wait(120)
                except subprocess.TimeoutExpired:
                    child.kill()
                raise
            if code == 0 and result_path.exists():
                results.append(json.loads(result_path.read_text()))
            else:
                crashed = True
                results.append({"backend": backend, "error": f"crashed (exit {code}); see the output above"})
    except KeyboardInterrupt:
        say("interrupted")
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if broker is not None:
            say("stopping the Kafka broker…")
            broker.stop()
    if results:
        print()
        print("\n".join(render_results(results, args)))
    return 130 if interrupted else 1 if crashed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.router",
        description="Router throughput and latency against Prefect on PostgreSQL and SQLite.",
    )
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="Prefect database to measure (default %(default)s)",
    )
    parser.add_argument(
        "--floor-runs",
        type=int,
        default=200,
        metavar="N",
        help="flow runs in the client-loop floor (default %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=300,
        metavar="N",
        help="events in the router throughput run (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="router_concurrency: run creations in flight (default %(default)s)",
    )
    parser.add_argument(
        "--routers",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="router counts of the throughput phase, each on its own topic: `--routers 1 2` measures one "
        "router, then two in one group (threads of this process), each against the same floor "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=30,
        metavar="S",
        help="length of the half-floor-rate latency run (default %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="rounds of floor, router and steady; the table shows medians (default %(default)s)",
    )
    parser.add_argument(
        "--skip-running",
        action="store_true",
        help="skip produce → Running (the worker still registers the deployments)",
    )
    parser.add_argument(
        "--running-events",
        type=int,
        default=10,
        metavar="N",
        help="events in the produce → Running sample (default %(default)s)",
    )
    parser.add_argument(
        "--running-spacing",
        type=float,
        default=5,
        metavar="S",
        help="seconds between those events (default %(default)s)",
    )
    # Internal: one backend in a fresh process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything in order, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.floor_runs < 10 or args.events < 10 or args.repeat < 1 or min(args.routers) < 1:
        raise SystemExit("--floor-runs and --events need at least 10, --repeat and --routers at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    if args.child:
        if args.backend == "both" or not args.bootstrap or not args.result:
            raise SystemExit("--child needs one --backend, --bootstrap and --result")
        return run_backend(args)
    return run_all(args)


if __name__ == "__main__":
    raise SystemExit(main())
