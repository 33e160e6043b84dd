"""Prefect Markdown artifacts show event fields as text (issue 19, point 4).

The artifacts are rendered with a real CommonMark renderer (markdown-it-py, with GFM tables as the
Prefect UI draws them); what an event wrote must come out as text: no link, image, HTML or emphasis.
"""

from __future__ import annotations

import html
from typing import Any

from markdown_it import MarkdownIt

from schemas.events import IncidentReportedEvent

LINK = "[Open AIMS](https://evil.example/sso)"
IMAGE = "![x](https://evil.example/pixel.png)"
TAG = '<img src=x onerror="alert(1)">'
HOSTILE = f"{LINK} {IMAGE} {TAG} **urgent** | cell"


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def assert_text_only(page: str) -> None:
    assert "evil.example/sso" in html.unescape(page), "the text is shown"
    assert "<a " not in page and "<img" not in page and "onerror" not in page.replace("onerror=&quot;", "")
    assert "<strong>urgent</strong>" not in page


def hostile_event() -> IncidentReportedEvent:
    return IncidentReportedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"inc-1 {LINK}",
            "source": "urn:aims:tests",
            "data": {
                "ai_system": HOSTILE,
                "severity": "low",
                "category": "performance",
                "description": f"{HOSTILE}\n# heading",
                "reporter": HOSTILE,
                "occurred_at": "2026-11-02T08:00:00Z",
                "detected_at": "2026-11-02T09:00:00Z",
            },
        }
    )


def test_the_run_summary_shows_event_fields_as_text() -> None:
    from flows.evidence import summary_markdown

    event = hostile_event()
    outcome: dict[str, Any] = {"system": HOSTILE, HOSTILE: "x", "title": f"{HOSTILE}\n| forged | row |"}
    page = rendered(
        summary_markdown("handle-incident", f"Incident on {HOSTILE}", event, outcome, f"headline {HOSTILE}")
    )
    assert_text_only(page)
    assert page.index("headline") < page.index("<table>")  # the one sentence a person reads first
    assert "forged" in page and "<td>forged</td>" not in page  # a line break cannot forge a row


def test_the_risk_table_shows_event_fields_as_text() -> None:
    from flows.risk.reassess_risk import risk_markdown

    outcome = {
        "ai_system": HOSTILE,
        "blocked": True,
        "assessment_id": HOSTILE,
        "reason": HOSTILE,
        "highest_inherent": "high",
        "highest_residual": "medium",
        "approval_id": f"a` {LINK} `",
    }
    risk = {
        "title": HOSTILE,
        "category": f"c` {LINK} `",
        "likelihood": 2,
        "impact": 3,
        "inherent": "high",
        "previous": HOSTILE,
        "residual": "medium",
        "controls": [HOSTILE],
        "rationale": [{"rule": "base", "evidence": "-", "effect": "-"}],
    }
    scales = {
        "likelihood": ["rare", "possible", "likely"],
        "impact": ["minor", "moderate", "major"],
        "levels": {f"{li}x{im}": "high" for li in range(1, 4) for im in range(1, 4)},
    }
    assert_text_only(rendered(risk_markdown(outcome, [risk], scales)))
