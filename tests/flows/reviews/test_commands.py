"""Review results (9.3.3) on a real register: who may record them, what is kept, and the carry-over."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.register.store import Register
from flows.reviews.commands import CommentError, Result, ResultKind, parse_comment, submit
from flows.reviews.pack import Period, RunHistory, gather
from schemas.records import ManagementReview
from tests.people import CLAIRE, DEV, TOM
from tests.resources import example_policy

CHAIR, OWNER_ = CLAIRE, TOM
OUTSIDER = DEV  # in the policy, but not an attendee of the review
NOW = datetime.now(UTC)
FIRST, SECOND = "scheduled:2027-01-15", "scheduled:2027-04-15"
K = ResultKind


@pytest.fixture
def register(register: Register) -> Register:
    """The shared register with one prepared review."""
    with register.unit_of_work("test") as uow:
        uow.reviews.add(ManagementReview(id=FIRST, status="prepared", meeting_at=NOW, created_at=NOW))
    return register


def _submit(reg: Register, result: Result) -> tuple[bool, bool, str, str | None]:
    with reg.unit_of_work(f"test:{result.by}") as uow:
        out = submit(uow, example_policy(), result)
    # A duplicate counts as accepted here: it was, the first time.
    return not out.refused, out.duplicate, out.message, out.ref


def test_a_review_stays_open_until_its_results_are_recorded(register: Register) -> None:
    accepted, _, message, _ = _submit(register, Result(FIRST, K.close, CHAIR, "cli"))
    assert not accepted and "stays open" in message
    assert _submit(register, Result(FIRST, K.decision, CHAIR, "cli", text="Retire the v1 scorer"))[0]
    accepted, _, message, action = _submit(
        register,
        Result(FIRST, K.action, CHAIR, "cli", text="Tighten the nulls check", owner=OWNER_, due=NOW.date()),
    )
    assert accepted and action == f"{FIRST}/A1" and OWNER_ in message
    assert _submit(register, Result(FIRST, K.close, CHAIR, "cli"))[0]
    with register.reader() as uow:
        review = uow.reviews.one(FIRST)
        attempts = uow.review_results.find(review_id=FIRST, order_by="at")
    assert review.status == "closed" and review.closed_at is not None
    assert [d["decision"] for d in review.results] == ["Retire the v1 scorer"]
    assert [(a.kind, a.accepted) for a in attempts] == [
        ("close", False),
        ("decision", True),
        ("action", True),
        ("close", True),
    ]
    # Final: nothing more is recorded on a closed review.
    accepted, _, message, _ = _submit(register, Result(FIRST, K.decision, CHAIR, "cli", text="Late idea"))
    assert not accepted and "final" in message


def test_only_attendees_record_results_and_refusals_are_kept_once(register: Register) -> None:
    attempt = Result(FIRST, K.decision, OUTSIDER, "jira", text="Ship it")
    assert _submit(register, attempt)[:2] == (False, False)
    assert _submit(register, attempt)[:2] == (False, False)
    with register.reader() as uow:
        refused = uow.review_results.find(accepted=False)
        assert uow.reviews.one(FIRST).results == []
    assert len(refused) == 1 and "not an attendee" in (refused[0].refusal or "")


def test_the_same_result_twice_is_a_duplicate(register: Register) -> None:
    decision = Result(FIRST, K.decision, CHAIR, "jira", text="Add a fairness gate")
    assert _submit(register, decision)[:2] == (True, False)
    assert _submit(register, decision)[:2] == (True, True)
    with register.reader() as uow:
        assert len(uow.reviews.one(FIRST).results) == 1


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (Result(FIRST, K.action, CHAIR, "cli", text="x", owner=OWNER_, due=date(2020, 1, 1)), "in the past"),
        (Result(FIRST, K.action, CHAIR, "cli", text="x", owner=None, due=NOW.date()), "owner"),
        (Result(FIRST, K.action, CHAIR, "cli", text="x", owner=OWNER_, due=None), "due date"),
        (Result(FIRST, K.decision, CHAIR, "cli", text="  "), "needs its text"),
        (Result("scheduled:nope", K.decision, CHAIR, "cli", text="x"), "no management review"),
        (Result(FIRST, K.action_done, CHAIR, "cli", action_id=f"{FIRST}/A9"), "no review action"),
    ],
)
def test_bad_results_are_refused_with_the_reason(register: Register, result: Result, words: str) -> None:
    accepted, _, message, _ = _submit(register, result)
    assert not accepted and words in message


def test_open_actions_carry_over_to_the_next_review(register: Register) -> None:
    for text in ("Refresh the training data", "Add a drift alert"):
        _submit(
            register,
            Result(
                FIRST, K.action, CHAIR, "cli", text=text, owner=OWNER_, due=NOW.date() + timedelta(days=30)
            ),
        )
    _submit(register, Result(FIRST, K.close, CHAIR, "cli"))
    # The owner marks one done; the next review still shows the other as open (input 1).
    assert _submit(register, Result(FIRST, K.action_done, OWNER_, "cli", action_id=f"{FIRST}/A1"))[0]
    assert not _submit(register, Result(FIRST, K.action_dropped, OWNER_, "cli", action_id=f"{FIRST}/A2"))[0]
    with register.unit_of_work("test") as uow:
        uow.reviews.update(FIRST, period_end=NOW - timedelta(days=1), prepared_at=NOW - timedelta(days=1))
        uow.reviews.add(ManagementReview(id=SECOND, created_at=NOW))
    with register.reader() as uow:
        pack = gather(
            uow,
            example_policy(),
            uow.reviews.one(SECOND),
            period=Period(NOW - timedelta(days=1), NOW + timedelta(hours=1)),
            meeting_at=NOW + timedelta(days=14),
            now=NOW,
            runs=RunHistory(),
            audit=None,
        )
    section = pack.section("previous-actions")
    assert section.figures["open"] == 1 and section.figures["done_in_period"] == 1
    rows = {row[0]: row for row in section.tables[0].rows}
    assert rows[f"{FIRST}/A2"][4] == "open" and rows[f"{FIRST}/A1"][4] == "done"
    assert rows[f"{FIRST}/A2"][1] == FIRST


def test_a_jira_comment_states_results_one_per_line() -> None:
    body = (
        "Thanks all, summary below.\n"
        "Decision: Retire the v1 scorer\n"
        "action: Tighten the null check; owner: tom.becker@northwind.example; due: 2027-02-15\n"
        "Done: scheduled:2026-10-15/A2\n"
        "Dropped: scheduled:2026-10-15/A3\n"
    )
    results = parse_comment(FIRST, body, CHAIR, NOW)
    assert [r.kind for r in results] == [K.decision, K.action, K.action_done, K.action_dropped]
    assert results[1].owner == OWNER_ and results[1].due == date(2027, 2, 15)
    assert results[1].text == "Tighten the null check" and results[2].action_id == "scheduled:2026-10-15/A2"
    assert all(r.channel == "jira" and r.by == CHAIR for r in results)
    with pytest.raises(CommentError, match="line 1: due '15/02/2027'"):
        parse_comment(FIRST, "Action: x; owner: a@b.c; due: 15/02/2027", CHAIR, NOW)
    with pytest.raises(CommentError, match="not 'owner: …' or 'due: …'"):
        parse_comment(FIRST, "Action: x; by: a@b.c", CHAIR, NOW)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_any_comment_parses_or_says_which_line_is_wrong(body: str) -> None:
    try:
        results = parse_comment(FIRST, body, CHAIR, NOW)
    except CommentError as exc:
        assert str(exc).startswith("line ")
        return
    assert len(results) <= len(body.splitlines())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(list(ResultKind)),
    by=st.sampled_from([CHAIR, OWNER_, OUTSIDER, ""]),
    text=st.text(string.printable, max_size=40),
    due=st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2030, 1, 1))),
)
def test_any_result_is_recorded_or_refused_never_raises(
    register: Register, kind: ResultKind, by: str, text: str, due: date | None
) -> None:
    result = Result(FIRST, kind, by, "cli", text=text, owner=OWNER_ if due else None, due=due, action_id=text)
    with register.reader() as uow:
        before = (uow.reviews.one(FIRST), uow.review_actions.count())
    with register.unit_of_work("test") as uow:
        out = submit(uow, example_policy(), result)
    assert out.message and isinstance(out.record, str)  # the result's id
    with register.reader() as uow:
        row = uow.review_results.get(out.record)
        after = (uow.reviews.one(FIRST), uow.review_actions.count())
    assert row is not None and row.accepted == (not out.refused)
    if out.refused:
        assert after == before, "a refused result changed the review"
        assert row.refusal == out.message
