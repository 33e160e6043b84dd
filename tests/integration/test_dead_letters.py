"""Bad records go to the dead-letter topic, untouched, with the reason; good ones around them flow."""

from __future__ import annotations

import json

from events.codec import encode_binary, encode_structured
from events.dead_letter import DETAIL, REASON, SOURCE_OFFSET
from tests.factories import data_event, incident_event, model_event
from tests.support import SessionStack, poll


def _structured(raw: dict) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return b"k", json.dumps(raw).encode(), [("content-type", b"application/cloudevents+json")]


def test_each_bad_record_is_dead_lettered_with_its_reason(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    good = [model_event("dlq-a"), data_event("dlq-b"), incident_event("dlq-c"), model_event("dlq-d")]
    base = json.loads(encode_structured(incident_event("bad"))[0])
    wrong_payload = {**base, "data": {**base["data"], "severity": 5, "occurred_at": "yesterday"}}
    no_id = {k: v for k, v in base.items() if k != "id"}
    huge = {**base, "data": {**base["data"], "description": "x" * 300_000}}
    bad = {
        "malformed": (b"k", b'{"specversion": "1.0", "id": ', []),
        "unsupported-specversion": _structured({**base, "specversion": "0.3"}),
        "invalid-envelope": _structured(no_id),
        "unknown-type": _structured({**base, "type": "org.example.unheard.of"}),
        "invalid-payload": _structured(wrong_payload),
        "oversize": _structured(huge),
    }
    records = []
    good_iter = iter(good)
    for key, value, headers in bad.values():
        g = next(good_iter, None)
        if g is not None:
            gv, gh = encode_binary(g) if len(records) % 2 else encode_structured(g)
            records.append((g.key.encode(), gv, gh))
        records.append((key, value, headers))

    with stack.router(topics):
        stack.publish_raw(topics["AIMS_EVENTS_TOPIC"], records)
        runs = stack.wait_for_runs([g.dedup_key for g in good])
        poll(
            lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == len(records),
            120,
            "all offsets committed",
        )

    assert len(runs) == len(good)
    dead = stack.read_topic(topics["AIMS_DEAD_LETTER_TOPIC"], expected=len(bad))
    assert len(dead) == len(bad)
    by_reason = {dict(d.headers)[REASON].decode(): d for d in dead}
    assert set(by_reason) == set(bad)
    for reason, (key, value, _) in bad.items():
        letter = by_reason[reason]
        assert letter.value == value, f"{reason}: the original bytes must stay intact"
        assert letter.key == key
        headers = dict(letter.headers)
        assert headers[DETAIL], f"{reason}: the detail says what is wrong"
        assert int(headers[SOURCE_OFFSET]) >= 0
    assert b"severity" in dict(by_reason["invalid-payload"].headers)[DETAIL]
    assert b"specversion" in dict(by_reason["unsupported-specversion"].headers)[DETAIL]


def test_dlq_commands_list_show_and_replay(stack: SessionStack, topics: dict[str, str]) -> None:
    import subprocess
    import sys

    event = model_event("replayed")
    value, headers = encode_structured(event)
    broken = json.loads(value)
    broken["type"] = "org.aims.model.version.registred"  # a producer's typo
    raw = json.dumps(broken).encode()
    with stack.router(topics):
        stack.publish_raw(topics["AIMS_EVENTS_TOPIC"], [(b"replayed", raw, headers)])
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 1, 60, "the bad record handled")
    env = stack.env(**topics)

    def aims(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aims", "dlq", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = aims("list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["reason"] == "unknown-type" and "registred" in entry["detail"]
    shown = aims("show", entry["position"])
    assert shown.returncode == 0 and "dlq_reason: unknown-type" in shown.stdout
    assert aims("show", "0:999").returncode == 2

    replayed = aims("replay", entry["position"])
    assert replayed.returncode == 0 and "replayed 1" in replayed.stdout
    records = stack.read_topic(topics["AIMS_EVENTS_TOPIC"], expected=2)
    assert len(records) == 2
    again = records[-1]
    assert again.value == raw and again.key == b"replayed"
    assert not [k for k, _ in again.headers if k.startswith("dlq_")]


def test_a_backlog_paused_and_resumed_at_the_in_flight_cap_is_read_to_its_end(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    """The router pauses a partition at its in-flight cap and resumes it once settled. kafka-python
    3.0 parks the records of a paused partition that a poll had not returned yet, and never hands
    them back (the bench's bursts and floods stalled with lag and nothing in flight): every record
    here must still be read, dead-lettered and committed."""
    count = 3000
    records = [(f"k{i % 40}".encode(), b'{"specversion": "1.0", "id": ', []) for i in range(count)]
    stack.publish_raw(topics["AIMS_EVENTS_TOPIC"], records)
    with stack.router(topics, router_max_in_flight=10) as router:
        poll(
            lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == count,
            180,
            f"all {count} offsets committed (the router stalls with records parked)",
            every=2,
        )
        assert router.stats.dead_lettered == count
