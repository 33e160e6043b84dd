"""How fast a register command answers: `aims systems` against the floor of `python -c pass`.

Issue 18 asks a register command to answer in 0.3 s or less. This migrates a throwaway SQLite
register in a temporary state folder, then runs, interleaved so that both see the same load:

- floor: `python -c pass`, the interpreter starting and stopping;
- imports: `python -c "import sqlalchemy, pydantic, …"`, what any register command must import;
- command: `python -m aims systems` on that register (a few systems in it, so rows are read).

Each is a fresh process, timed from spawn to exit. Prints medians, p90, the ratio of the command's
median to the floor's, and whether the median meets 0.3 s. It never fails on time: the machine is
shared, and its load average is printed with the numbers.

With `--baseline DIR` it also runs `aims systems` from another checkout (e.g. a worktree of the
commit before a change) in the same rounds, so a before/after comparison shares the machine's load.

    python -m bench.cli_startup [--runs 21] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Progress, load_average

TARGET_SECONDS = 0.3
ROOT = Path(__file__).resolve().parent.parent
# What `aims systems` cannot avoid: the register's engine and the records it validates rows into.
IMPORTS = "import sqlalchemy, pydantic, sqlalchemy.dialects.sqlite"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def clean_env(state: Path, root: Path = ROOT) -> dict[str, str]:
    """This environment without the AIMS_/Kafka/Prefect settings of whoever runs it, on `state`,
    importing the code of `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMS_", "KAFKA_", "PREFECT_"))}
    env["AIMS_STATE_DIR"] = str(state)
    env["AIMS_POLICY_FILE"] = str(root / "policy" / "aims-policy.yaml")
    env["PYTHONPATH"] = str(root)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return elapsed


def seed(state: Path) -> None:
    """A migrated register with a few AI systems, written through the register as the flows do."""
    sys.path.insert(0, str(ROOT))
    from connectors.register import open_register
    from schemas.records import AISystem
    from schemas.settings import load_settings

    register = open_register(load_settings(state_dir=state))
    with register.unit_of_work("bench:cli-startup") as uow:
        for n in range(5):
            uow.systems.add_if_absent(
                AISystem(
                    name=f"bench-system-{n}", owner="bench@example.com", intended_use="start-up benchmark"
                )
            )
    register.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="runs of each (default %(default)s)")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose `aims systems` runs in the same rounds"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")
    if args.baseline is not None and not (args.baseline / "aims" / "cli.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of this project (no aims/cli.py)")
    say = Progress("cli-startup")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="aims-bench-cli-") as tmp:
        work = Path(tmp)
        state = work / "state"
        env = clean_env(state)
        say(f"seeding a migrated SQLite register in {state}…")
        seed(state)
        commands = {
            "floor": ([python, "-c", "pass"], env),
            "imports": ([python, "-c", IMPORTS], env),
            "aims systems": ([python, "-m", "aims", "systems"], env),
        }
        if args.baseline is not None:
            baseline_env = clean_env(state, args.baseline.resolve())
            commands["baseline"] = ([python, "-m", "aims", "systems"], baseline_env)
        # One unmeasured run each: bytecode is compiled and files are cached, as on any second run.
        for command, command_env in commands.values():
            timed(command, command_env, work)
        load_before = load_average()
        times: dict[str, list[float]] = {name: [] for name in commands}
        say(f"{args.runs} runs of each, interleaved…")
        for _ in range(args.runs):
            for name, (command, command_env) in commands.items():
                times[name].append(timed(command, command_env, work))
        load_after = load_average()

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nload average {load_before} → {load_after} ({os.cpu_count()} cores); {args.runs} runs each")
    print(f"{'':14} {'median':>9} {'p90':>9}")
    for name, values in times.items():
        print(f"{name:14} {medians[name] * 1000:7.0f}ms {percentile(values, 0.9) * 1000:7.0f}ms")
    command = medians["aims systems"]
    print(f"\naims systems / python -c pass: {command / medians['floor']:.1f}×")
    print(f"aims systems / its imports ({IMPORTS!r}): {command / medians['imports']:.2f}×")
    if "baseline" in medians:
        print(f"baseline ({args.baseline}) / aims systems: {medians['baseline'] / command:.2f}×")
    verdict = "meets" if command <= TARGET_SECONDS else "does not meet"
    print(f"aims systems median {command:.3f} s {verdict} the {TARGET_SECONDS} s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
