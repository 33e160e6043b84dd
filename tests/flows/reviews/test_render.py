"""The pack as Markdown and self-contained HTML: every section, its figures and charts, text escaped."""

from __future__ import annotations

import random
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from flows.reviews.pack import RunHistory
from flows.reviews.render import LEVEL_FILLS, html, markdown
from schemas.review_pack import (
    SECTIONS,
    HeatMap,
    ReviewPack,
    Section,
    Series,
    Table,
    TrendChart,
)
from tests.flows.reviews.seeding import Seeded, bare_pack, gather_pack, run_history, seed_register
from tests.resources import migrated_register

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "br", "strong", "span", "ol",
    "ul", "li", "table", "caption", "thead", "tbody", "tr", "th", "td", "section", "figure", "figcaption",
    "svg", "rect", "text", "line", "polyline", "circle",
}  # fmt: skip


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(document: str) -> Parsed:
    parsed = Parsed()
    parsed.feed(document)
    return parsed


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> ReviewPack:
    rng = random.Random(3)
    reg = migrated_register(tmp_path_factory.mktemp("render"))
    seed_register(reg, rng)
    try:
        return gather_pack(Seeded(reg, run_history(rng)))
    finally:
        reg.close()


def shown(markdown_source: str) -> str:
    """What a reader of the Markdown sees: rendered by a CommonMark renderer, tags taken out."""
    rendered = MarkdownIt("commonmark").enable("table").render(markdown_source)
    return unescape(re.sub(r"<[^>]+>", "", rendered))


def test_both_formats_have_every_section_in_order_with_its_figures(pack: ReviewPack) -> None:
    md, page = shown(markdown(pack)), html(pack)
    for document in (md, page):
        positions = [document.rindex(title) for _, _, title in SECTIONS]  # the agenda names some too
        assert positions == sorted(positions)
    for section in pack.sections:
        for value in section.figures.values():
            assert ("—" if value is None else str(value)) in md
        for missing in section.missing:
            assert missing in md
    sections = [attrs.get("id") for tag, attrs in parse(page).tags if tag == "section"]
    assert sections == [key for key, _, _ in SECTIONS]


def test_the_html_is_self_contained_and_draws_the_charts(pack: ReviewPack) -> None:
    page = html(pack)
    tags = parse(page).tags
    assert {tag for tag, _ in tags} <= ALLOWED_TAGS
    for _, attrs in tags:
        for name in ("src", "href"):
            assert name not in attrs, "an external reference"
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    heat = pack.section("performance/risks").charts[0]
    assert isinstance(heat, HeatMap)
    cells = [attrs for tag, attrs in tags if tag == "rect" and attrs.get("class") == "cell"]
    assert len(cells) == len(heat.likelihood_labels) * len(heat.impact_labels)
    assert {attrs["fill"] for attrs in cells} <= set(LEVEL_FILLS.values())
    trends = sum(isinstance(c, TrendChart) for s in pack.sections for c in s.charts)
    assert sum(1 for tag, attrs in tags if tag == "svg" and "trend" in (attrs.get("class") or "")) == trends


def test_lines_break_where_data_is_missing_and_empty_sections_still_show() -> None:
    chart = TrendChart(
        title="t",
        unit="%",
        labels=["2026-10", "2026-11", "2026-12", "2027-01"],
        series=[Series(name="a", values=[50.0, None, 70.0, 80.0]), Series(name="b", values=[None] * 4)],
    )
    section = Section(key="k", clause="9.3.2 e)", title="Empty", summary="nothing", charts=[chart])
    tags = parse(html(bare_pack(sections=[section]))).tags
    # One point alone, then a line of two; the all-missing series draws nothing.
    assert sum(1 for tag, _ in tags if tag == "polyline") == 1
    assert sum(1 for tag, _ in tags if tag == "circle") == 3
    empty = Section(key="k", clause="9.3.2 c)", title="Nobody", summary="", missing=["none recorded"])
    for document in (html(bare_pack(sections=[empty])), shown(markdown(bare_pack(sections=[empty])))):
        assert "Nobody" in document and "Data missing" in document and "none recorded" in document


# What the pack's own Markdown makes: headings, lists, tables, a quote, its bold and italic words.
MARKDOWN_TAGS = {"h1", "h2", "h3", "p", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"}
MARKDOWN_TAGS |= {"blockquote", "strong", "em", "a"}
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)


@settings(max_examples=150, deadline=None)
@given(title=TEXT, finding=TEXT, cell=TEXT, reason=TEXT, series=TEXT)
def test_no_text_in_the_pack_becomes_markup(
    title: str, finding: str, cell: str, reason: str, series: str
) -> None:
    section = Section(
        key="k",
        clause="9.3.2 c)",
        title=title,
        summary=finding,
        figures={cell: cell},
        tables=[Table(title=title, columns=[cell], rows=[[cell]])],
        charts=[TrendChart(title=title, labels=[cell], series=[Series(name=series, values=[1.0])])],
        findings=[finding],
        missing=[reason],
    )
    pack = bare_pack(sections=[section]).model_copy(update={"reason": reason})
    page = html(pack)
    parsed = parse(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    text = "".join(parsed.text)
    for value in (title, finding, cell, reason):
        assert value.replace("\r", "\n") in text.replace("\r", "\n") or not value.strip()
    # The Markdown shows the text too: no link, image, code, HTML or heading of its own.
    rendered = MarkdownIt("commonmark").enable("table").render(markdown(pack))
    assert set(re.findall(r"<(\w+)", rendered)) <= MARKDOWN_TAGS, rendered
    assert re.findall(r'href="([^"]*)"', rendered) == ["mailto:a@example.com"]  # the attendee's, ours
    # Every Markdown table row keeps its header's number of cells: no text adds a column or a row.
    tables: list[list[int]] = [[]]
    for line in markdown(pack).splitlines():
        if line.startswith("|"):
            tables[-1].append(pipes(line))
        elif tables[-1]:
            tables.append([])
    assert all(len(set(widths)) == 1 for widths in tables if widths), tables


def pipes(line: str) -> int:
    """Unescaped `|` in a Markdown table row."""
    count, escaped = 0, False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            count += 1
    return count


def test_the_pack_renders_from_the_json_kept_in_the_register(pack: ReviewPack, tmp_path: Path) -> None:
    # The review row keeps the pack as JSON; rendering it again gives the same documents.
    again = ReviewPack.model_validate(pack.model_dump(mode="json"))
    assert html(again) == html(pack) and markdown(again) == markdown(pack)
    assert RunHistory().runs == ()
