"""The `aims` command. Thin: parse, then call into the packages. Heavy imports stay in commands."""

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aims.errors import CliError

if TYPE_CHECKING:
    from schemas.settings import AimsSettings

Handler = Callable[[argparse.Namespace], int]


def _settings() -> AimsSettings:
    from pydantic import ValidationError

    from schemas.settings import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        from aims.emit import explain

        raise CliError(f"invalid settings in the environment (AIMS_*):\n{explain(exc)}") from None


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python logs every reconnection attempt at ERROR while a broker is away: 108 lines for an
    # 8-second restart. The router says once what it holds on, and when Kafka is back.
    for chatty in ("kafka.net", "kafka.cluster"):
        logging.getLogger(chatty).setLevel(logging.CRITICAL)


# -- the stack ----------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from infra.stack import LocalStack

    settings = _settings()
    if args.detach:
        return _up_detached(settings)
    _logging()
    stack = LocalStack(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        info = stack.start(progress=lambda m: print(m, flush=True))
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


def _up_detached(settings: AimsSettings) -> int:
    from infra.stack import StackInfo, aims_command

    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    if StackInfo.load(state) is not None:
        raise CliError(f"a stack is already running from {state}; `aims down` stops it")
    log_path = state / "logs" / "stack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            aims_command("up"),
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

    settings = _settings()
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
    StackInfo.path(state).unlink(missing_ok=True)
    if info is None and not remaining:
        print("no stack is running from this state folder")
        return 0
    print("stack stopped")
    return 0


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
    state = _settings().state_path
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


def cmd_worker(args: argparse.Namespace) -> int:
    from aims.endpoints import Endpoints, use_prefect

    settings = _settings()
    api = settings.prefect_api_url
    if not api:
        raise CliError("the worker needs PREFECT_API_URL (set by `aims up`)")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit {args.limit}: expected 1 or more runs at once (or none: the pool's limit)")
    use_prefect(settings, Endpoints("", api, None))
    from infra.serving import serve

    # The pool's limit (AIMS_WORK_POOL_CONCURRENCY when the worker creates the pool or finds it
    # without one) bounds every worker on the pool; --limit only lowers it for this one.
    serve(
        settings.work_pool,
        settings.state_path,
        limit=args.limit,
        spares=settings.warm_processes,
        concurrency=settings.work_pool_concurrency,
    )
    return 0


def cmd_router(args: argparse.Namespace) -> int:
    from aims.endpoints import resolve, use_prefect

    _logging(args.verbose)
    settings = _settings()
    endpoints = resolve(settings)
    use_prefect(settings, endpoints)
    # The router retries on its own short, jittered backoff; the client's built-in retries sleep
    # 2-8 s on a 503 from a busy SQLite server and hide the outage from `aims status`.
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "0")

    from connectors.prefect_runs import PrefectLauncher
    from connectors.register import open_register
    from connectors.register.receipts import RegisterReceipts
    from events.kafka_clients import make_producer
    from events.outbox import OutboxRelay
    from events.router import Router
    from events.topics import ensure_topics, topic_specs
    from schemas.policy_file import data_quality_policy

    coalesce_seconds = data_quality_policy(settings.policy_file).coalesce_seconds
    ensure_topics(endpoints.bootstrap, topic_specs(settings))
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    register = open_register(settings)
    router = Router(
        settings,
        endpoints.bootstrap,
        PrefectLauncher,
        heartbeat_dir=settings.state_path / "routers",
        name=name,
        receipts=RegisterReceipts(register, actor=f"router:{name}"),
        coalesce_seconds=coalesce_seconds,
        outbox=OutboxRelay(
            register, make_producer(endpoints.bootstrap, client_id=f"aims-outbox-{name}"), f"router:{name}"
        ),
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: router.stop())
    router.run()
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    from aims.endpoints import resolve

    _logging(args.verbose)
    settings = _settings()
    endpoints = resolve(settings)
    overrides: dict[str, object] = {"kafka_bootstrap_servers": endpoints.bootstrap}
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise CliError(f"--port {args.port}: a TCP port is 0..65535 (0: any free one)")
        overrides["gateway_port"] = args.port
    settings = settings.model_copy(update=overrides)
    from gateway.app import serve, status_path

    status = status_path(settings.state_path)

    def ready(port: int) -> None:
        status.parent.mkdir(parents=True, exist_ok=True)
        status.write_text(json.dumps({"pid": os.getpid(), "port": port, "host": settings.gateway_host}))

    try:
        serve(settings, ready)
    finally:
        status.unlink(missing_ok=True)
    return 0


# -- events -------------------------------------------------------------------------------------


def cmd_emit(args: argparse.Namespace) -> int:
    from aims.emit import build_event

    settings = _settings()
    event = build_event(
        args.type,
        args.data or [],
        args.file,
        subject=args.subject,
        source=args.source,
        event_id=args.id,
    )
    if args.dry_run:
        print(event.model_dump_json(indent=2, exclude_none=True))
        return 0
    from aims.endpoints import resolve
    from events.producer import EventPublisher

    endpoints = resolve(settings)
    publisher = EventPublisher(endpoints.bootstrap, settings.events_topic)
    try:
        partition = publisher.publish(event, mode="binary" if args.binary else "structured")
    finally:
        publisher.close()
    print(f"published {event.type} id={event.id} subject={event.key} → {settings.events_topic}[{partition}]")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from aims.endpoints import Endpoints, resolve
    from aims.status import collect, healthy, render

    if not 0 < args.timeout <= 600:
        raise CliError(f"--timeout {args.timeout}: seconds, more than 0 and at most 600")
    settings = _settings()
    try:
        endpoints = resolve(settings)
    except CliError:
        if not args.json:
            raise
        # --json always prints a document: a script reads "Kafka not configured" from it, not stderr.
        endpoints = Endpoints("", settings.prefect_api_url, None)
    # The status reports each client's failures itself; their log lines would only repeat them (and a
    # probe still running at exit could write to stderr while the interpreter shuts down).
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    status = collect(settings, endpoints, deadline=args.timeout)
    print(json.dumps(status, indent=2, default=str) if args.json else render(status), flush=True)
    return 0 if healthy(status) else 1


def cmd_dlq(args: argparse.Namespace) -> int:
    from aims.dlq import parse_position, read_dead_letters, render_list, render_one, replay
    from aims.endpoints import resolve

    settings = _settings()
    bootstrap = resolve(settings).bootstrap
    letters = list(read_dead_letters(settings, bootstrap))
    if args.dlq_command == "list":
        if args.reason:
            letters = [d for d in letters if d.reason == args.reason]
        letters = letters[-args.limit :]
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "position": f"{d.partition}:{d.offset}",
                            "reason": d.reason,
                            "detail": d.detail,
                            "key": (d.key or b"").decode("utf-8", "replace"),
                        }
                        for d in letters
                    ],
                    indent=2,
                )
            )
        else:
            print(render_list(letters))
        return 0
    by_position = {(d.partition, d.offset): d for d in letters}
    positions = [parse_position(p) for p in getattr(args, "positions", []) or []]
    missing = [f"{p}:{o}" for p, o in positions if (p, o) not in by_position]
    if missing:
        raise CliError(f"no dead letter at {', '.join(missing)} (see `aims dlq list`)")
    if args.dlq_command == "show":
        print("\n\n".join(render_one(by_position[p]) for p in positions))
        return 0
    if args.all:
        chosen = [d for d in letters if not args.reason or d.reason == args.reason]
        references = [d for d in chosen if d.is_reference]
        if references:
            # They hold no original to publish (see `aims dlq show`); the rest can still go.
            print(f"skipped {len(references)} reference(s) to records too large to copy")
            chosen = [d for d in chosen if not d.is_reference]
    elif positions:
        chosen = [by_position[p] for p in positions]
    else:
        raise CliError("say what to replay: PARTITION:OFFSET … or --all [--reason R]")
    count = replay(settings, bootstrap, chosen)
    print(f"replayed {count} dead letter(s) to {settings.events_topic}")
    return 0


def cmd_schemas_export(args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(args.directory):
        print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from aims.demo import run_demo

    _logging()
    logging.getLogger().setLevel(logging.WARNING)
    return run_demo(_settings(), exit_after=args.exit, timeout=args.timeout)


# -- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aims",
        description="Event-driven orchestrator for the PDCA cycle of an ISO/IEC 42001 AI management system.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    up = add("up", cmd_up, "Start the whole local stack (broker, Prefect, deployments, router).")
    up.add_argument("--detach", action="store_true", help="run in the background; `aims down` stops it")
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
    router = add("router", cmd_router, "Route events from Kafka to Prefect deployments.")
    router.add_argument("--name", default=None, help="name shown in `aims status`")
    router.add_argument("-v", "--verbose", action="store_true")

    gateway = add(
        "gateway", cmd_gateway, "Take Slack interactions and Jira webhooks (approval decisions) over HTTP."
    )
    gateway.add_argument("--port", type=int, default=None, help="listen here (default AIMS_GATEWAY_PORT)")
    gateway.add_argument("-v", "--verbose", action="store_true")

    emit = add("emit", cmd_emit, "Publish an event from flags or from a JSON file.")
    emit.add_argument("type", nargs="?", help="model-version-registered | data-changed | incident-reported")
    emit.add_argument(
        "-d",
        "--data",
        action="append",
        metavar="FIELD=VALUE",
        help="a data field; dotted names nest (location.uri=…); JSON values allowed",
    )
    emit.add_argument("-f", "--file", type=Path, help="a whole CloudEvent, or its data when TYPE is given")
    emit.add_argument("--subject", help="defaults to the AI system or dataset in the data")
    emit.add_argument("--source", default="urn:aims:cli", help="CloudEvents source (default %(default)s)")
    emit.add_argument("--id", help="event id (default: a new UUID); reuse one to test redelivery")
    emit.add_argument("--binary", action="store_true", help="binary content mode (ce_ headers)")
    emit.add_argument("--dry-run", action="store_true", help="validate and print, publish nothing")

    status = add("status", cmd_status, "Show broker, Prefect, topics, lag, routers and recent runs.")
    status.add_argument("--json", action="store_true", help="one JSON document, whatever failed")
    status.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="answer within this long; what did not answer is shown as unknown (default %(default)s)",
    )

    dlq = add("dlq", cmd_dlq, "Manage dead letters.")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlist = dsub.add_parser("list", help="list dead letters with their reasons")
    dlist.add_argument("--reason", help="only this reason (e.g. invalid-payload)")
    dlist.add_argument("--limit", type=int, default=50)
    dlist.add_argument("--json", action="store_true")
    dshow = dsub.add_parser("show", help="show dead letters in full")
    dshow.add_argument("positions", nargs="+", metavar="PARTITION:OFFSET")
    dreplay = dsub.add_parser("replay", help="publish dead letters to the events topic again")
    dreplay.add_argument("positions", nargs="*", metavar="PARTITION:OFFSET")
    dreplay.add_argument(
        "--all", action="store_true", help="every dead letter (with --reason: of that reason)"
    )
    dreplay.add_argument("--reason")

    schemas = add("schemas", lambda a: 2, "Event contract tools.")
    ssub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = ssub.add_parser("export", help="write the JSON Schemas producers validate against")
    export.add_argument("directory", type=Path)
    export.set_defaults(handler=cmd_schemas_export)

    demo = add("demo", cmd_demo, "Start the stack, emit one event of each type, follow the runs.")
    demo.add_argument("--exit", action="store_true", help="stop the stack when the runs are done")
    demo.add_argument("--timeout", type=float, default=300, help="seconds to wait for the runs")

    from aims import iso_cli, register_cli, review_cli

    register_cli.add_commands(add)
    review_cli.add_commands(add)
    iso_cli.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"aims: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
