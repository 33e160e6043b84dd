"""Real data-quality results, made by the check's own steps on real CSV, Parquet and SQL-table data.

Not a test module. `Bench` lays out a state folder, a suites folder, a file source (`lake`: CSV and
Parquet) and a SQL source (`warehouse`: a SQLite database) with an owner, writes a policy file that
maps the OS login running the tests to two people (the owner and someone else), and checks a version
as `check-data-quality` does, minus Prefect's artifacts and Kafka: `run_expectations` → `assess` →
`record_outcome` → `remind_owner` for a provisional version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aims.login import operator_login
from tests.resources import EXAMPLE_POLICY

OWNER = "dana.owner@northwind.example"
OTHER = "omar.other@northwind.example"  # in the policy, on the same login, but not the owner


def rows(n: int = 200, *, bad: bool = False) -> dict[str, list[Any]]:
    """Loan applications: clean, or with 5 % null incomes, ages of 150 and an unknown country code."""
    countries = ["DE", "FR", "NL", "IT"]
    data: dict[str, list[Any]] = {
        "applicant_id": list(range(1, n + 1)),
        "age": [20 + (i * 7) % 50 for i in range(n)],
        "income": [float(30_000 + (i * 997) % 50_000) for i in range(n)],
        "country": [countries[i % 4] for i in range(n)],
    }
    if bad:
        for i in range(0, n, 20):
            data["income"][i] = None
        for i in range(3, n, 40):
            data["age"][i] = 150
        data["country"][7] = "ZZ"
    return data


@dataclass
class Bench:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def suites(self) -> Path:
        return self.root / "suites"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "dw.sqlite"

    @property
    def policy_file(self) -> Path:
        return self.root / "policy.yaml"

    def setup(self) -> Bench:
        for folder in (self.state, self.suites, self.lake, self.warehouse.parent):
            folder.mkdir(parents=True, exist_ok=True)
        raw = yaml.safe_load(EXAMPLE_POLICY.read_text())
        login = operator_login()
        assert login, "the tests need an OS login to prove people by"
        raw["people"] = {OWNER: {"logins": [login]}, OTHER: {"logins": [login]}}
        raw["decisions"] = {**raw.get("decisions", {}), "cli_any_login": False}
        raw["data_sources"] = {
            "lake": {"kind": "files", "roots": [str(self.lake)], "owner": OWNER},
            "warehouse": {"kind": "sql", "url": f"sqlite:///{self.warehouse}", "owner": OWNER},
        }
        self.policy_file.write_text(yaml.safe_dump(raw, sort_keys=False))
        return self

    def env(self) -> dict[str, str]:
        """The variables a CLI beside this bench runs with (no broker: events stay in the outbox)."""
        return {
            "AIMS_STATE_DIR": str(self.state),
            "AIMS_POLICY_FILE": str(self.policy_file),
            "AIMS_SUITES_DIR": str(self.suites),
        }

    # -- data ---------------------------------------------------------------------------------

    def csv(self, name: str, data: dict[str, list[Any]]) -> dict[str, str]:
        import pandas as pd

        pd.DataFrame(data).to_csv(self.lake / name, index=False)
        return {"source": "lake", "path": name}

    def parquet(self, name: str, data: dict[str, list[Any]]) -> dict[str, str]:
        import pandas as pd

        pd.DataFrame(data).to_parquet(self.lake / name, index=False)
        return {"source": "lake", "path": name}

    def table(self, name: str, data: dict[str, list[Any]]) -> dict[str, str]:
        import pandas as pd
        import sqlalchemy as sa

        engine = sa.create_engine(f"sqlite:///{self.warehouse}")
        try:
            pd.DataFrame(data).to_sql(name, engine, index=False, if_exists="replace")
        finally:
            engine.dispose()
        return {"source": "warehouse", "table": name}

    # -- checking -----------------------------------------------------------------------------

    @contextmanager
    def runtime(self, chat: Any = None) -> Iterator[Any]:
        from connectors.register.store import Register
        from flows.runtime import Runtime, use
        from schemas.policy_file import load_policy
        from schemas.settings import AimsSettings

        settings = AimsSettings(state_dir=self.state, suites_dir=self.suites, policy_file=self.policy_file)
        register = Register.for_state(self.state)
        register.migrate()
        try:
            with use(
                Runtime(
                    settings=settings,
                    register=register,
                    load_policy=lambda: load_policy(self.policy_file),
                    chat=chat,
                )
            ) as runtime:
                yield runtime
        finally:
            register.close()

    def check(self, dataset: str, version: str, named: dict[str, str], chat: Any = None) -> dict[str, Any]:
        """One check of one version, as the flow runs it; the summary the flow returns."""
        from schemas.events import DataChangedEvent

        event = DataChangedEvent.model_validate(
            {
                "specversion": "1.0",
                "id": f"change-{dataset}-{version}",
                "source": "urn:pipeline",
                "data": {"dataset_id": dataset, "version": version, "change_kind": "updated", **named},
            }
        )
        return self.check_event(event, chat)

    def check_event(self, event: Any, chat: Any = None) -> dict[str, Any]:
        from flows.data_quality.check_data_quality import FLOW, assess, record_outcome, run_expectations
        from flows.data_quality.reminders import remind_owner

        with self.runtime(chat) as runtime:
            checked = run_expectations.fn(event)
            judged = assess(event, checked, runtime.policy.data_quality)
            record_outcome.fn(
                FLOW,
                event,
                judged.summary,
                judged.records,
                judged.nonconformity,
                judged.validated,
                judged.reason,
            )
            if judged.outcome is not None and judged.provisional:
                remind_owner(
                    event.data.dataset_id, event.data.version, checked["suite"], judged.outcome.suite_version
                )
            return judged.summary

    def build_docs(self, dataset: str) -> Path | None:
        from flows.data_quality.artifacts import build_docs

        with self.runtime():
            return build_docs(dataset)

    # -- what the register holds ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every table's rows, the audit log's length and the suites folder: what "writes nothing" means."""
        import sqlalchemy as sa

        from connectors.register.tables import metadata

        engine = sa.create_engine(f"sqlite:///{self.state / 'register.sqlite'}")
        try:
            with engine.connect() as conn:
                counts = {
                    name: [tuple(map(str, row)) for row in conn.execute(sa.select(table))]
                    for name, table in metadata.tables.items()
                }
        finally:
            engine.dispose()
        files = {p.name: p.read_bytes() for p in sorted(self.suites.iterdir())}
        return {"tables": counts, "suites": files}
