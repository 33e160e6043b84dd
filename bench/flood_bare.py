"""The flood benchmark's floor (bench.flood): a bare kafka-python consume-and-produce loop, run as its
own process as the router is. It does the least a dead-letter path must: read each record, send it to
another topic, and commit the offsets once the copies are acknowledged — no decoding, no logging.

    python -m bench.flood_bare --bootstrap HOST:PORT --topic T --out T2 --group G --count N

Prints `ready` once it holds partitions, then a JSON line with what it forwarded, and exits after N
records (or after --idle seconds without one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def forward(args: argparse.Namespace) -> dict[str, float | int]:
    from events.kafka_clients import KafkaConnection, make_consumer, make_producer
    from events.router import POLL_EVERY_FETCHED_RECORD

    kafka = KafkaConnection(args.bootstrap)  # the benchmark's own plaintext broker
    # The router's poll size and the project's client defaults: only the work per record differs.
    batch = POLL_EVERY_FETCHED_RECORD
    consumer = make_consumer(kafka, args.group, client_id="bench-bare", max_poll_records=batch)
    producer = make_producer(kafka, client_id="bench-bare-out")
    forwarded = 0
    first = last = 0.0
    try:
        consumer.subscribe([args.topic])
        while not consumer.assignment():
            consumer.poll(timeout_ms=200)
        print("ready", flush=True)
        idle_since = time.monotonic()
        while forwarded < args.count:
            polled = consumer.poll(timeout_ms=100)
            records = [r for part in polled.values() for r in part]
            if not records:
                if time.monotonic() - idle_since > args.idle:
                    break
                continue
            idle_since = time.monotonic()
            if not forwarded:
                first = time.time()
            for r in records:
                producer.send(args.out, key=r.key, value=r.value, headers=r.headers or [])
            producer.flush(60)
            consumer.commit()  # the positions polled, now that their copies are acknowledged
            forwarded += len(records)
            last = time.time()
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    return {"forwarded": forwarded, "first": first, "last": last}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood_bare")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--idle", type=float, default=120)
    args = parser.parse_args(argv)
    print(json.dumps(forward(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
