"""Headless Chromium (Debian's package) for the tests of the self-contained HTML pages: the review
pack and the dashboard. Not a test module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Chromium's connections fail on this closed network unless background networking is off.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("AIMS_REQUIRE_CHROMIUM") or os.environ.get("AIMS_CI", "") not in ("", "0"):
        pytest.fail("no Chromium: install Debian's chromium package (apt-get install chromium)")
    pytest.skip("no Chromium here (apt-get install chromium); CI installs it and requires this test")


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def pixels_near(counts: dict[tuple[int, int, int], int], colour: str, tolerance: int = 24) -> int:
    target = rgb(colour)
    return sum(
        n for c, n in counts.items() if max(abs(a - b) for a, b in zip(c, target, strict=True)) <= tolerance
    )


def screenshot(page: Path, shot: Path, profile: Path, height: int) -> subprocess.CompletedProcess[str]:
    """`page` opened by Chromium with no network of its own, and a screenshot of it in `shot`."""
    return subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size=1280,{height}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def colour_counts(shot: Path) -> dict[tuple[int, int, int], int]:
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert colours is not None
    return {c: n for n, c in colours}
