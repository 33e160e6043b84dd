"""Data-quality checks: GX against a numpy floor, and event → recorded verdict (issue 4).

    make bench-dq BENCH_DQ_ARGS="--rows 1000000 --repeat 3"
    .venv/bin/python -m bench.data_quality [--rows N] [--repeat N] [--events N] [--spacing S]
                                           [--skip-latency] [--skip-validation]

Three measurements, state in `.aims/bench/data-quality`:

1. VALIDATION — `GxEngine.validate` (a fresh engine each round, as the flow creates one per run) of
   a suite of 10 expectations, of the kinds our suites use, on a generated Parquet file of --rows
   rows, against a vectorized pandas/numpy pass that reads the same file and computes the same
   verdicts. Both must agree on every expectation's pass/fail and unexpected count (observed value
   for table expectations), or the benchmark crashes: a fast floor that answers something else
   proves nothing. Medians of --repeat rounds and the ratio GX / floor (target ≤ 10×), with and
   without reading the file.
2. LATENCY — a Kafka broker, a Prefect server (SQLite), `aims worker` with warm spares, and an
   in-process `events.router.Router` (PrefectLauncher, RegisterReceipts) as in the stack; --events
   data-changed events, one at a time, --spacing seconds apart, each a new version of the dataset
   the repository's loan-applications suite checks; latency = produce → the DataQualityResult row
   `<dataset>@<version>` visible in the register, split into produce → run created → Running →
   recorded. The coalescing window is 0 (a copy of the policy with `coalesce_seconds: 0`, for the
   worker through AIMS_POLICY_FILE, and for the router): a window would only add itself to every
   figure. Suites are a copy of suites/ in the state folder, so baselines never land in the repo.
3. GX IMPORT — each flow-run process logs an `aims-warm-run` line in the worker's log, saying whether
   Great Expectations was imported before the run started (a GX-warm spare) and how long importing it took
   when the run had to (`infra.warm_engine`); the benchmark prints "GX imported in N of M runs" and
   the latency of the runs that paid the import against those that did not.

Nothing here fails on a time: numbers and the target are printed; the exit status says only
whether something crashed (or the floor disagreed with GX). Each phase prints the machine's load
average: it is shared, and the numbers move with it.

This module is the command line; part 1 is in bench.data_quality_validation, parts 2 and 3 in
bench.data_quality_latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from typing import Any

from bench.common import Progress, interrupt
from bench.data_quality_latency import measure_latency, report_latency
from bench.data_quality_validation import measure_validation, report_validation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.data_quality",
        description="GX validation against a numpy floor, and data-changed event → recorded verdict.",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, metavar="N", help="rows (default %(default)s)")
    parser.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="validation rounds; medians (default %(default)s)"
    )
    parser.add_argument(
        "--events", type=int, default=10, metavar="N", help="data-changed events (default %(default)s)"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=10,
        metavar="S",
        help="seconds from one verdict to the next event (default %(default)s)",
    )
    parser.add_argument(
        "--gx-spares",
        type=int,
        default=None,
        metavar="N",
        help="the worker's GX-warm spares (AIMS_WARM_GX_PROCESSES; 0 = none, as before issue 4)",
    )
    parser.add_argument("--skip-latency", action="store_true", help="only the validation measurement")
    parser.add_argument("--skip-validation", action="store_true", help="only the latency measurement")
    return parser


def run(args: argparse.Namespace) -> int:
    from schemas.settings import load_settings

    root = load_settings().state_path / "bench" / "data-quality"
    root.mkdir(parents=True, exist_ok=True)
    say = Progress("bench-dq")
    validation: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    crashed = False
    if not args.skip_validation:
        try:
            validation = measure_validation(root / "data", args, say)
        except Exception as exc:  # noqa: BLE001 - reported; the latency phase still runs
            say(f"VALIDATION crashed: {exc!r}")
            crashed = True
    if not args.skip_latency:
        try:
            latency = measure_latency(root, args, say)
        except Exception as exc:  # noqa: BLE001 - reported below; the exit status says it crashed
            say(f"LATENCY crashed: {exc!r}")
            crashed = True
    print()
    if validation is not None:
        report_validation(validation, args.repeat)
    if latency is not None:
        report_latency(latency, args.spacing)
        (root / "result-latency.json").write_text(json.dumps(latency, indent=2))
    print("Times never fail the benchmark; the exit status says only whether something crashed.")
    return 1 if crashed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 1000 or args.repeat < 1 or args.events < 1 or args.spacing < 0:
        raise SystemExit("--rows needs at least 1000, --repeat and --events at least 1, --spacing ≥ 0")
    # Ctrl-C and SIGTERM stop what was started, in order (Stack.close), then exit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
