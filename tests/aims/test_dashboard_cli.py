"""`aims dashboard`: writes the page from the register; bad arguments exit 2 and write nothing."""

from __future__ import annotations

import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from flows.dashboard.sources import failed_run_history
from tests.aims.runner import isolate, run
from tests.flows.dashboard.seeding import seed_dashboard
from tests.resources import migrated_register


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    isolate(folder, monkeypatch)
    reg = migrated_register(folder)
    seed_dashboard(reg, random.Random(2))
    reg.close()
    return folder


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_the_dashboard_is_written_where_asked(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "board.html"
    done = run(capsys, "dashboard", "--out", str(out), "--no-prefect")
    assert done.code == 0, done.err
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Open approvals" in page
    assert "Prefect runs unknown:</strong> not asked (--no-prefect)" in page
    reg = migrated_register(state)
    with reg.engine.connect() as conn:
        pending = conn.execute(text("select count(*) from approval where status = 'pending'")).scalar()
    reg.close()
    assert done.out.startswith(f"{out}: {pending} open approvals")
    assert f"<b>{pending}</b>open approvals" in page
    assert not list(tmp_path.glob(".board.html.*")), "a temporary file was left behind"


def test_by_default_it_goes_to_the_state_folder(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = run(capsys, "dashboard", "--no-prefect")
    assert done.code == 0, done.err
    assert (state / "dashboard.html").is_file()


@pytest.mark.parametrize(
    "argv",
    [
        ["--out", "{tmp}"],  # a folder
        ["--out", "{tmp}/no/such/folder/board.html"],
        ["--out", ""],
        ["--prefect-timeout", "0"],
        ["--prefect-timeout", "-1"],
        ["--prefect-timeout", "nan"],
        ["--prefect-timeout", "61"],
        ["--prefect-timeout", "soon"],
        ["--colour", "red"],
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    before = files(tmp_path)
    register = (state / "register.sqlite").read_bytes()
    done = run(capsys, "dashboard", *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert done.code == 2
    assert "error" in done.err
    assert files(tmp_path) == before
    assert (state / "register.sqlite").read_bytes() == register


def test_prefect_that_does_not_answer_is_unknown_within_the_deadline() -> None:
    # A listening socket that never accepts: the connection is made, and no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        started = time.monotonic()
        history = failed_run_history(url, None, datetime.now(UTC) - timedelta(days=7), timeout=1.0)
        took = time.monotonic() - started
    assert took < 3, f"waited {took:.1f} s"
    assert history.error is not None and "did not answer within 1 s" in history.error


def test_prefect_that_answers_an_error_is_unknown_with_the_reason() -> None:
    class Broken(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api"
        history = failed_run_history(url, None, datetime.now(UTC), timeout=10.0)
    finally:
        server.shutdown()
        server.server_close()
    assert history.error is not None and "HTTPStatusError" in history.error and "500" in history.error


def test_no_prefect_configured_says_so() -> None:
    history = failed_run_history(None, None, datetime.now(UTC), timeout=1.0)
    assert history.error is not None and "PREFECT_API_URL" in history.error
