"""Rebuild the dashboard after a flow run that changed the register, and link it from a Prefect artifact.

The worker's flow-run process (`infra/warm_engine.py`) notes the register's audit head before a run
and calls `after_run` when the run has ended, whatever its state: the run's units of work have
committed (or rolled back) by then. A run that succeeded and wrote nothing leaves the head where it
was and rebuilds nothing; a failed run rebuilds it (it belongs in "recent runs that failed"). The
page is written to `<state>/dashboard.html` atomically; a page younger than `MIN_INTERVAL` seconds
is left as it is (a burst of runs rebuilds it about once per interval, and the next run that
changes the register brings it up to date).

A dashboard problem never fails a run: the run has ended already, and the problem is logged with
its reason.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flows.dashboard.build import FILE_NAME, build, failed_since, write
from flows.dashboard.sources import failed_run_history

if TYPE_CHECKING:
    from pydantic import SecretStr

    from flows.runtime import Runtime
    from schemas.dashboard import Dashboard

log = logging.getLogger(__name__)

MIN_INTERVAL = 5.0
PREFECT_TIMEOUT = 2.0
ARTIFACT_KEY = "aims-dashboard"


def register_head(runtime: Runtime) -> int | None:
    """The audit log's newest sequence number: it moves with every write to the register."""
    try:
        head = runtime.register.audit_head()
    except Exception as exc:  # noqa: BLE001 - no head, no comparison: the run rebuilds the page anyway
        log.warning("dashboard: cannot read the register's audit head: %s", exc)
        return None
    return head.seq if head else 0


def recently_built(path: Path, interval: float, clock: float | None = None) -> bool:
    try:
        age = (time.time() if clock is None else clock) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return 0 <= age < interval


def after_run(
    runtime: Runtime, before: int | None, flow: str, *, failed: bool = False, interval: float = MIN_INTERVAL
) -> Path | None:
    """Rebuild the page if the run changed the register or failed (a failed run is news on the page
    too); the path written, or None. Never raises."""
    try:
        after = register_head(runtime)
        if before is not None and after == before and not failed:
            return None
        path = runtime.settings.state_path / FILE_NAME
        if recently_built(path, interval):
            log.info("dashboard: built less than %g s ago; the next change rebuilds it", interval)
            return None
        policy = runtime.optional_policy
        if policy is None:
            log.info("dashboard: no policy file, so no SLAs or risk scales to draw with; not built")
            return None
        now = datetime.now(UTC)
        api_url, auth = prefect_api(runtime)
        board = build(
            runtime.register,
            policy,
            now,
            failed_run_history(api_url, auth, failed_since(now), PREFECT_TIMEOUT),
        )
        write(board, path)
        publish(board, path, flow)
        return path
    except Exception as exc:  # noqa: BLE001 - the run has ended; a dashboard problem must not fail it
        log.warning("dashboard: not rebuilt after %s: %s: %s", flow, type(exc).__name__, exc)
        return None


def prefect_api(runtime: Runtime) -> tuple[str | None, SecretStr | None]:
    """The API the run's process talks to, with its auth string, as the review pack's history asks it."""
    from prefect.settings import get_current_settings

    prefect = get_current_settings().api
    settings = runtime.settings
    return settings.prefect_api_url or prefect.url, settings.prefect_api_auth_string or prefect.auth_string


def publish(board: Dashboard, path: Path, flow: str) -> None:
    """A link artifact (one key, a new version per build) to the page, with its headline figures."""
    from prefect.artifacts import create_link_artifact

    c = board.counts
    create_link_artifact(
        key=ARTIFACT_KEY,
        link=path.resolve().as_uri(),
        link_text=f"AIMS dashboard ({path})",
        description=(
            f"Rebuilt after {flow} at {board.generated_at:%Y-%m-%d %H:%M} UTC: {c.open_approvals} open "
            f"approvals ({c.overdue_approvals} past their SLA), {c.open_incidents} open incidents "
            f"({c.overdue_clocks} Art. 73 clocks overdue), {c.controls_with_evidence}/{c.controls} controls "
            f"with evidence, {c.open_risks} open risks, {c.failed_runs} failed."
        ),
    )
