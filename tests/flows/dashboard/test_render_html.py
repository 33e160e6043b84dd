"""The dashboard in headless Chromium: its charts are drawn (the screenshot's pixels show each one's
colours, as the review pack's test does), and it makes no request of its own — not even for the
image and stylesheet that hostile text in the register names.

The register is seeded at random (the pack's seeding) with approvals in each SLA state, a running and
an overdue Art. 73 clock, refused attempts, and text that tries to load from a server on loopback.
The same text in a plain page does load from it: the server would have seen a request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flows.dashboard.render import FRESHNESS_FILLS, html
from flows.html_page import LEVEL_FILLS, STATE_FILLS, VERDICT_FILLS
from tests.browser import colour_counts, pixels_near, screenshot
from tests.flows.dashboard.seeding import seeded_dashboard


class Server:
    """An HTTP server on loopback that counts the requests it gets."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.http.serve_forever, daemon=True)
    thread.start()
    yield s
    s.http.shutdown()
    s.http.server_close()


def lure(url: str) -> str:
    return (
        f'<img src="{url}/img.png"><link rel="stylesheet" href="{url}/style.css">'
        f'<style>@import url({url}/import.css);</style><script src="{url}/script.js"></script>'
    )


def test_the_dashboard_renders_with_its_charts_and_requests_nothing(tmp_path: Path, server: Server) -> None:
    reg, board = seeded_dashboard(tmp_path / "state", 3, text=lure(server.url))
    reg.close()
    page = tmp_path / "dashboard.html"
    page.write_text(html(board), encoding="utf-8")
    shot = tmp_path / "dashboard.png"
    done = screenshot(page, shot, tmp_path / "profile", height=7000)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    print(f"screenshot: {shot}")
    assert server.paths == [], f"the dashboard made requests: {server.paths}"
    counts = colour_counts(shot)
    assert len(counts) > 50, "a blank page"
    # Open approvals against their SLA: one bar in each state, 18 px high and tens of px long.
    for state in ("within", "due-soon", "overdue"):
        assert pixels_near(counts, STATE_FILLS[state], tolerance=8) > 500, f"no {state} bar drawn"
    # The risk heat map: each level's cells (62 px squares).
    for level in {lv for row in board.heat_map.levels for lv in row}:
        assert pixels_near(counts, LEVEL_FILLS[level]) > 1500, f"heat-map cells of level {level} not drawn"
    # Data-quality verdict strips: the first check of every dataset is its baseline (22 px squares).
    assert pixels_near(counts, VERDICT_FILLS["baseline"], tolerance=8) > 400, "no verdict strip drawn"
    # Controls by freshness: the seeding's writes are today's evidence.
    assert pixels_near(counts, FRESHNESS_FILLS["fresh"], tolerance=8) > 400, "no control squares drawn"


def test_the_lure_does_request_in_a_page_that_does_not_escape_it(tmp_path: Path, server: Server) -> None:
    # The control: without the dashboard's escaping and its Content-Security-Policy, Chromium fetches.
    page = tmp_path / "plain.html"
    page.write_text(f"<!DOCTYPE html><html><head>{lure(server.url)}</head><body>x</body></html>")
    done = screenshot(page, tmp_path / "plain.png", tmp_path / "profile", height=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.paths, "Chromium made no request: the other test proves nothing"
