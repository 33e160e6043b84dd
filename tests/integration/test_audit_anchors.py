"""Anchors on the real broker: a router's publisher sends the audit head, `aims audit verify` reads
it back and catches a log cut back behind the register's back (issue 20, point 5)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text, update

from connectors.register.store import Register
from connectors.register.tables import audit_head
from events.anchors import AnchorPublisher, read_anchors
from events.kafka_clients import make_producer
from events.topics import ensure_topics, topic_specs
from schemas import records as r
from schemas.settings import AimsSettings
from tests.records import sample
from tests.support import SessionStack

KEY = "integration-audit-key-0123456789abcdef"


def test_published_anchors_catch_a_truncated_log(stack: SessionStack, tmp_path: Path) -> None:
    topic = f"anchors.{uuid.uuid4().hex[:8]}"
    settings = AimsSettings(state_dir=tmp_path, audit_anchors_topic=topic)
    ensure_topics(stack.kafka, [s for s in topic_specs(settings) if s.name == topic])
    register = Register.for_state(tmp_path, audit_key=SecretStr(KEY))
    register.migrate()
    producer = make_producer(stack.kafka, client_id="test-anchors")
    clock = [0.0]
    publisher = AnchorPublisher(register, producer, topic, SecretStr(KEY), every=1, clock=lambda: clock[0])
    with register.unit_of_work("t") as uow:
        uow.systems.add(sample(r.AISystem))
    assert publisher.tick() is not None  # entry 1
    with register.unit_of_work("t") as uow:
        uow.systems.update("credit-scoring", owner="model-risk")
        uow.systems.update("credit-scoring", owner="ops")
    clock[0] = 5
    assert publisher.tick() is not None  # entry 3
    producer.send(topic, key=b"audit-head", value=b'{"seq": 3, "head": "forged"}').get(timeout=10)
    producer.close()

    anchors = read_anchors(stack.kafka, topic, SecretStr(KEY))
    assert sorted(anchors.by_seq) == [1, 3] and anchors.rejected == 1 and anchors.keyed_from == 1
    assert register.verify_audit(anchors).ok

    env = {
        "AIMS_STATE_DIR": str(tmp_path),
        "AIMS_AUDIT_KEY": KEY,
        "AIMS_AUDIT_ANCHORS_TOPIC": topic,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
    }

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aims", "audit", "verify", "--json"],
            capture_output=True,
            text=True,
            env=stack.env(**env),
            timeout=120,
        )

    ok = verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["anchors_checked"] == 2

    # Cut the newest entry off and move the head back: every remaining HMAC is valid.
    with register.engine.begin() as conn:
        second = conn.execute(text("SELECT hash, after_text FROM audit_log WHERE seq = 2")).one()
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
        conn.execute(update(audit_head).values(seq=2, hash=second.hash))
        conn.execute(text("UPDATE ai_system SET owner = 'model-risk'"))
    assert register.verify_audit().ok  # inside the database, nothing gives it away
    broken = verify()
    report = json.loads(broken.stdout)
    assert broken.returncode == 1 and report["problem"]["kind"] == "truncated"
    assert report["problem"]["seq"] == 2 and report["last_good_anchor"] == 1
    register.close()
