"""The bundle's index in headless Chromium, as the review pack's test renders it: its pixels show the
content (each control's band, the verdict and clock badges), every text from the register stays text,
and the page asks the network for nothing (Chromium's own network log says so)."""

from __future__ import annotations

import json
import random
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from aims.commands.evidence import attach_soa
from flows.evidence_bundle.archive import bundle_files
from flows.evidence_bundle.gather import Scope
from flows.evidence_bundle.render import BAD_FILL, CONTROL_BAND, OK_FILL, archive_link
from schemas.catalogue import load_catalogue
from tests.flows.evidence_bundle.seeding import HOSTILE, bundle_of, seeded
from tests.flows.reviews.test_render_html import FLAGS, chromium, pixels_near
from tests.resources import example_policy


class References(HTMLParser):
    """Every tag and every attribute that can make a browser fetch or go somewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data", "style") and value:
                self.targets.append(value)


def render(browser: str, page: Path, work: Path) -> tuple[Path, set[str]]:
    """A screenshot of `page`, and every URL the page itself asked for, from Chromium's network log.

    Chromium's own traffic (update checks, its clock, account lookups) has no initiator ("not an
    origin"); a request the page makes is initiated by the page's (file, so opaque: "null") origin.
    """
    shot, netlog = work / f"{page.stem}.png", work / f"{page.stem}.netlog.json"
    done = subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={work / 'profile'}",
            f"--log-net-log={netlog}",
            "--window-size=1280,6000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = {
        str(event["params"].get("url"))
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != "not an origin"
    }
    return shot, requested


def test_the_network_check_sees_a_page_that_fetches(tmp_path: Path) -> None:
    page = tmp_path / "planted.html"
    page.write_text('<!DOCTYPE html><p>x</p><img src="http://127.0.0.1:9/pixel.png">', encoding="utf-8")
    _, requested = render(chromium(), page, tmp_path)
    assert requested == {"http://127.0.0.1:9/pixel.png"}


def test_the_index_renders_in_chromium_with_its_content_and_no_requests(tmp_path: Path) -> None:
    from PIL import Image

    browser = chromium()
    register = seeded(tmp_path / "state", random.Random(2))
    try:
        bundle, _ = bundle_of(register, Scope())
    finally:
        register.close()
    attach_soa(bundle, load_catalogue(), example_policy(), bundle.generated_at)
    files = bundle_files(bundle)
    page_text = files["index.html"].decode()
    refs = References()
    refs.feed(page_text)
    assert not refs.tags & {"script", "img", "iframe", "link", "object", "embed", "base", "form"}
    for target in refs.targets:
        assert target.startswith("#") or ("://" not in target and not target.startswith("//")), target
    assert HOSTILE not in page_text and "&lt;script&gt;" in page_text
    site = tmp_path / "site"
    site.mkdir()
    for name, data in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    shot, requested = render(browser, site / "index.html", tmp_path)
    print(f"screenshot: {shot}")
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert colours is not None
    counts = {c: n for n, c in colours}
    assert len(counts) > 50, "a blank page"
    # The first controls' heading bands (about 1100 x 35 px each) are on the first 6000 px; the
    # SoA's badges (green: applicable, red: A.10.4 excluded by the example policy) above them.
    assert pixels_near(counts, CONTROL_BAND, tolerance=12) > 5 * 30_000, "no control band drawn"
    assert pixels_near(counts, OK_FILL, tolerance=12) > 37 * 100, "no green badge drawn"
    assert pixels_near(counts, BAD_FILL, tolerance=12) > 100, "no red badge drawn"
    assert requested == set(), f"the page asked the network for {requested}"


def test_only_paths_inside_the_archive_become_links() -> None:
    assert archive_link("data-docs/loans/index.html", "x") == '<a href="data-docs/loans/index.html">x</a>'
    for hostile in (
        "https://evil.example/",
        "//evil.example/x",
        "../../etc/passwd",
        "/etc/passwd",
        "javascript:alert(1)",
    ):
        assert "<a" not in archive_link(hostile, hostile)
