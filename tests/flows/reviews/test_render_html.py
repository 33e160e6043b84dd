"""The HTML review pack in headless Chromium (Debian's package): it renders, and its charts are drawn.

The pack comes from a seeded register (the figures test's seeding), is written to a file and opened
by Chromium with no network; the screenshot is kept next to the test's temporary files and its
pixels are checked for the heat map's level colours and the trend lines' strokes.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from flows.reviews.render import LEVEL_FILLS, SERIES_STROKES, html
from schemas.review_pack import HeatMap, TrendChart
from tests.browser import FLAGS, chromium, pixels_near
from tests.flows.reviews.seeding import Seeded, gather_pack, run_history, seed_register
from tests.resources import migrated_register


def test_the_pack_renders_in_chromium_with_its_charts_drawn(tmp_path: Path) -> None:
    from PIL import Image

    browser = chromium()
    rng = random.Random(3)
    reg = migrated_register(tmp_path / "state")
    seed_register(reg, rng)
    try:
        pack = gather_pack(Seeded(reg, run_history(rng)))
    finally:
        reg.close()
    page = tmp_path / "pack.html"
    page.write_text(html(pack), encoding="utf-8")
    shot = tmp_path / "pack.png"
    done = subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,9000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    print(f"screenshot: {shot}")
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert colours is not None
    counts = {c: n for n, c in colours}
    assert len(counts) > 50, "a blank page"
    heat = pack.section("performance/risks").charts[0]
    assert isinstance(heat, HeatMap)
    for level in {lv for row in heat.levels for lv in row}:
        # Each level's cells are 62 px squares; text inside takes a little of them.
        assert pixels_near(counts, LEVEL_FILLS[level]) > 1500, f"heat-map cells of level {level} not drawn"
    trend = pack.section("performance/data-quality").charts[0]
    assert isinstance(trend, TrendChart)
    assert pixels_near(counts, SERIES_STROKES[0], tolerance=40) > 100, "no trend line or points drawn"
    assert pixels_near(counts, "#fef3c7", tolerance=6) > 0 or not any(s.missing for s in pack.sections)
