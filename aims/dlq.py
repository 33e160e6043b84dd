"""`aims dlq list|show|replay`: read dead letters back and send fixed ones through again."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from aims.errors import CliError
from events.dead_letter import AT, DeadLetter
from events.kafka_clients import KafkaConnection, make_consumer, make_producer
from schemas.settings import AimsSettings


def read_dead_letters(settings: AimsSettings, kafka: KafkaConnection) -> Iterator[DeadLetter]:
    """Everything on the dead-letter topic, oldest first per partition. Commits nothing."""
    from kafka.structs import TopicPartition

    consumer = make_consumer(kafka, None, consumer_timeout_ms=2000)
    try:
        parts = consumer.partitions_for_topic(settings.dead_letter_topic)
        if not parts:
            raise CliError(f"no topic {settings.dead_letter_topic!r}: has the stack been started?")
        tps = [TopicPartition(settings.dead_letter_topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            polled = consumer.poll(timeout_ms=2000)
            if not polled:
                break
            for tp, records in polled.items():
                for r in records:
                    yield DeadLetter(r.partition, r.offset, r.key, r.value, list(r.headers or []))
                    if r.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    finally:
        consumer.close()


def parse_position(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([0-9]+):([0-9]+)", text)
    if match is None:
        raise CliError(f"{text!r}: give a dead letter as PARTITION:OFFSET, e.g. 0:12 (see `aims dlq list`)")
    return int(match[1]), int(match[2])


def render_list(letters: list[DeadLetter]) -> str:
    if not letters:
        return "no dead letters"
    lines = [f"{'POSITION':10} {'REASON':25} {'WHEN':32} {'KEY':20} DETAIL"]
    for d in letters:
        key = (d.key or b"").decode("utf-8", "replace")[:20]
        reason = f"{d.reason} (ref)" if d.is_reference else d.reason
        lines.append(f"{d.partition}:{d.offset:<8} {reason:25} {d.header(AT):32} {key:20} {d.detail[:100]}")
    return "\n".join(lines)


def render_one(d: DeadLetter) -> str:
    value = d.value or b""
    try:
        body = json.dumps(json.loads(value), indent=2)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = repr(value[:2000]) + (" …" if len(value) > 2000 else "")
    headers = "\n".join(f"  {k}: {v.decode('utf-8', 'replace')[:500]}" for k, v in d.headers)
    if d.is_reference:
        return (
            f"dead letter {d.partition}:{d.offset} is a reference: the record was too large to copy "
            f"with the dead-letter headers, so this letter says where it is and how it begins.\n"
            f"key: {d.key!r}\nheaders:\n{headers}\nreference:\n{body}"
        )
    return (
        f"dead letter {d.partition}:{d.offset}\nkey: {d.key!r}\nheaders:\n{headers}\n"
        f"value ({len(value)} bytes):\n{body}"
    )


def replay(settings: AimsSettings, kafka: KafkaConnection, letters: list[DeadLetter]) -> int:
    """Publish the original records to the events topic again, untouched but for our headers.

    A reference letter holds no original to publish: naming one is an error that publishes nothing.
    """
    references = [f"{d.partition}:{d.offset}" for d in letters if d.is_reference]
    if references:
        raise CliError(
            f"{', '.join(references)}: only a reference to a record too large to copy (see `aims dlq show`); "
            "nothing was replayed. Have the producer send that event again within the size limit."
        )
    producer = make_producer(kafka)
    try:
        futures = [
            producer.send(settings.events_topic, key=d.key, value=d.value, headers=d.original_headers)
            for d in letters
        ]
        producer.flush(30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()
    return len(letters)
