"""`aims dashboard [--out FILE]`: the dashboard page, built now from the register (and Prefect's failed
runs when it answers in time)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from aims.commands.common import AddCommand, cli_settings, load_policy, open_register
from aims.errors import CliError

DEFAULT_PREFECT_TIMEOUT = 3.0
MAX_PREFECT_TIMEOUT = 60.0


def checked_out(value: Path) -> Path:
    """Where to write: a file in a folder that exists; never a folder, never nothing."""
    from flows.dashboard.build import FILE_NAME

    text = str(value)
    if not text.strip() or "\x00" in text:
        raise CliError(f"invalid --out {text!r}: name a file, e.g. --out dashboard.html")
    if value.is_dir():
        raise CliError(f"invalid --out {text!r}: it is a folder; name a file in it, e.g. {value / FILE_NAME}")
    if not value.parent.is_dir():
        raise CliError(f"invalid --out {text!r}: there is no folder {str(value.parent)!r} to write it in")
    return value


def checked_timeout(value: float) -> float:
    if not math.isfinite(value) or not 0 < value <= MAX_PREFECT_TIMEOUT:
        raise CliError(
            f"invalid --prefect-timeout {value:g}: seconds, more than 0 and at most {MAX_PREFECT_TIMEOUT:g}"
        )
    return value


def cmd_dashboard(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    settings = cli_settings()
    # Every argument is checked before anything is opened or written.
    timeout = checked_timeout(args.prefect_timeout)
    out = checked_out(args.out) if args.out is not None else None
    policy = load_policy(settings, "build the dashboard")

    from aims.endpoints import prefect_auth
    from flows.dashboard.build import FILE_NAME, build, failed_since, write
    from flows.dashboard.sources import failed_run_history
    from flows.reviews.pack_common import RunHistory
    from infra.stack_state import StackInfo

    now = datetime.now(UTC)
    if args.no_prefect:
        prefect = RunHistory(error="not asked (--no-prefect)")
    else:
        info = StackInfo.load(settings.state_path)
        api = settings.prefect_api_url or (info.prefect_api_url if info else None)
        prefect = failed_run_history(api, prefect_auth(settings, api), failed_since(now), timeout)
    board = build(open_register(settings), policy, now, prefect)
    if out is None:
        settings.state_path.mkdir(parents=True, exist_ok=True)
        out = settings.state_path / FILE_NAME
    try:
        write(board, out)
    except OSError as exc:
        raise CliError(f"cannot write the dashboard to {str(out)!r}: {exc}") from None
    c = board.counts
    print(
        f"{out}: {c.open_approvals} open approvals ({c.overdue_approvals} past their SLA), "
        f"{c.open_incidents} open incidents ({c.overdue_clocks} Art. 73 clocks overdue), "
        f"{c.controls_with_evidence}/{c.controls} controls with evidence, {c.datasets} datasets, "
        f"{c.open_risks} open risks, {c.failed_runs} "
        + (
            "failed runs"
            if board.failed.source == "prefect"
            else f"refused attempts ({board.failed.prefect})"
        )
    )
    return 0


def add_commands(add: AddCommand) -> None:
    p = add(
        "dashboard",
        cmd_dashboard,
        "Write the dashboard: one self-contained HTML page of approvals, incidents, controls, data "
        "quality, risks and failed runs.",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write it (default: dashboard.html in the state folder)",
    )
    p.add_argument(
        "--prefect-timeout",
        type=float,
        default=DEFAULT_PREFECT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for Prefect's failed runs (default {DEFAULT_PREFECT_TIMEOUT:g}); "
        "past it they are shown as unknown",
    )
    p.add_argument(
        "--no-prefect", action="store_true", help="do not ask Prefect; list the register's refused work"
    )
