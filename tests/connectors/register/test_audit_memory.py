"""`verify_audit` streams the log in batches: its memory does not grow with the log's length.

Measured with tracemalloc's peak (allocations, not time) on two logs of one record updated many
times, so that what the row check keeps per record stays the same and only the log's length differs.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from pydantic import SecretStr

from connectors.register.store import Register
from schemas import records as r
from tests.records import sample

KEY = SecretStr("test-audit-key-0123456789abcdef0123456789")


def log_of(path: Path, entries: int) -> Register:
    register = Register.for_state(path, audit_key=KEY)
    register.migrate()
    with register.unit_of_work("t") as uow:
        uow.systems.add(sample(r.AISystem))
        for i in range(entries - 1):
            uow.systems.update("credit-scoring", owner=f"owner-{i}", description="x" * 200)
    return register


def peak_of_verify(register: Register) -> int:
    register.verify_audit(batch=50)  # warm: compiled statements and caches are not the log
    tracemalloc.start()
    try:
        report = register.verify_audit(batch=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok, report.problem
    return peak


def test_verification_memory_is_independent_of_the_log_length(tmp_path: Path) -> None:
    small = log_of(tmp_path / "small", 200)
    large = log_of(tmp_path / "large", 1600)
    try:
        small_peak, large_peak = peak_of_verify(small), peak_of_verify(large)
    finally:
        small.close()
        large.close()
    # Eight times the entries; a log held whole would take ~8× the memory (≥ 1 KiB per entry).
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)
