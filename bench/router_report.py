"""The router benchmark's report (bench.router): the table of results per backend, the verdicts
against the targets, and the figures of each round.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bench.common import fmt
from bench.router_parts import TARGET_P50_RUNNING_S, TARGET_P99_CREATED_MS, TARGET_RATIO


def router_counts(results: list[dict[str, Any]]) -> list[int]:
    """The router counts above one that were measured (`router2_rate`, …), in order."""
    found = {int(key[len("router") : -len("_rate")]) for r in results for key in r if _is_count_key(key)}
    return sorted(found)


def _is_count_key(key: str) -> bool:
    middle = key[len("router") : -len("_rate")]
    return key.startswith("router") and key.endswith("_rate") and middle.isdigit()


def render_table(results: list[dict[str, Any]]) -> str:
    counts = router_counts(results)
    header = (
        "backend",
        "floor runs/s",
        "floor p50/p99 ms",
        "router ev/s",
        "ratio",
        *(h for n in counts for h in (f"{n} routers ev/s", f"ratio {n}")),
        "steady ev/s",
        "created p50/p99 ms",
        "Running p50 s",
    )
    rows = [header]
    for r in results:
        if "error" in r:
            rows.append((r["backend"], r["error"], *[""] * (len(header) - 2)))
            continue
        rows.append(
            (
                r["backend"],
                fmt(r.get("floor_rate"), ".1f"),
                f"{fmt(r.get('floor_p50_ms'), '.0f')} / {fmt(r.get('floor_p99_ms'), '.0f')}",
                fmt(r.get("router_rate"), ".1f"),
                fmt(r.get("ratio"), ".2f"),
                *(
                    c
                    for n in counts
                    for c in (fmt(r.get(f"router{n}_rate"), ".1f"), fmt(r.get(f"ratio{n}"), ".2f"))
                ),
                fmt(r.get("steady_rate"), ".2f"),
                f"{fmt(r.get('steady_p50_ms'), '.0f')} / {fmt(r.get('steady_p99_ms'), '.0f')}",
                fmt(r.get("running_p50_s"), ".2f"),
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdicts(result: dict[str, Any]) -> str:
    def check(name: str, value: Any, ok: Callable[[float], bool], shown: str) -> str:
        if value is None or value != value:
            return f"{name} –"
        return f"{name} {shown} {'meets' if ok(value) else 'MISSES'}"

    return "; ".join(
        [
            check(
                "ratio",
                result.get("ratio"),
                lambda v: v >= TARGET_RATIO,
                f"{fmt(result.get('ratio'), '.3f')} (≥ {TARGET_RATIO})",
            ),
            check(
                "p99 created",
                result.get("steady_p99_ms"),
                lambda v: v <= TARGET_P99_CREATED_MS,
                f"{fmt(result.get('steady_p99_ms'), '.0f')} ms (≤ {TARGET_P99_CREATED_MS:.0f})",
            ),
            check(
                "p50 Running",
                result.get("running_p50_s"),
                lambda v: v <= TARGET_P50_RUNNING_S,
                f"{fmt(result.get('running_p50_s'), '.2f')} s (≤ {TARGET_P50_RUNNING_S:g})",
            ),
        ]
    )


def per_round(rounds: list[dict[str, Any]]) -> str:
    def values(key: str, spec: str) -> str:
        return "/".join(fmt(r.get(key), spec) for r in rounds)

    more = "".join(
        f"{n} routers ev/s {values(f'router{n}_rate', '.1f')}, ratio {n} {values(f'ratio{n}', '.2f')}, "
        for n in router_counts(rounds)
    )
    return (
        f"floor runs/s {values('floor_rate', '.1f')}, floor p99 ms {values('floor_p99_ms', '.0f')}, "
        f"router ev/s {values('router_rate', '.1f')}, ratio {values('ratio', '.2f')}, {more}"
        f"created p99 ms {values('steady_p99_ms', '.0f')}"
    )


def render_results(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """The whole report: the table, then per backend the verdicts and the figures behind them."""
    lines: list[str] = []
    lines.append(
        "Router benchmark (a fresh Prefect server per backend, PostgreSQL with fsync off, one Kafka "
        f"broker; floor {args.floor_runs} runs, "
        f"{args.events} events, router concurrency {args.concurrency}, steady {args.steady_seconds:g}s"
        + (f"; medians of {args.repeat} rounds)" if args.repeat > 1 else ")")
    )
    lines.append(render_table(results))
    lines.append("")
    for r in results:
        if "error" in r:
            continue
        lines.append(f"{r['backend']}: {verdicts(r)}")
        lines.append(
            f"  floor max {fmt(r.get('floor_max_ms'), '.0f')} ms; idempotent repeat returned the "
            f"same run: {r.get('idempotent_same_run')}; router: {r.get('router_runs')} runs for "
            f"{r.get('router_events')} events, {r.get('router_dead_lettered')} dead-lettered, "
            f"{fmt(r.get('router_wall_rate'), '.1f')} events/s wall; steady max "
            f"{fmt(r.get('steady_max_ms'), '.0f')} ms over {r.get('steady_runs')} runs"
        )
        for n in router_counts([r]):
            lines.append(
                f"  {n} routers: {r.get(f'router{n}_runs')} runs for "
                f"{r.get(f'router{n}_events')} events, "
                f"{r.get(f'router{n}_dead_lettered')} dead-lettered, "
                f"{fmt(r.get(f'router{n}_wall_rate'), '.1f')} events/s wall"
            )
        if len(r.get("rounds", [])) > 1:
            lines.append(f"  per round: {per_round(r['rounds'])}")
        loads = ", ".join(f"{phase} {a}→{b}" for phase, (a, b) in r.get("load", {}).items())
        lines.append(f"  1-minute load average at the start→end of each phase (2 cores, shared): {loads}")
        if "running_p50_s" in r:
            lines.append(
                f"  Running: {r['running_started']}/{r['running_events']} runs started, max "
                f"{fmt(r['running_max_s'], '.2f')} s; final states {r['running_states']}"
            )
    lines.append("")
    lines.append(
        f"targets: ratio ≥ {TARGET_RATIO}, p99 produce→created ≤ {TARGET_P99_CREATED_MS:.0f} ms at "
        f"half the floor rate, p50 produce→Running ≤ {TARGET_P50_RUNNING_S:g} s. "
        "Times never fail the benchmark."
    )
    return lines
