"""Every text in the dashboard is escaped: markup from the register stays text, terminal escapes and
bidi controls are written out, and the page names nothing to load."""

from __future__ import annotations

import re
import tempfile
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.dashboard.render import html
from flows.text import visible
from schemas.controls import is_control
from schemas.dashboard import Dashboard
from tests.flows.dashboard.seeding import HOSTILE, seeded_dashboard
from tests.flows.reviews.test_render import parse

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "strong", "span", "div", "b",
    "table", "thead", "tbody", "tr", "th", "td", "section", "figure", "figcaption",
    "svg", "rect", "text", "line",
}  # fmt: skip


def check_page(page: str, texts: list[str]) -> None:
    parsed = parse(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    # Nothing to load: no attribute names a URL; the only style attributes are our swatches' colours.
    for _, attrs in parsed.tags:
        assert not {"src", "href", "srcset", "action", "formaction"} & set(attrs)
        assert all(
            re.fullmatch(r"background:#[0-9a-f]{6}", v or "") for k, v in attrs.items() if k == "style"
        )
        assert not any(k.startswith("on") for k in attrs)
    head, body = page.split("</head>", 1)
    assert "url(" not in head and "@import" not in head
    # No control character reaches the page's body, except the line break that ends it.
    assert not any(is_control(ch) for ch in body.rstrip("\n"))
    shown = "".join(parsed.text)
    for value in texts:
        assert visible(value) in shown


def test_hostile_text_in_the_register_is_shown_as_text(tmp_path: Path) -> None:
    reg, board = seeded_dashboard(tmp_path, 1, text=HOSTILE)
    reg.close()
    page = html(board)
    check_page(page, [HOSTILE])
    # Written out, not obeyed: ESC and the right-to-left override are seen as their escapes.
    assert "\\x1b[2J" in page and "\\u202eexe.txt" in page
    assert "<script" not in page.lower() and "&lt;script&gt;" in page


def test_the_page_has_a_policy_that_forbids_every_load(tmp_path: Path) -> None:
    reg, board = seeded_dashboard(tmp_path, 2)
    reg.close()
    page = html(board)
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    assert f'<meta http-equiv="Content-Security-Policy" content="{csp}">' in page


@settings(max_examples=40, deadline=None)
@given(text=st.text(min_size=1, max_size=40))
def test_any_text_in_any_field_stays_text(text: str) -> None:
    data = board().model_dump()
    data["approvals"][0]["subject"] = text
    data["incidents"][0]["title"] = text
    data["data_quality"][0]["dataset"] = text
    data["heat_map"]["likelihood_labels"][0] = text
    data["failed"]["items"][0]["detail"] = text
    check_page(html(Dashboard.model_validate(data)), [text] if text.strip() else [])


@cache
def board() -> Dashboard:
    """A seeded register's dashboard, built once for all the examples."""
    with tempfile.TemporaryDirectory() as folder:
        reg, built = seeded_dashboard(Path(folder), 4)
        reg.close()
    return built
