"""`aims incidents`: the list with its Art. 73 clocks, one incident in full, and updates on the verified path.

In process (`aims.cli.main`) against a migrated SQLite register in tmp_path, with the shipped policy
(responders: the model-risk and compliance groups). No Kafka: an accepted update stays in the outbox
(the command warns that the router's relay sends it), and the tests check that it is there.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.register.store import Register
from schemas import records as r
from schemas.trail import OutboxMessage
from tests.aims.runner import Aims, isolate, run
from tests.people import AISHA, MARIA, OUTSIDER, TOM
from tests.resources import migrated_register

INCIDENT = "urn:support#90"
LATE = "urn:support#91"  # its report was due yesterday
MINOR = "urn:support#92"  # not serious: no clock
ACTION = "Re-check the score thresholds after each release"


def incident(incident_id: str, now: datetime, due_in: timedelta | None, **more: object) -> r.Incident:
    detected = now - timedelta(hours=4)
    return r.Incident.model_validate(
        {
            "id": incident_id,
            "system": "credit-scoring",
            "title": "Wrong denials",
            "description": "Scores shifted after the release",
            "category": "fundamental_rights",
            "severity": "high",
            "reported_severity": "medium",
            "occurred_at": detected - timedelta(hours=1),
            "detected_at": detected,
            "reported_by": "support",
            "status": "triaged",
            "serious": due_in is not None,
            "criteria": ["fundamental-rights infringement"] if due_in is not None else [],
            "reporting_due_at": now + due_in if due_in is not None else None,
            "deadline_basis": "general" if due_in is not None else None,
            "triaged_at": detected,
            **more,
        }
    )


def seed(state: Path) -> None:
    now = datetime.now(UTC)
    register = migrated_register(state)
    with register.unit_of_work("test") as uow:
        uow.incidents.add(incident(INCIDENT, now, timedelta(days=3, hours=2, minutes=30)))
        uow.incidents.add(incident(LATE, now, -timedelta(days=1, hours=3, minutes=30), system="chat"))
        uow.incidents.add(incident(MINOR, now, None, severity="low", category="performance"))
    register.close()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    seed(tmp_path)
    return tmp_path


@pytest.fixture
def aims(state: Path, capsys: pytest.CaptureFixture[str]) -> Aims:
    return lambda *argv: run(capsys, *argv)


@dataclass(frozen=True)
class Written:
    outbox: dict[str, OutboxMessage]
    updates: list[r.IncidentUpdate]
    audit_entries: int


def written(state: Path) -> Written:
    register = Register.for_state(state)
    try:
        with register.reader() as uow:
            outbox = {m.key: m for m in uow.outbox.find()}
            updates = uow.incident_updates.find(order_by="at")
        return Written(outbox, updates, register.verify_audit().entries)
    finally:
        register.close()


def stored(state: Path, incident_id: str = INCIDENT) -> r.Incident:
    register = Register.for_state(state)
    try:
        with register.reader() as uow:
            return uow.incidents.one(incident_id)
    finally:
        register.close()


def outbox_key(update_id: str) -> str:
    return f"urn:aims:incidents#{update_id}"


def blockers(shown: str) -> list[str]:
    return [line.removeprefix("  - ") for line in shown.splitlines() if line.startswith("  - ")]


def row_of(lines: str, incident_id: str) -> str:
    return next(line for line in lines.splitlines() if line.startswith(incident_id + " "))


# -- the list ---------------------------------------------------------------------------------------


def test_the_list_shows_the_time_left_and_what_is_overdue(aims: Aims) -> None:
    listed = aims("incidents")
    assert listed.code == 0, listed.err
    assert "time left" in listed.out and "reporting due" in listed.out
    on_time = row_of(listed.out, INCIDENT)
    assert "3 d 2 h" in on_time or "3 d 1 h" in on_time, on_time
    assert "high" in on_time and "triaged" in on_time and " yes " in on_time
    late = row_of(listed.out, LATE)
    assert "overdue by 1 d 3 h" in late or "overdue by 1 d 4 h" in late, late
    minor = row_of(listed.out, MINOR)
    assert " no " in minor and minor.rstrip().endswith("—"), minor
    assert aims("incidents", "list").out == listed.out

    rows = {i["id"]: i for i in json.loads(aims("incidents", "--json").out)}
    assert rows[LATE]["time_left_seconds"] < 0 and rows[LATE]["time_left"].startswith("overdue by")
    assert rows[MINOR]["time_left"] is None and rows[INCIDENT]["stage"] == "triaged"


def test_show_has_the_facts_and_what_blocks_closing(aims: Aims) -> None:
    shown = aims("incidents", "show", INCIDENT)
    assert shown.code == 0, shown.err
    for pattern in (
        r"severity\s+high \(reported as medium",
        r"criteria\s+fundamental-rights infringement",
        r"deadline basis\s+general",
        r"time left\s+3 d [12] h",
        r"root cause \(10\.2\): not recorded yet",
        r"before it can close:\n  - containment is not recorded\n  - the Art\. 73 report is not filed",
    ):
        assert re.search(pattern, shown.out), pattern
    assert aims("incidents", INCIDENT).out == shown.out  # the old form still works
    missing = aims("incidents", "show", "urn:support#nope")
    assert missing.code == 2 and "no incident 'urn:support#nope'" in missing.err


# -- the lifecycle -----------------------------------------------------------------------------------


def test_an_incident_goes_from_triage_to_closed_through_the_cli(aims: Aims, state: Path) -> None:
    due = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
    steps = [
        (("contain", INCIDENT, "--by", AISHA, "--note", "rolled back to v6"), "containment recorded"),
        (("report", INCIDENT, "--reference", "NCA-2026-7", "--by", MARIA), "authority report NCA-2026-7"),
        (("cause", INCIDENT, "--root-cause", "Unchecked threshold change", "--by", AISHA), "root cause"),
        (
            ("action", INCIDENT, "--description", ACTION, "--owner", TOM, "--due", due, "--by", AISHA),
            "corrective action A1 planned",
        ),
    ]
    for argv, says in steps:
        done = aims("incidents", *argv)
        assert done.code == 0, done.err
        assert says in done.out, done.out
        assert "not sent yet" in done.err  # no Kafka here: the row waits in the outbox
    assert "action A1:" in done.out and f"aims incidents done {INCIDENT} A1" in done.out
    assert blockers(aims("incidents", "show", INCIDENT).out) == [
        f"action A1 '{ACTION}' ({TOM}, due {due}) is open"
    ]

    # Closing with the action open is refused, says which action, and leaves the incident open.
    refused = aims("incidents", "close", INCIDENT, "--by", MARIA)
    assert refused.code == 2
    assert "refused:" in refused.err and "A1" in refused.err and ACTION in refused.err
    assert stored(state).closed_at is None

    # The owner marks it done (the short id is enough); the owner cannot verify it, someone else can.
    assert aims("incidents", "done", INCIDENT, "A1", "--by", TOM).code == 0
    own = aims("incidents", "verify", INCIDENT, "A1", "--effectiveness", "no drift", "--by", TOM)
    assert own.code == 2 and "someone else checks its effectiveness" in own.err
    verified = aims(
        "incidents", "verify", INCIDENT, "A1", "--effectiveness", "Approval gap back under 2 %", "--by", MARIA
    )
    assert verified.code == 0, verified.err
    closed = aims("incidents", "close", INCIDENT, "--by", MARIA)
    assert closed.code == 0 and "incident closed" in closed.out and "(status: closed)" in closed.out

    again = aims("incidents", "close", INCIDENT, "--by", MARIA)
    assert again.code == 0 and "nothing changed" in again.out

    incident_now = stored(state)
    assert incident_now.closed_at is not None and incident_now.status == "closed"
    assert incident_now.authority_reference == "NCA-2026-7"
    shown = aims("incidents", "show", INCIDENT).out
    assert "Approval gap back under 2 %" in shown and MARIA in shown and "verified" in shown
    assert "before it can close" not in shown and "REFUSED" in shown
    assert INCIDENT not in aims("incidents", "--open").out

    after = written(state)
    accepted = [u for u in after.updates if u.accepted]
    assert [u.kind for u in accepted] == [
        "contain",
        "report",
        "root-cause",
        "plan-action",
        "action-done",
        "verify-action",
        "close",
    ]
    assert all(u.channel == "cli" for u in after.updates)
    for update in accepted:  # each accepted update waits in the outbox for the track-incident flow
        message = after.outbox[outbox_key(update.id)]
        assert message.sent_at is None and message.event["type"] == "org.aims.incident.updated"
    assert len(after.outbox) == len(accepted)
    assert {u.kind for u in after.updates if not u.accepted} == {"close", "verify-action"}


def test_an_outsider_is_refused_and_the_attempt_is_recorded(aims: Aims, state: Path) -> None:
    refused = aims("incidents", "contain", INCIDENT, "--by", OUTSIDER)
    assert refused.code == 2
    assert "refused:" in refused.err and "not an incident responder" in refused.err
    after = written(state)
    assert [(u.by, u.kind, u.accepted) for u in after.updates] == [(OUTSIDER, "contain", False)]
    assert "not an incident responder" in (after.updates[0].refusal or "")
    assert after.outbox == {} and stored(state).contained_at is None
    assert "REFUSED" in aims("incidents", "show", INCIDENT).out


# -- bad input: exit 2, a message saying what to fix, nothing written ---------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("action", INCIDENT, "--description", ACTION, "--owner", TOM, "--due", "31/12/2026"), "YYYY-MM-DD"),
        (
            ("action", INCIDENT, "--description", ACTION, "--owner", TOM, "--due", "2026-02-30"),
            "no such date",
        ),
        (("action", INCIDENT, "--description", " ", "--owner", TOM, "--due", "2030-01-01"), "--description"),
        (("report", INCIDENT, "--reference", ""), "invalid --reference '': must not be empty"),
        (("report", INCIDENT, "--reference", "  "), "invalid --reference"),
        (("cause", INCIDENT, "--root-cause", "\t"), "invalid --root-cause"),
        (("contain", "urn:support#nope"), "no incident 'urn:support#nope'"),
        (("close", "urn:support#nope", "--by", OUTSIDER), "no incident 'urn:support#nope'"),
        (("done", INCIDENT, "A7"), "has no corrective action 'A7'"),
        (
            ("verify", INCIDENT, "A7", "--effectiveness", "fine", "--by", OUTSIDER),
            "no corrective action 'A7'",
        ),
        (("contain", INCIDENT, "--by", " padded "), "invalid --by"),
        (("report", INCIDENT, "--reference", "NCA\x00-1"), "NUL"),
    ],
    ids=[
        "due-format",
        "due-no-such-date",
        "blank-description",
        "empty-reference",
        "blank-reference",
        "blank-root-cause",
        "unknown-incident",
        "unknown-incident-outsider",
        "unknown-action",
        "unknown-action-outsider",
        "padded-by",
        "nul-reference",
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    argv: tuple[str, ...], says: str, aims: Aims, state: Path
) -> None:
    if "--by" not in argv:
        argv = (*argv, "--by", AISHA)
    before = written(state)
    out = aims("incidents", *argv)
    assert out.code == 2, out
    assert says in out.err, out.err
    assert "Traceback" not in out.err
    after = written(state)
    assert after.outbox == {} and after.updates == [] and after.audit_entries == before.audit_entries


def test_a_typo_in_the_action_is_a_usage_error_not_a_lookup(aims: Aims) -> None:
    typo = aims("incidents", "clsoe", INCIDENT)
    assert typo.code == 2 and "did you mean 'close'" in typo.err


# -- no input crashes it -----------------------------------------------------------------------------

# Any text, including control characters and the lone surrogates a non-UTF-8 command line decodes to.
ANY_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)),
    max_size=40,
)


@pytest.fixture(scope="module")
def shared_state() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aims-incident-cli-") as folder:
        seed(Path(folder))
        yield Path(folder)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    flag=st.sampled_from(["--reference", "--root-cause", "--due"]),
    value=ANY_TEXT | st.dates().map(str) | st.sampled_from(["2030-01-01", "NCA-1", "2026-02-29"]),
)
def test_no_value_crashes_the_cli(
    flag: str,
    value: str,
    shared_state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolate(shared_state, monkeypatch)
    argv = {
        "--reference": ["report", INCIDENT, "--reference", value],
        "--root-cause": ["cause", INCIDENT, "--root-cause", value],
        "--due": ["action", INCIDENT, "--description", ACTION, "--owner", TOM, "--due", value],
    }[flag]
    out = run(capsys, "incidents", *argv, "--by", AISHA)  # anything else than CliError escapes here
    assert out.code in (0, 2), out
    assert "Traceback" not in out.err
