"""A flow-run process that exists before its run: `python -m infra.warm_engine [--profile NAME]`.

Starting a Python process that imports Prefect and the flows takes 3-5 s on a small machine, longer
than the 2 s a run may take from event to Running. The worker therefore keeps a few of these
processes started ahead of time. Each one imports everything its profile names, then blocks on stdin
until the worker hands it exactly one job (a JSON line naming the flow run) and runs it the way
`python -m prefect.engine` does. An empty stdin means the worker no longer needs it, and it exits 0.

Profiles: `plain` (Prefect, the flows, the register) serves every flow; `gx` adds Great Expectations,
which the data-quality flow needs and which costs another 5-10 s of CPU. The worker keeps few `gx`
processes and hands them data-quality runs only (`infra.warm_worker.FLOW_PROFILES`).

Two lines on stdout (the worker's log), for the benchmark and for anyone asking why a run was slow:
`aims-warm-ready {json}` once the imports are done, and `aims-warm-run {json}` after the run, saying
whether Great Expectations was loaded before the run started and, if the run had to import it, how
long that took.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.abc
import importlib.machinery
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict

# Modules a flow run may need that are slow to import; loading them while no run waits is the point.
PRELOAD = (
    "prefect.flow_engine",
    "prefect.engine",
    "infra.deployments",
    "connectors.register.store",
    "alembic.runtime.migration",
    "alembic.script",
)
GX_PACKAGE = "great_expectations"
# Not in every spare: 5-12 s more per spare saturated two cores when runs came every few seconds.
PROFILES: dict[str, tuple[str, ...]] = {
    "plain": PRELOAD,
    "gx": (*PRELOAD, "pandas", "pyarrow.parquet", GX_PACKAGE, "connectors.great_expectations"),
}
READY_LINE = "aims-warm-ready"
RUN_LINE = "aims-warm-run"


class WarmJob(BaseModel):
    """What the worker sends down the pipe: one line of JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow_run_id: UUID
    flow_name: str
    env: dict[str, str] = {}


class FirstImportTimer(importlib.abc.MetaPathFinder):
    """How long the first import of one package takes, when a run (not the preload) pays for it.

    It finds the package through the other finders and times only the package's own module
    execution, which imports its submodules; the spec and loader are the ones Python would use.
    """

    def __init__(self, package: str) -> None:
        self.package = package
        self.seconds: float | None = None

    def install(self) -> None:
        if self.package not in sys.modules:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.package:
            return None
        self.uninstall()  # once only, and the search below must not come back here
        spec = next((s for f in sys.meta_path if (s := _spec_from(f, fullname, path, target))), None)
        if spec is not None and spec.loader is not None:
            self._time(spec.loader)
        return spec

    def _time(self, loader: importlib.abc.Loader) -> None:
        # Shadowing the method on this one loader instance leaves its class (resources…) untouched.
        execute = loader.exec_module

        def timed(module: ModuleType) -> None:
            started = time.perf_counter()
            try:
                execute(module)
            finally:
                self.seconds = time.perf_counter() - started
                del loader.exec_module

        loader.exec_module = timed  # type: ignore[method-assign]


def _spec_from(
    finder: Any, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    find = getattr(finder, "find_spec", None)  # legacy finders have only find_module
    if find is None:
        return None
    return cast("importlib.machinery.ModuleSpec | None", find(fullname, path, target))


def preload(profile: str) -> None:
    for module in PROFILES[profile]:
        importlib.import_module(module)
    from flows.runtime import install
    from infra.deployments import all_flows
    from infra.resources import flow_runtime

    all_flows()
    try:
        # The run's resources, built once: the register is opened and its schema checked now, not
        # while a run waits.
        install(flow_runtime())
    except Exception as exc:  # noqa: BLE001 - the run builds them again and fails visibly if it must
        print(f"warm flow-run process: the register is not available yet: {exc}", file=sys.stderr)


def run_job(job: WarmJob) -> None:
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import flow_run_logger, load_flow_run, run_flow

    from flows.dashboard.hook import after_run, register_head
    from flows.runtime import current, install, installed
    from infra.deployments import all_flows
    from infra.resources import flow_runtime

    # Prefect's settings were read at import; only plain variables (and the run id) can change here.
    os.environ.update(job.env)
    os.environ["PREFECT__FLOW_RUN_ID"] = str(job.flow_run_id)
    flows = {f.name: f for f in all_flows()}
    if not installed():
        install(flow_runtime())
    with handle_engine_signals(job.flow_run_id):
        flow_run = load_flow_run(flow_run_id=job.flow_run_id)
        logger = flow_run_logger(flow_run=flow_run)
        flow = flows.get(job.flow_name)
        if flow is None:
            logger.error("flow %r is not one of this worker's flows: %s", job.flow_name, sorted(flows))
            raise SystemExit(1)
        # The dashboard is rebuilt once the run has ended, if it changed the register (issue 22).
        head, failed = register_head(current()), True
        try:
            # Prefect's own engine passes this adapter too; its annotation says Logger.
            result = run_flow(flow, flow_run=flow_run, error_logger=cast("logging.Logger", logger))
            if asyncio.iscoroutine(result):
                asyncio.run(result)
            failed = False
        finally:
            after_run(current(), head, job.flow_name, failed=failed)


def say_ready() -> None:
    """Tell the worker the imports are done (a byte on the pipe it passed), so it prefers this process."""
    fd = os.environ.pop("AIMS_WARM_READY_FD", None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"1")
        os.close(int(fd))
    except OSError:
        pass  # the worker is gone or stopped listening; stdin will tell


def report(line: str, **fields: Any) -> None:
    """One line in the worker's log, which every flow-run process shares: written in one call, line
    and newline together. print() writes the newline apart, and unbuffered (PYTHONUNBUFFERED) another
    process's line got between the two, gluing itself to this one (seen in the worker test)."""
    sys.stdout.write(f"{line} {json.dumps({'pid': os.getpid(), **fields})}\n")
    sys.stdout.flush()


def run_reported(job: WarmJob, profile: str, waited: float) -> None:
    """The job, then one line on what it cost: whether Great Expectations was already loaded."""
    preloaded = GX_PACKAGE in sys.modules
    timer = FirstImportTimer(GX_PACKAGE)
    timer.install()
    started = time.time()
    try:
        run_job(job)
    finally:
        timer.uninstall()
        report(
            RUN_LINE,
            flow_run_id=str(job.flow_run_id),
            flow_name=job.flow_name,
            profile=profile,
            gx_preloaded=preloaded,
            gx_imported_in_run=not preloaded and GX_PACKAGE in sys.modules,
            gx_import_seconds=timer.seconds,
            waited_seconds=round(waited, 3),
            run_seconds=round(time.time() - started, 3),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.warm_engine")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="plain")
    profile = parser.parse_args(argv).profile
    started = time.perf_counter()
    preload(profile)
    report(READY_LINE, profile=profile, preload_seconds=round(time.perf_counter() - started, 3))
    say_ready()
    ready_at = time.perf_counter()
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    run_reported(WarmJob.model_validate_json(line), profile, time.perf_counter() - ready_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
