"""The flood benchmark's two phases (bench.flood): the bare consume-and-produce loop (the floor), and
the router dead-lettering the same flood while creating runs for the good events inside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from bench.common import REPO, fmt, load_average, parse_time, percentile
from bench.faults_stack import Phase, Stack, wait_assigned
from bench.faults_watch import DrainWatch, read_back
from bench.flood_parts import Record, end_total, flood_order, malformed_record, read_topic, span_rate

if TYPE_CHECKING:
    from schemas.events import AimsEvent


def flood_records(stack: Stack, good: list[AimsEvent]) -> list[tuple[int, Record]]:
    """The flood in the order it is sent: (-1, record) for a malformed one, (i, record) for good event i
    (signed, as `aims demo` sends them)."""
    from events.codec import encode_structured
    from schemas.events import DATA_CHANGED
    from schemas.signing import seal

    args = stack.args
    out: list[tuple[int, Record]] = []
    bad = 0
    for i in flood_order(args.malformed, len(good)):
        if i < 0:
            out.append((-1, malformed_record(bad, args.subjects, DATA_CHANGED)))
            bad += 1
        else:
            value, headers = encode_structured(seal(good[i], stack.signing_key))
            out.append((i, (good[i].key.encode(), value, list(headers))))
    return out


def send_flood(stack: Stack, topic: str, records: list[tuple[int, Record]]) -> tuple[float, dict[int, float]]:
    """Send every record as fast as the producer takes them; (monotonic time of the first send, the
    epoch time each good event was handed to the producer)."""
    from events.kafka_clients import make_producer

    producer = make_producer(stack.kafka, client_id="bench-flood")
    sent_at: dict[int, float] = {}
    try:
        first = time.monotonic()
        for i, (key, value, headers) in records:
            if i >= 0:
                sent_at[i] = time.time()
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush(120)
    finally:
        producer.close(timeout=10)
    return first, sent_at


def run_bare(stack: Stack, records: list[tuple[int, Record]], tag: str) -> dict[str, Any]:
    """The floor: the bare loop (bench.flood_bare, its own process) forwards the flood to another topic."""
    from events.topics import ensure_topics, topic_specs
    from schemas.settings import AimsSettings

    say = stack.say
    topic = f"bench.flood.{tag}.bare"
    settings = AimsSettings(state_dir=stack.state, events_topic=topic, dead_letter_topic=f"{topic}.out")
    ensure_topics(stack.kafka, topic_specs(settings))  # the same partitions as the router's topic
    load = [load_average()]
    command = [
        sys.executable,
        "-m",
        "bench.flood_bare",
        "--bootstrap",
        stack.bootstrap,
        "--topic",
        topic,
        "--out",
        settings.dead_letter_topic,
        "--group",
        f"bench-flood-{tag}-bare",
        "--count",
        str(len(records)),
    ]
    bare = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO, env=stack.process_env())
    try:
        assert bare.stdout is not None
        if bare.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the bare loop did not start (exit {bare.wait(30)})")
        first, _ = send_flood(stack, topic, records)
        say(f"  sent {len(records)} records in {time.monotonic() - first:.1f}s; the bare loop forwards them…")
        line = bare.stdout.readline()
        if bare.wait(600) != 0 or not line:
            raise RuntimeError(f"the bare loop failed (exit {bare.returncode})")
    finally:
        if bare.poll() is None:
            bare.kill()
            bare.wait(10)
    done = json.loads(line)
    out = read_topic(stack.kafka, settings.dead_letter_topic)
    load.append(load_average())
    rate = span_rate(out.timestamps_ms)
    say(f"BARE: {out.records} records forwarded at {fmt(rate, '.0f')} records/s (first → last copy)")
    return {"records": out.records, "forwarded": done["forwarded"], "rate": rate, "load": load}


def run_router(stack: Stack, phase: Phase, records: list[tuple[int, Record]]) -> dict[str, Any]:
    """The same flood to an `aims router` on the phase's topic: dead letters, and the runs of the good
    events (the phase's events)."""
    say, args = stack.say, stack.args
    good_events = phase.events
    load = [load_average()]
    phase.start_router("flood")
    watch: DrainWatch | None = None
    try:
        waited = wait_assigned(phase, "flood", lambda p: p == phase.all_partitions)
        say(f"  router flood holds partitions {sorted(phase.all_partitions)} after {waited:.1f}s")
        first, sent_at = send_flood(stack, phase.settings.events_topic, records)
        say(f"  sent {len(records)} records in {time.monotonic() - first:.1f}s; the router takes them…")
        watch = DrainWatch(phase, first, len(records), args.drain_timeout, interval=2.0).start()
        watch.wait(say)
        alive = phase.routers["flood"].alive()
        if not alive:
            say(f"  router flood EXITED during the flood: {phase.routers['flood'].failure()}")
    except BaseException:
        if watch is not None:
            watch.stop()
        raise
    finally:
        exits = phase.stop_routers()
    load.append(load_average())
    dead = read_topic(stack.kafka, phase.settings.dead_letter_topic)
    rate = span_rate(dead.timestamps_ms)
    counted, states = read_back(phase)
    api = stack.api()
    try:
        runs = api.runs_for_keys(phase.keys)
    finally:
        api.close()
    index = {e.dedup_key: i for i, e in enumerate(good_events)}
    latencies = [
        parse_time(r.created) - sent_at[index[r.idempotency_key]] for r in runs if r.idempotency_key in index
    ]
    result = {
        "records": len(records),
        "dead_letters": dead.records,
        "dead_letters_expected": args.malformed,
        "rate": rate,
        "drain_s": watch.drain_s,
        "gave_up": watch.gave_up,
        "good": len(good_events),
        "runs": counted.runs,
        "lost": len(counted.lost) + max(0, args.malformed - dead.records),
        "duplicated": len(counted.duplicated),
        "extra_dead_letters": max(0, dead.records - args.malformed),
        "states": states,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "load": load,
        "routers_exited": [] if alive else ["flood"],
        "exit_codes": exits,
        "end_total": end_total(stack.kafka, phase.settings.events_topic),
    }
    say(
        f"ROUTER: {dead.records} dead letters at {fmt(rate, '.0f')} records/s; good events produce → run "
        f"created p50 {result['p50_ms']:.0f} / p99 {result['p99_ms']:.0f} ms over {len(latencies)} runs"
    )
    return result
