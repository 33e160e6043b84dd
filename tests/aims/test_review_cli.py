"""`aims review` and `aims parties`: requests, results on the verified path, and bad input refused.

In process (`aims.cli.main`) against a migrated SQLite register in tmp_path, with the shipped policy
(attendees: Claire, Aisha, Maria, Sam). No Kafka: a request stays in the outbox, and the tests check
that it is there.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.register.store import Register
from schemas import records as r
from tests.aims.runner import Aims, Run, isolate, run
from tests.people import AISHA, CLAIRE, OUTSIDER, TOM
from tests.resources import migrated_register

REVIEW = "scheduled:2027-01-15"
DUE = (date.today() + timedelta(days=30)).isoformat()


def seed(state: Path) -> None:
    register = migrated_register(state)
    with register.unit_of_work("test") as uow:
        uow.reviews.add(
            r.ManagementReview(
                id=REVIEW,
                status="prepared",
                meeting_at=datetime(2027, 1, 15, 10, tzinfo=UTC),
                pack={
                    "sections": [
                        {
                            "clause": "9.3.2 c)",
                            "title": "Interested parties",
                            "missing": ["No needs were recorded in the period."],
                        }
                    ]
                },
                files={"html": str(state / "reviews" / "x" / "pack.html")},
            )
        )
    register.close()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    seed(tmp_path)
    return tmp_path


@pytest.fixture
def aims(state: Path, capsys: pytest.CaptureFixture[str]) -> Aims:
    return lambda *argv: run(capsys, *argv)


def snapshot(state: Path) -> tuple[int, int, int]:
    register = Register.for_state(state)
    try:
        with register.reader() as uow:
            counts = (uow.review_results.count(), uow.outbox.count())
        return (*counts, register.verify_audit().entries)
    finally:
        register.close()


def test_results_from_the_cli_close_the_review(aims: Aims, state: Path) -> None:
    early = aims("review", "close", REVIEW, "--by", CLAIRE)
    assert early.code == 2 and "stays open" in early.err and "logged" in early.err
    assert aims("review", "decide", REVIEW, "Retire the v1 scorer", "--by", CLAIRE).code == 0
    action = aims("review", "action", REVIEW, "--description", "Refresh data", "--owner", TOM, "--due", DUE)
    assert action.code == 2 and "cannot tell" not in action.err  # login name is no attendee
    action = aims(
        "review",
        "action",
        REVIEW,
        "--description",
        "Refresh data",
        "--owner",
        TOM,
        "--due",
        DUE,
        "--by",
        AISHA,
    )
    assert action.code == 0 and f"{REVIEW}/A1" in action.out
    shown = aims("review", "show", REVIEW)
    assert shown.code == 0
    assert "Retire the v1 scorer" in shown.out and f"{REVIEW}/A1" in shown.out
    assert "No needs were recorded in the period." in shown.out and "refused close" in shown.out
    wrong = aims("review", "done", "A1", "--by", TOM)
    assert wrong.code == 2 and "REVIEW/A<n>" in wrong.err
    done = aims("review", "done", f"{REVIEW}/A1", "--by", TOM)
    assert done.code == 0, done.err
    assert aims("review", "close", REVIEW, "--by", CLAIRE).code == 0
    listed = aims("review")
    assert listed.code == 0 and "closed" in listed.out and REVIEW in listed.out


def test_a_request_is_recorded_once_and_staged_for_the_router(aims: Aims, state: Path) -> None:
    first = aims("review", "request", "--reason", "Regulator guidance changed", "--by", CLAIRE)
    assert first.code == 0, first.err
    review_id = first.out.split(": requested by")[0]
    assert review_id.startswith(f"requested:{date.today()}:")
    assert "not sent yet" in first.err  # no Kafka here: the router's relay sends it
    again = aims("review", "request", "--reason", "Regulator guidance changed", "--by", AISHA)
    assert again.code == 0 and "already requested" in again.out
    register = Register.for_state(state)
    try:
        with register.reader() as uow:
            review = uow.reviews.one(review_id)
            staged = uow.outbox.find()
    finally:
        register.close()
    assert (review.kind, review.status, review.trigger) == ("extraordinary", "requested", f"cli:{CLAIRE}")
    assert [m.event["type"] for m in staged] == ["org.aims.review.requested"]
    assert staged[0].event["data"]["review_id"] == review_id


def test_interested_parties_are_recorded_and_listed(aims: Aims) -> None:
    assert aims("parties").out.startswith("no interested parties' needs")
    added = aims(
        "parties", "add", "--party", "Regulator", "--need", "Quarterly reports", "--change", "changed"
    )
    assert added.code == 0
    listed = aims("parties", "list")
    assert "Regulator" in listed.out and "changed" in listed.out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ("review", "action", REVIEW, "--description", "x", "--owner", TOM, "--due", "15/01/2027"),
            "YYYY-MM-DD",
        ),
        (("review", "action", REVIEW, "--description", " ", "--owner", TOM, "--due", DUE), "--description"),
        (("review", "decide", REVIEW, "  "), "invalid TEXT"),
        (("review", "decide", "scheduled:nope", "x"), "no management review 'scheduled:nope'"),
        (("review", "request", "--reason", ""), "invalid --reason"),
        (("review", "request", "--reason", "a\x00b"), "NUL"),
        (("parties", "add", "--party", " ", "--need", "x"), "invalid --party"),
        (("parties", "add", "--party", "x", "--need", "y", "--change", "gone"), "invalid choice"),
        (("review", "show", "nope"), "no management review 'nope'"),
    ],
    ids=[
        "due",
        "blank-description",
        "blank-decision",
        "unknown",
        "no-reason",
        "nul",
        "party",
        "change",
        "show",
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    argv: tuple[str, ...], says: str, aims: Aims, state: Path
) -> None:
    before = snapshot(state)
    out = aims(*argv, *(("--by", CLAIRE) if argv[1] not in ("show",) and "--change" not in argv else ()))
    assert out.code == 2, out
    assert says in out.err, out.err
    assert "Traceback" not in out.err
    assert snapshot(state) == before


def test_an_outsider_is_refused_and_the_attempt_is_kept(aims: Aims, state: Path) -> None:
    before = snapshot(state)
    out = aims("review", "decide", REVIEW, "Ship it", "--by", OUTSIDER)
    assert out.code == 2 and "not an attendee" in out.err
    after = snapshot(state)
    assert after[0] == before[0] + 1 and after[1] == before[1]


ANY_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)),
    max_size=40,
)


@pytest.fixture(scope="module")
def shared_state() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aims-review-cli-") as folder:
        seed(Path(folder))
        yield Path(folder)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    command=st.sampled_from(["decide", "action-due", "action-owner", "done", "request", "party"]),
    value=ANY_TEXT | st.dates().map(str),
)
def test_no_value_crashes_the_cli(
    command: str,
    value: str,
    shared_state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolate(shared_state, monkeypatch)
    argv = {
        "decide": ["review", "decide", REVIEW, value],
        "action-due": ["review", "action", REVIEW, "--description", "x", "--owner", TOM, "--due", value],
        "action-owner": ["review", "action", REVIEW, "--description", "x", "--owner", value, "--due", DUE],
        "done": ["review", "done", f"{REVIEW}/{value}"],
        "request": ["review", "request", "--reason", value],
        "party": ["parties", "add", "--party", value, "--need", "x"],
    }[command]
    out: Run = run(capsys, *argv, "--by", CLAIRE)
    assert out.code in (0, 2), out
    assert "Traceback" not in out.err
