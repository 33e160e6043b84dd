"""The gateway: Slack interactions and Jira webhooks in, validated decision and update events out.

- `POST /slack/interactions`: the Slack signature (signing secret, 5-minute window) is checked on
  the raw body before anything else; the click is answered at once (Slack wants 200 within 3 s),
  the Kafka send and the ephemeral answer to the clicker follow in the background.
- `POST /jira/webhook`: the `X-Hub-Signature` HMAC is checked, then the signed body's `timestamp`
  against the replay window (`AIMS_JIRA_WEBHOOK_WINDOW_SECONDS`); the issue's kind (approval,
  incident, review) says what its status move is (gateway/jira_dispatch.py). Webhooks of our own
  transitions are ignored.
- `POST /mlflow/webhook`: MLflow 3.x model-registry webhooks (gateway/mlflow_hooks.py): the
  `X-MLflow-Signature` over delivery id, timestamp and body, then the signed timestamp against the
  replay window (`AIMS_MLFLOW_WEBHOOK_WINDOW_SECONDS`), then the body; the MLflow desk records each
  delivery once per delivery id (a replay gets 409) with the events it makes (gateway/mlflow_desk.py).
- `POST /api/v1/lineage`: OpenLineage events from a pipeline's HTTP transport
  (gateway/openlineage_hooks.py): the bearer key (`AIMS_OPENLINEAGE_API_KEY`), the gzip body
  decompressed within the body cap, then the run event; the OpenLineage desk records each run
  transition once, with the data-changed events of a finished run's mapped outputs
  (gateway/openlineage_desk.py).
- `GET /healthz`.

Before any of that, the caps of gateway/limits.py: body size (413), body time (408) and requests in
flight (503), from the settings.

This module is the routes and the composition root (`serve`); the jobs are beside it: signatures
(gateway/signatures.py), the payloads read (gateway/payloads.py), the Slack action table
(gateway/slack_actions.py), the Jira dispatch (gateway/jira_dispatch.py), the desk that hands their
commands to the one handler table (gateway/desk.py), the answers (gateway/answers.py) and Socket
Mode (gateway/slack_socket.py). Every channel ends in `flows.commands.handle`, the path the CLI and
the flows take too: a refused attempt is recorded with its reason and answered (ephemeral message,
Jira comment or move back), and produces no event. Bad signatures get 401 and touch nothing.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from gateway.answers import Outcome, run_later
from gateway.desk import DecisionDesk
from gateway.limits import Limits
from gateway.mlflow_hooks import Ignored, Refusal, read_delivery
from gateway.openlineage_hooks import PATH as OPENLINEAGE_PATH
from gateway.openlineage_hooks import Ignored as LineageIgnored
from gateway.openlineage_hooks import read_event
from gateway.payloads import BlockActions, JiraWebhook
from gateway.signatures import jira_signature_ok, jira_timestamp_fresh, slack_signature_ok

if TYPE_CHECKING:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response

    from schemas.settings import AimsSettings

log = logging.getLogger("aims.gateway")

# -- HTTP -------------------------------------------------------------------------------------


def create_app(settings: AimsSettings, desk: DecisionDesk, clock: Callable[[], float]) -> Limits:
    """The routes, behind the caps on bodies and requests in flight (which run first)."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def reply(outcome: Outcome) -> Response:
        task = BackgroundTask(run_later, outcome) if outcome.later else None
        return JSONResponse(outcome.body, status_code=outcome.status, background=task)

    async def slack_interactions(request: Request) -> Response:
        secret = settings.slack_signing_secret
        if secret is None:
            return JSONResponse({"error": "set AIMS_SLACK_SIGNING_SECRET to accept Slack interactions"}, 503)
        body = await request.body()
        headers = request.headers
        if not slack_signature_ok(
            secret.get_secret_value(),
            body,
            headers.get("x-slack-request-timestamp"),
            headers.get("x-slack-signature"),
            clock(),
        ):
            log.warning("Slack interaction with a bad or stale signature refused (%s)", request.client)
            return JSONResponse({"error": "invalid signature"}, 401)
        try:
            raw = parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0]
            payload = BlockActions.model_validate_json(raw)
        except (KeyError, ValueError, UnicodeDecodeError, ValidationError) as exc:
            return JSONResponse({"error": f"not a Slack interaction payload: {str(exc)[:200]}"}, 400)
        return reply(await run_in_threadpool(desk.slack, payload))

    async def jira_webhook(request: Request) -> Response:
        secret = settings.jira_webhook_secret
        if secret is None:
            return JSONResponse({"error": "set AIMS_JIRA_WEBHOOK_SECRET to accept Jira webhooks"}, 503)
        body = await request.body()
        if not jira_signature_ok(secret.get_secret_value(), body, request.headers.get("x-hub-signature")):
            log.warning("Jira webhook with a bad signature refused (%s)", request.client)
            return JSONResponse({"error": "invalid signature"}, 401)
        try:
            hook = JiraWebhook.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"error": f"not a Jira issue webhook: {str(exc)[:200]}"}, 400)
        # Checked once the body is known to be Jira's: the stamp is inside what was signed.
        if not jira_timestamp_fresh(hook.timestamp, clock(), settings.jira_webhook_window_seconds):
            log.warning("Jira webhook with a stale or missing timestamp refused (%s)", request.client)
            return JSONResponse({"error": "stale or missing timestamp"}, 401)
        return reply(await run_in_threadpool(desk.jira, hook))

    async def mlflow_webhook(request: Request) -> Response:
        secret = settings.mlflow_webhook_secret
        if secret is None:
            return JSONResponse({"error": "set AIMS_MLFLOW_WEBHOOK_SECRET to accept MLflow webhooks"}, 503)
        body = await request.body()
        window = settings.mlflow_webhook_window_seconds
        read = read_delivery(secret.get_secret_value(), request.headers, body, clock(), window)
        if isinstance(read, Refusal):
            log.warning("MLflow delivery refused (%s): %s", request.client, read.reason)
            return JSONResponse({"error": read.reason}, read.status)
        if isinstance(read, Ignored):
            return JSONResponse({"ignored": "not a model-registry event"})
        return reply(await run_in_threadpool(desk.mlflow, read))

    async def openlineage(request: Request) -> Response:
        key = settings.openlineage_api_key
        if key is None:
            return JSONResponse({"error": "set AIMS_OPENLINEAGE_API_KEY to accept OpenLineage events"}, 503)
        body = await request.body()
        read = read_event(key.get_secret_value(), request.headers, body, settings.gateway_max_body_bytes)
        if isinstance(read, Refusal):
            log.warning("OpenLineage event refused (%s): %s", request.client, read.reason)
            headers = {"WWW-Authenticate": "Bearer"} if read.status == 401 else None
            return JSONResponse({"error": read.reason}, read.status, headers=headers)
        if isinstance(read, LineageIgnored):
            return JSONResponse({"ignored": read.what})
        return reply(await run_in_threadpool(desk.openlineage, read))

    async def healthz(request: Request) -> Response:
        def check() -> dict[str, Any]:
            with desk.register.reader() as uow:
                pending = uow.approvals.count(status="pending")
                open_incidents = uow.incidents.count(closed_at=None)
                clocks = uow.incidents.count(serious=True, reported_to_authority_at=None, closed_at=None)
            return {
                "status": "ok",
                "pending_approvals": pending,
                "open_incidents": open_incidents,
                "art73_clocks_running": clocks,
            }

        try:
            state = await run_in_threadpool(check)
        except Exception as exc:  # noqa: BLE001 - any failure is "not healthy", with its reason
            return JSONResponse({"status": "unhealthy", "error": str(exc)[:300]}, 503)
        state |= {"slack": desk.chat is not None, "jira": desk.tracker is not None}
        return JSONResponse(state)

    routes = Starlette(
        routes=[
            Route("/slack/interactions", slack_interactions, methods=["POST"]),
            Route("/jira/webhook", jira_webhook, methods=["POST"]),
            Route("/mlflow/webhook", mlflow_webhook, methods=["POST"]),
            Route(OPENLINEAGE_PATH, openlineage, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    return Limits(
        routes,
        max_body=settings.gateway_max_body_bytes,
        max_in_flight=settings.gateway_max_concurrent_requests,
        body_timeout=settings.gateway_body_timeout,
    )


def uvicorn_config(app: Any, settings: AimsSettings) -> uvicorn.Config:
    """How uvicorn serves the gateway; tests serve it with this too."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        lifespan="off",
        # Open connections, idle keep-alive ones included, beyond which uvicorn itself answers 503:
        # the app's cap counts requests, and this bounds the sockets slow clients can hold before
        # sending one. Four per request slot leaves room for the keep-alive pools of proxies.
        limit_concurrency=4 * settings.gateway_max_concurrent_requests,
    )


def serve(settings: AimsSettings, desk: DecisionDesk, ready: Callable[[int], None] | None = None) -> None:
    """Run the gateway until SIGTERM/SIGINT; `ready` gets the bound port (the setting may say 0).

    The desk, with its register, Slack, Jira and outbox, is built by the composition root
    (`infra.resources.gateway_desk`) and handed in.
    """
    import time

    import uvicorn

    socket_mode = None
    if settings.slack_app_token is not None:
        from gateway.slack_socket import SocketModeListener

        socket_mode = SocketModeListener(settings, desk, run_later)
        socket_mode.start()
    server = uvicorn.Server(uvicorn_config(create_app(settings, desk, time.time), settings))
    # Bound here, so the port is known (and connections queue) before uvicorn starts serving.
    sock = socket.create_server((settings.gateway_host, settings.gateway_port))
    port = sock.getsockname()[1]
    log.info("gateway listening on http://%s:%d", settings.gateway_host, port)
    if ready is not None:
        ready(port)
    try:
        server.run(sockets=[sock])
    finally:
        if socket_mode is not None:
            socket_mode.stop()
