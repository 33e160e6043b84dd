"""Anyone who can produce to the topic must not pre-empt the system's own events (issue 19, point 5).

The system's event ids are predictable (`reassess:<system>/<model>/<version>` from
`urn:aims:onboard-model`, `<approval>:decided` from `urn:aims:request-approval`), and the router
dedupes on source#id: a forged copy that arrived first used to be the one kept. Events claiming an
`urn:aims:` source must carry a valid signature; an id seen before with other content is a
conflicting duplicate. Both go to the dead-letter topic with their reason and start nothing.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from events.codec import encode_structured
from events.dead_letter import REASON
from schemas.events import (
    APPROVAL_DECIDED,
    EVENT_CLASSES,
    RISK_REASSESSMENT_REQUESTED,
    AimsEvent,
)
from tests.factories import SAMPLES, model_event
from tests.support import SessionStack, poll


def _event(event_type: str, source: str, event_id: str, **data: Any) -> AimsEvent:
    payload = {**copy.deepcopy(SAMPLES[event_type]), **data}
    return EVENT_CLASSES[event_type].model_validate(
        {"specversion": "1.0", "id": event_id, "source": source, "data": payload}
    )


def _forge(stack: SessionStack, topic: str, event: AimsEvent) -> bytes:
    """Publish `event` as an attacker would: well-formed, but without the system's key."""
    value, headers = encode_structured(event)
    stack.publish_raw(topic, [(event.key.encode(), value, headers)])
    return value


def _dead_letters(stack: SessionStack, topic: str, count: int) -> list[Any]:
    return stack.read_matching(topic, lambda r: True, count, timeout=60)


def test_a_forged_internal_request_sent_first_is_dead_lettered_and_the_real_one_decides(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    system = f"forged-{uuid.uuid4().hex[:8]}"
    # The id onboard-model gives the assessment of version 1 of this system's model.
    request_id = f"reassess:{system}/{system}-model/1"
    forged = _event(
        RISK_REASSESSMENT_REQUESTED,
        "urn:aims:onboard-model",
        request_id,
        ai_system=system,
        reason="manual",
        details={"note": "forged by whoever can produce to the topic"},
    )
    real = _event(
        RISK_REASSESSMENT_REQUESTED,
        "urn:aims:onboard-model",
        request_id,
        ai_system=system,
        reason="new_model_version",
        evidence=f"{system}/{system}-model/1",
    )
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        forged_bytes = _forge(stack, topics["AIMS_EVENTS_TOPIC"], forged)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 1, 120, "the forged record handled")
        publisher.publish(real, mode="binary")  # the signature holds in either binding
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 2, 120, "the real record handled")
        runs = stack.wait_for_runs([real.dedup_key])
    publisher.close()
    stack.discard_runs([real.dedup_key])

    assert len(runs) == 1
    # The real request decides what is assessed, not the copy that came first.
    assert runs[0].parameters["event"]["data"] == real.model_dump(mode="json")["data"]
    [letter] = _dead_letters(stack, topics["AIMS_DEAD_LETTER_TOPIC"], 1)
    assert letter.value == forged_bytes
    assert dict(letter.headers)[REASON] == b"invalid-signature"
    with stack.register().reader() as uow:
        assert uow.events.one(real.dedup_key).data == real.model_dump(mode="json")["data"]


def test_a_forged_approval_decided_is_not_kept_in_the_register(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    approval = f"ap-{uuid.uuid4().hex[:8]}"
    forged = _event(
        APPROVAL_DECIDED, "urn:aims:request-approval", f"{approval}:decided", approval_id=approval
    )
    with stack.router(topics) as router:
        forged_bytes = _forge(stack, topics["AIMS_EVENTS_TOPIC"], forged)
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 1, 120, "the forged record handled")
        assert router.stats.dead_lettered == 1
    [letter] = _dead_letters(stack, topics["AIMS_DEAD_LETTER_TOPIC"], 1)
    assert letter.value == forged_bytes and dict(letter.headers)[REASON] == b"invalid-signature"
    with stack.register().reader() as uow:
        assert uow.events.get(forged.dedup_key) is None


def test_an_id_seen_with_other_content_is_a_conflicting_duplicate_and_a_redelivery_is_not(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    # An outside producer's event (not an urn:aims: source: nothing signs it).
    first = model_event(f"dup-{uuid.uuid4().hex[:8]}").model_copy(
        update={"source": "https://registry.tests.example/mlflow"}
    )
    other = first.model_copy(update={"data": first.data.model_copy(update={"owner": "mallory"})})
    topic = topics["AIMS_EVENTS_TOPIC"]
    with stack.router(topics):
        stack.publish_raw(topic, [(first.key.encode(), *encode_structured(first))])
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 1, 120, "the first copy handled")
        conflicting = encode_structured(other)
        stack.publish_raw(
            topic,
            [(first.key.encode(), *conflicting), (first.key.encode(), *encode_structured(first))],
        )
        poll(lambda: stack.committed(topics["AIMS_CONSUMER_GROUP"]) == 3, 120, "all three handled")
        runs = stack.wait_for_runs([first.dedup_key])
    stack.discard_runs([first.dedup_key])

    assert len(runs) == 1 and runs[0].parameters["event"]["data"]["owner"] == first.data.owner
    # Only the copy with other content is a dead letter; the identical redelivery is a plain duplicate.
    [letter] = _dead_letters(stack, topics["AIMS_DEAD_LETTER_TOPIC"], 1)
    assert letter.value == conflicting[0]
    assert dict(letter.headers)[REASON] == b"conflicting-duplicate"
    with stack.register().reader() as uow:
        assert uow.events.one(first.dedup_key).data["owner"] == first.data.owner
    listed = stack.aims("dlq", "list", "--json", "--reason", "conflicting-duplicate", **topics)
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert first.dedup_key in entry["detail"]
