"""`aims up|down|restart|worker|router|gateway|status|demo`: the local stack and its long-running parts."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aims.commands.common import AddCommand, cli_settings, setup_logging
from aims.errors import CliError

if TYPE_CHECKING:
    from schemas.settings import AimsSettings


def cmd_up(args: argparse.Namespace) -> int:
    from aims.progress import tracking
    from infra.kafka_broker import BrokerUnavailable
    from infra.postgres import PostgresUnavailable
    from infra.stack import LocalStack

    settings = _with_brokers(cli_settings(), args.brokers)
    if args.prefect_db is not None:
        settings = settings.model_copy(update={"prefect_database": args.prefect_db})
    if args.detach:
        return _up_detached(settings, args.brokers, args.prefect_db)
    setup_logging()
    stack = LocalStack(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with tracking("starting the stack") as progress:
            try:
                info = stack.start(progress=progress.step)
            except BrokerUnavailable as exc:
                raise CliError(f"Kafka did not start: {exc}") from None
            except PostgresUnavailable as exc:
                raise CliError(f"PostgreSQL for the Prefect server did not start: {exc}") from None
        print(f"\nStack up. Prefect UI: {info.prefect_ui_url}  Kafka: {info.bootstrap}", flush=True)
        print(f"Logs: {settings.state_path / 'logs'}. Press Ctrl-C to stop.", flush=True)
        # Flushed: detached, stdout is the stack's log file, where restarts must show as they happen.
        supervisor = threading.Thread(
            target=stack.supervise, kwargs={"progress": lambda m: print(m, flush=True)}, daemon=True
        )
        supervisor.start()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stack.stop(progress=lambda m: print(m, flush=True))
    return 0


def _with_brokers(settings: AimsSettings, brokers: int | None) -> AimsSettings:
    """The settings with `--brokers`: the nodes of the local cluster (AIMS_KAFKA_LOCAL_BROKERS)."""
    from pydantic import ValidationError

    from schemas.settings import AimsSettings

    if brokers is None:
        return settings
    if settings.kafka_bootstrap_servers:
        raise CliError(
            "--brokers starts a local cluster, but KAFKA_BOOTSTRAP_SERVERS names an existing one: "
            "unset it, or leave out --brokers"
        )
    try:
        return AimsSettings(**{**settings.model_dump(), "kafka_local_brokers": brokers})
    except ValidationError as exc:
        from aims.emit import explain

        raise CliError(f"--brokers {brokers}: {explain(exc)}") from None


def _up_detached(settings: AimsSettings, brokers: int | None = None, prefect_db: str | None = None) -> int:
    from infra.stack import StackInfo, aims_command

    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    if StackInfo.load(state) is not None:
        raise CliError(f"a stack is already running from {state}; `aims down` stops it")
    log_path = state / "logs" / "stack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            aims_command(
                "up",
                *(["--brokers", str(brokers)] if brokers is not None else []),
                *(["--prefect-db", prefect_db] if prefect_db is not None else []),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"the stack did not start; see {log_path}")
        info = StackInfo.load(state)
        if info is not None:
            print(
                f"Stack up (pid {info.supervisor_pid}). "
                f"Prefect UI: {info.prefect_ui_url}  Kafka: {info.bootstrap}"
            )
            return 0
        time.sleep(0.5)
    raise CliError(f"the stack is still not up after 300 s; see {log_path}")


def cmd_down(args: argparse.Namespace) -> int:
    """Stop everything started from the state folder: the stack, and what announced itself there.

    The supervisor stops its children and the routers, workers and gateway started by hand, in
    order (gateway, routers, workers, Prefect, Kafka). If it hangs, its children as stack.json names
    them now and the announced processes are stopped from here. Then whatever still runs is stopped
    too (a stack whose supervisor died). Every pid read from a file is checked to still run that
    component before it is signalled.
    """
    from infra.processes import stop_pid
    from infra.stack import StackInfo, announced_processes, is_component_process, stop_processes

    settings = cli_settings()
    state = settings.state_path

    def say(message: str) -> None:
        print(message, flush=True)

    info = StackInfo.load(state)
    if info is not None and not is_component_process(info.supervisor_pid, "supervisor", state):
        say(f"stack.json names pid {info.supervisor_pid}, which no longer runs an aims stack: a stale file")
        info = None
    if info is not None:
        say(f"stopping the stack (pid {info.supervisor_pid})…")
        if not stop_pid(info.supervisor_pid, timeout=90):
            say("the supervisor did not stop within 90 s; stopping its processes from here")
            latest = StackInfo.load(state) or info  # the pids after its restarts
            stop_processes(announced_processes(state, latest.pids), say)
            # It had SIGTERM (so it restarts nothing more) but hangs; it must not outlive its stack.
            if is_component_process(info.supervisor_pid, "supervisor", state):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.supervisor_pid, signal.SIGKILL)
    # What still runs: routers, workers or a gateway started by hand, or the children of a stack
    # whose supervisor died (stack.json is read even then).
    leftover = StackInfo.read(state)
    remaining = announced_processes(state, leftover.pids if leftover else None)
    if remaining:
        stop_processes(remaining, say)
    postgres_left = _stop_prefect_postgres(state, say)
    StackInfo.path(state).unlink(missing_ok=True)
    if info is None and not remaining and not postgres_left:
        print("no stack is running from this state folder")
        return 0
    print("stack stopped")
    return 0


def _stop_prefect_postgres(state: Path, say: Callable[[str], None]) -> bool:
    """Stop the Prefect server's PostgreSQL a stack left running (its supervisor died); True if one ran.

    It is a daemon of pg_ctl's, not a child with a pid in stack.json: found by its data folder.
    """
    from infra.postgres import PostgresServer, PostgresUnavailable

    postgres = PostgresServer(state, "prefect", database="prefect")
    if not postgres.data_dir.exists():
        return False
    try:
        if not postgres.running():
            return False
        say("stopping the Prefect server's PostgreSQL…")
        postgres.stop()
    except PostgresUnavailable as exc:
        say(f"the Prefect server's PostgreSQL in {postgres.data_dir} could not be stopped: {exc}")
    return True


def cmd_restart(args: argparse.Namespace) -> int:
    """Restart one component of the running stack through its supervisor, and wait until it is ready.

    The request travels as a file in the state folder (see `infra.stack`); the supervisor restarts
    the component, waits for it and answers. Exit 0 once ready, 1 if it did not come back.
    """
    from infra.stack import StackInfo, parse_component, request_restart, take_restart_result, withdraw_restart

    try:
        component = parse_component(args.component)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.timeout <= 0:
        raise CliError(f"--timeout {args.timeout}: seconds to wait, more than 0")
    state = cli_settings().state_path
    info = StackInfo.load(state)
    if info is None:
        raise CliError(f"no stack is running from {state}: start one with `aims up`")
    request_id = request_restart(state, component)
    print(f"asking the stack (pid {info.supervisor_pid}) to restart {component}…", flush=True)
    deadline = time.monotonic() + args.timeout
    while True:
        result = take_restart_result(state, request_id)
        if result is not None:
            print(result.message)
            return 0 if result.ok else 1
        if StackInfo.load(state) is None:
            withdraw_restart(state, request_id)
            print(f"the stack stopped before {component} was restarted", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            withdraw_restart(state, request_id)
            print(
                f"{component}: no answer from the stack within {args.timeout:.0f} s; "
                f"see {state / 'logs' / 'stack.log'} (detached) or the `aims up` terminal",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.5)


def cmd_probe(args: argparse.Namespace) -> int:
    """Exit 0 if this host's router (fresh heartbeat) or worker (a flow-run process ready) is alive."""
    from aims.probe import probe_router, probe_worker

    if args.max_age <= 0:
        raise CliError(f"--max-age {args.max_age}: seconds, more than 0")
    state = cli_settings().state_path
    if args.component == "router":
        result = probe_router(state, socket.gethostname(), time.time(), args.max_age)
    else:
        result = probe_worker(state)
    print(result.message, file=sys.stdout if result.ok else sys.stderr, flush=True)
    return 0 if result.ok else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from aims.endpoints import Endpoints, prefect_auth, use_prefect

    settings = cli_settings()
    api = settings.prefect_api_url
    if not api:
        raise CliError("the worker needs PREFECT_API_URL (set by `aims up`)")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit {args.limit}: expected 1 or more runs at once (or none: the pool's limit)")
    # A worker started by hand beside the local stack logs in as the stack's own processes do. Its
    # poll interval is Prefect's PREFECT_WORKER_QUERY_SECONDS: set here from AIMS_WORKER_POLL_SECONDS
    # unless the environment sets it (as `aims up` does from the same setting, and Prefect's worker
    # chart from its queryInterval).
    use_prefect(settings, Endpoints("", api, None, prefect_auth(settings, api)))
    from infra.serving import serve

    interval = os.environ["PREFECT_WORKER_QUERY_SECONDS"]  # what Prefect's worker reads when imported
    print(
        f"polling work pool {settings.work_pool!r} every {interval} s (PREFECT_WORKER_QUERY_SECONDS)",
        flush=True,
    )
    # The pool's limit (AIMS_WORK_POOL_CONCURRENCY when the worker creates the pool or finds it
    # without one) bounds every worker on the pool; --limit only lowers it for this one.
    serve(
        settings.work_pool,
        settings.state_path,
        limit=args.limit,
        spares=settings.warm_processes,
        concurrency=settings.work_pool_concurrency,
        healthcheck=args.with_healthcheck,
    )
    return 0


def cmd_router(args: argparse.Namespace) -> int:
    from aims.endpoints import resolve, use_prefect

    setup_logging(args.verbose)
    settings = cli_settings()
    endpoints = resolve(settings)
    use_prefect(settings, endpoints)
    # The router retries on its own short, jittered backoff; the client's built-in retries sleep
    # 2-8 s on a 503 from a busy SQLite server and hide the outage from `aims status`.
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "0")

    from connectors.prefect_runs import PrefectLauncher
    from connectors.register import open_register
    from connectors.register.receipts import RegisterReceipts
    from events.router import Router
    from events.topics import MissingTopicsError, prepare_topics, topic_specs
    from infra.resources import anchor_publisher, outbox_relay
    from schemas.policy_file import data_quality_policy

    coalesce_seconds = data_quality_policy(settings.policy_file).coalesce_seconds
    try:
        # Created where missing, or (AIMS_KAFKA_CREATE_TOPICS=false: Strimzi's KafkaTopics) only checked.
        prepare_topics(endpoints.kafka, topic_specs(settings), create=settings.kafka_create_topics)
    except MissingTopicsError as exc:
        raise CliError(str(exc)) from None
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    register = open_register(settings)
    router = Router(
        settings,
        endpoints.kafka,
        PrefectLauncher,
        heartbeat_dir=settings.state_path / "routers",
        name=name,
        receipts=RegisterReceipts(register, actor=f"router:{name}"),
        coalesce_seconds=coalesce_seconds,
        outbox=outbox_relay(register, endpoints.kafka, name, settings.event_signing_key),
        anchors=anchor_publisher(register, endpoints.kafka, name, settings),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: router.stop())
    router.run()
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    from aims.endpoints import resolve

    setup_logging(args.verbose)
    settings = cli_settings()
    endpoints = resolve(settings)
    overrides: dict[str, object] = {"kafka_bootstrap_servers": endpoints.bootstrap}
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise CliError(f"--port {args.port}: a TCP port is 0..65535 (0: any free one)")
        overrides["gateway_port"] = args.port
    settings = settings.model_copy(update=overrides)
    from gateway.app import serve
    from gateway.status_file import status_path
    from infra.resources import gateway_desk

    status = status_path(settings.state_path)

    def ready(port: int) -> None:
        status.parent.mkdir(parents=True, exist_ok=True)
        status.write_text(json.dumps({"pid": os.getpid(), "port": port, "host": settings.gateway_host}))

    desk, outbox = gateway_desk(settings)
    try:
        serve(settings, desk, ready)
    finally:
        status.unlink(missing_ok=True)
        outbox.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from aims.endpoints import Endpoints, prefect_auth, resolve
    from aims.status import collect, healthy, render

    if not 0 < args.timeout <= 600:
        raise CliError(f"--timeout {args.timeout}: seconds, more than 0 and at most 600")
    settings = cli_settings()
    try:
        endpoints = resolve(settings)
    except CliError:
        if not args.json:
            raise
        # --json always prints a document: a script reads "Kafka not configured" from it, not stderr.
        endpoints = Endpoints(
            "", settings.prefect_api_url, None, prefect_auth(settings, settings.prefect_api_url)
        )
    # The status reports each client's failures itself; their log lines would only repeat them (and a
    # probe still running at exit could write to stderr while the interpreter shuts down).
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    status = collect(settings, endpoints, deadline=args.timeout)
    print(json.dumps(status, indent=2, default=str) if args.json else render(status), flush=True)
    return 0 if healthy(status) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from aims.demo import run_demo

    setup_logging()
    logging.getLogger().setLevel(logging.WARNING)
    return run_demo(cli_settings(), exit_after=args.exit, timeout=args.timeout)


def add_commands(add: AddCommand) -> None:
    up = add("up", cmd_up, "Start the whole local stack (broker, Prefect, deployments, router).")
    up.add_argument("--detach", action="store_true", help="run in the background; `aims down` stops it")
    up.add_argument(
        "--brokers",
        type=int,
        default=None,
        metavar="N",
        help="run Kafka as a local cluster of N nodes (3: topics with 3 copies, 2 in sync, as in "
        "production); default AIMS_KAFKA_LOCAL_BROKERS, 1",
    )
    up.add_argument(
        "--prefect-db",
        choices=["sqlite", "postgres"],
        default=None,
        help="the local Prefect server's database: postgres starts a PostgreSQL in the state folder "
        "(about 15 runs/s against SQLite's 2-5; see the README); default AIMS_PREFECT_DATABASE, sqlite",
    )
    add("down", cmd_down, "Stop the stack and whatever was started from its state folder.")
    restart = add(
        "restart", cmd_restart, "Restart one component of the running stack and wait until it is ready."
    )
    restart.add_argument("component", help="kafka | prefect-server | worker | router | gateway")
    restart.add_argument(
        "--timeout", type=float, default=600, help="seconds to wait for it (default %(default)s)"
    )
    worker = add("worker", cmd_worker, "Serve the Prefect deployments and run their flow runs.")
    worker.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most this many runs at once in this worker, below the work pool's limit "
        "(AIMS_WORK_POOL_CONCURRENCY, or the limit set in Prefect)",
    )
    worker.add_argument(
        "--with-healthcheck",
        action="store_true",
        help="serve Prefect's worker health check (GET /health, 503 once the worker stopped polling its "
        "pool) on PREFECT_WORKER_WEBSERVER_HOST:PREFECT_WORKER_WEBSERVER_PORT (0.0.0.0:8080), for a "
        "container's liveness probe",
    )
    probe = add(
        "probe",
        cmd_probe,
        "Exit 0 if this host's router or worker is alive, from its files in the state folder "
        "(a container's health check).",
    )
    probe.add_argument("component", choices=["router", "worker"])
    probe.add_argument(
        "--max-age",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="router: the oldest heartbeat that still counts (default %(default)s; it beats every ~2 s)",
    )
    router = add("router", cmd_router, "Route events from Kafka to Prefect deployments.")
    router.add_argument("--name", default=None, help="name shown in `aims status`")
    router.add_argument("-v", "--verbose", action="store_true")

    gateway = add(
        "gateway", cmd_gateway, "Take Slack interactions and Jira webhooks (approval decisions) over HTTP."
    )
    gateway.add_argument("--port", type=int, default=None, help="listen here (default AIMS_GATEWAY_PORT)")
    gateway.add_argument("-v", "--verbose", action="store_true")

    status = add("status", cmd_status, "Show broker, Prefect, topics, lag, routers and recent runs.")
    status.add_argument("--json", action="store_true", help="one JSON document, whatever failed")
    status.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="answer within this long; what did not answer is shown as unknown (default %(default)s)",
    )

    demo = add("demo", cmd_demo, "Start the stack, emit one event of each type, follow the runs.")
    demo.add_argument("--exit", action="store_true", help="stop the stack when the runs are done")
    demo.add_argument("--timeout", type=float, default=300, help="seconds to wait for the runs")
