"""Where the dashboard's failed runs come from: Prefect's API, asked with a deadline.

Never hangs: the question runs in a daemon thread and the answer is waited for at most `timeout`
seconds; past it, or on any error, the history says why ("unknown"), and the dashboard lists the
register's own refused work instead.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from flows.reviews.pack_common import FAILED_RUN_STATES, RunHistory

if TYPE_CHECKING:
    from pydantic import SecretStr

    from connectors.prefect_api import FlowRunView

# Failed runs listed at most.
LIMIT = 50


def failed_run_history(
    api_url: str | None, auth: SecretStr | None, since: datetime, timeout: float
) -> RunHistory:
    """Prefect's failed, crashed and timed-out flow runs expected to start after `since`."""
    from connectors.prefect_api import PrefectApi

    if not api_url:
        return RunHistory(error="no Prefect API is set (PREFECT_API_URL), and no local stack runs")
    answer: list[list[FlowRunView]] = []
    problem: list[str] = []

    def ask() -> None:
        api = PrefectApi(api_url, timeout=timeout, auth=auth)
        try:
            # The deadline below, not PrefectApi's backoff, bounds how long the page waits.
            window = {
                "state": {"name": {"any_": sorted(FAILED_RUN_STATES)}},
                "expected_start_time": {"after_": since.isoformat()},
            }
            answer.append(api.flow_runs(window, limit=LIMIT))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            problem.append(f"{type(exc).__name__}: {exc}")
        finally:
            api.close()

    worker = threading.Thread(target=ask, name="dashboard-prefect", daemon=True)
    worker.start()
    worker.join(timeout)
    if answer:
        return RunHistory(runs=answer[0])
    if problem:
        return RunHistory(error=f"Prefect at {api_url} could not be asked: {problem[0]}")
    return RunHistory(error=f"Prefect at {api_url} did not answer within {timeout:g} s")
