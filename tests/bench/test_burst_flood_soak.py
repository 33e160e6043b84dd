"""The burst, flood and soak benchmarks' pure parts: what they count and how they print it.

A benchmark that miscounts passes the bug it exists to catch: an event recorded nowhere read as
recorded, a malformed record that the router would accept, a restarted process's start-up read as a
leak, a lag that hides its peak.
"""

from __future__ import annotations

import itertools
import math

import pytest

from bench.burst_run import recorded
from bench.common import percentile, ratio, ratio_text
from bench.flood_parts import MALFORMED_KINDS, flood_order, malformed_record, span_rate
from bench.router_report import render_table, router_counts
from bench.soak_figures import MB, group_lag, lag_summary, life_text, lives


def test_recorded_counts_checks_superseded_and_what_is_missing() -> None:
    events = [("s#1", "d1", "v1"), ("s#2", "d1", "v2"), ("s#3", "d2", "v1"), ("s#4", "d2", "v2")]
    versions = {
        ("d1", "v1"): "superseded",
        ("d1", "v2"): "accepted",
        ("d2", "v2"): "rejected",
        ("x", "v"): "y",
    }
    found = recorded(events, ["s#1", "s#2", "s#4", "other#9"], versions)
    assert (found.events, found.receipts, found.versions) == (4, 3, 3)
    assert (found.checked, found.superseded) == (2, 1)  # any verdict but superseded is a check
    assert found.statuses == {"accepted": 1, "rejected": 1, "superseded": 1}
    assert found.without_receipt == ["s#3"]
    assert found.without_version == ["s#3"]


def test_a_burst_wholly_superseded_but_one_per_dataset_is_one_check_per_dataset() -> None:
    events = [(f"s#{d}-{v}", f"d{d}", f"v{v}") for d in range(3) for v in range(5)]
    versions = {(f"d{d}", f"v{v}"): "superseded" if v < 4 else "accepted" for d in range(3) for v in range(5)}
    found = recorded(events, [k for k, _, _ in events], versions)
    assert (found.checked, found.superseded, found.versions) == (3, 12, 15)
    assert found.without_receipt == found.without_version == []


def test_every_malformed_kind_is_refused_by_decoding_with_its_own_reason() -> None:
    from events.codec import Rejected, decode
    from schemas.events import DATA_CHANGED

    reasons = []
    for i in range(len(MALFORMED_KINDS)):
        key, value, headers = malformed_record(i, subjects=7, known_type=DATA_CHANGED)
        decoded = decode(value, headers, 1_000_000)
        assert isinstance(decoded, Rejected), MALFORMED_KINDS[i]
        reasons.append(decoded.reason.value)
        assert key == f"flood-{i % 7:03d}".encode()
    # not JSON and not an object share "malformed"; the rest name what is wrong.
    assert reasons == ["malformed", "malformed", "invalid-envelope", "unknown-type", "invalid-payload"]


def test_malformed_records_are_all_different() -> None:
    values = {malformed_record(i, 40, "org.aims.data.changed")[1] for i in range(200)}
    assert len(values) == 200


@pytest.mark.parametrize(("malformed", "good"), [(10, 2), (50_000, 500), (7, 3), (5, 0), (3, 5)])
def test_the_good_events_are_spread_evenly_through_the_flood(malformed: int, good: int) -> None:
    order = flood_order(malformed, good)
    assert order.count(-1) == malformed
    assert [i for i in order if i >= 0] == list(range(good))
    positions = [p for p, i in enumerate(order) if i >= 0]
    if good and malformed >= good:
        assert positions[0] >= malformed // good - 1  # after a stretch of malformed records
        gaps = [b - a for a, b in itertools.pairwise(positions)]
        assert max(gaps, default=0) - min(gaps, default=0) <= 2


def test_span_rate_counts_intervals_between_first_and_last() -> None:
    assert span_rate([1000, 1500, 2000, 3000]) == pytest.approx(1.5)  # 3 intervals in 2 s
    assert span_rate([5000, 3000]) == pytest.approx(0.5)  # order does not matter
    assert span_rate([1000]) is None
    assert span_rate([1000, 1000]) is None


def test_percentile_interpolates_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 99))


def test_ratio_and_its_text() -> None:
    assert ratio(5.0, 10.0) == 0.5
    assert ratio(None, 10.0) is None
    assert ratio(5.0, 0.0) is None
    assert ratio(float("nan"), 10.0) is None
    assert ratio_text(9.7, 10.0) == "0.97×"
    assert ratio_text(1.0, None) == "–"


def test_lives_split_a_restarted_process_and_skip_its_downtime() -> None:
    samples = [
        (0.0, 100, 50 * MB),  # starting up
        (60.0, 100, 80 * MB),  # a minute in: its start
        (120.0, 100, 95 * MB),
        (130.0, 100, 90 * MB),
        (135.0, 100, 0),  # killed: gone from /proc
        (140.0, None, 0),  # down
        (150.0, 200, 40 * MB),  # the new process: too short to pass the warm-up
        (170.0, 200, 70 * MB),
    ]
    first, second = lives(samples, warmup_s=60)
    assert (first.pid, first.start_bytes, first.end_bytes, first.peak_bytes, first.samples) == (
        100,
        80 * MB,
        90 * MB,
        95 * MB,
        4,
    )
    assert first.growth == pytest.approx(90 / 80)
    assert (second.pid, second.first_s, second.start_bytes, second.end_bytes) == (
        200,
        150.0,
        40 * MB,
        70 * MB,
    )
    assert "80 → 90 MB (+12%), peak 95 MB" in life_text(first)


def test_a_role_never_sampled_alive_has_no_life() -> None:
    assert lives([(0.0, None, 0), (5.0, 7, 0)], warmup_s=60) == []


def test_lag_summary_finds_the_first_peak_and_counts_unreadable_samples() -> None:
    summary = lag_summary([(0.0, 3), (2.0, None), (4.0, 40), (6.0, 40), (8.0, 0)])
    assert (summary.max_lag, summary.max_at_s, summary.unknown, summary.samples) == (40, 4.0, 1, 5)
    assert lag_summary([(0.0, None)]).max_lag is None


def test_group_lag_counts_an_uncommitted_partition_whole() -> None:
    assert group_lag({0: 10, 1: 5, 2: 7}, {0: 10, 1: 2}) == 0 + 3 + 7
    assert group_lag({0: 3}, {0: 5}) == 0  # committed past what this producer saw acknowledged


def test_the_router_table_shows_each_router_count_measured() -> None:
    result = {
        "backend": "sqlite",
        "floor_rate": 5.0,
        "router_rate": 4.5,
        "ratio": 0.9,
        "router2_rate": 5.5,
        "router2_wall_rate": 3.0,
        "ratio2": 1.1,
    }
    assert router_counts([result]) == [2]
    table = render_table([result, {"backend": "postgres", "error": "crashed"}])
    header, _, row, failed = table.splitlines()
    assert "2 routers ev/s" in header and "ratio 2" in header
    assert row.split()[:8] == ["sqlite", "5.0", "–", "/", "–", "4.5", "0.90", "5.5"]
    assert "1.10" in row
    assert failed.startswith("postgres") and "crashed" in failed
