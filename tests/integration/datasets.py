"""Datasets and systems for the data-quality and risk integration tests: loan files, tables and events.

Not a test module: the data-quality flow and risk assessment tests share it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
import yaml

from schemas.events import DataChangedEvent
from schemas.records import AISystem, ModelVersion
from tests.factories import SOURCE
from tests.support import FILES_SOURCE, SessionStack


def write_loans(path: Path, *, every: int = 1, income_factor: int = 1, null_ids: int = 0) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["applicant_id", "income", "amount", "term_months", "approved"])
        for i in range(0, 500, every):
            applicant = "" if i < null_ids else i
            writer.writerow(
                [applicant, (20_000 + 137 * i) * income_factor, 1_000 + 53 * i, 12 + 12 * (i % 5), i % 3 != 0]
            )
    return path


def data_change(dataset: str, version: str, path: Path) -> DataChangedEvent:
    """A new version of `dataset`: the file at `path`, appended to (what a burst of changes is made of)."""
    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"burst-{uuid.uuid4().hex[:10]}",
            "source": SOURCE,  # a producer of the platform, not the system: its events come unsigned
            "data": {
                "dataset_id": dataset,
                "version": version,
                "change_kind": "appended",
                "location": {"uri": path.as_uri()},
            },
        }
    )


def with_suite_of(stack: SessionStack, dataset: str, like: str = "loan-applications") -> None:
    """`dataset` checked with the expectations of the suite `like`, in the session's suites folder."""
    suite = yaml.safe_load((stack.suites_dir / f"{like}.yaml").read_text())
    (stack.suites_dir / f"{dataset}.yaml").write_text(yaml.safe_dump({**suite, "dataset": dataset}))


def loan_frame(
    rows: int = 500, *, null_ids: int = 0, bad_terms: int = 0, neg_income: int = 0
) -> pd.DataFrame:
    """The rows `write_loans` writes, as a frame; the first rows spoiled as asked."""
    return pd.DataFrame(
        {
            "applicant_id": pd.array([None if i < null_ids else i for i in range(rows)], dtype="Int64"),
            "income": [-1 if i < neg_income else 20_000 + 137 * i for i in range(rows)],
            "amount": [1_000 + 53 * i for i in range(rows)],
            "term_months": [18 if i < bad_terms else 12 + 12 * (i % 5) for i in range(rows)],
            "approved": [i % 3 != 0 for i in range(rows)],
        }
    )


def write_table(url: str, table: str, frame: pd.DataFrame) -> dict[str, str]:
    """`frame` as a table of the database at `url`; the event's location of it."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        frame.to_sql(table, engine, index=False, if_exists="replace")
    finally:
        engine.dispose()
    return {"kind": "sql", "url": url, "table": table}


def sql_source_id(url: str) -> str:
    """The data source a test declares for a database URL (one per URL)."""
    return "sql-" + hashlib.sha256(url.encode()).hexdigest()[:12]


def session_policy() -> tuple[Path, dict[str, Any]]:
    path = Path(os.environ["AIMS_POLICY_FILE"])
    return path, yaml.safe_load(path.read_text())


def declare_sql_source(url: str) -> str:
    """A SQL data source for `url` in the session's policy (each flow run reads it anew); its id."""
    source = sql_source_id(url)
    path, policy = session_policy()
    if source not in policy.setdefault("data_sources", {}):
        policy["data_sources"][source] = {"kind": "sql", "url": url, "credentials": "dq_password"}
        path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return source


def files_root() -> Path:
    """The root of the session's files data source: every test's tmp_path is under it."""
    return Path(session_policy()[1]["data_sources"][FILES_SOURCE]["roots"][0])


def named(where: Path | dict[str, str]) -> dict[str, str]:
    """What an event names for a file (in the session's files source) or a table (in the SQL source
    declared for its URL), as the register keeps it."""
    if isinstance(where, Path):
        return {"source": FILES_SOURCE, "path": str(where.relative_to(files_root()))}
    if "source" in where:  # named as it is, declared or not
        return where
    if "uri" in where:  # the old form, as a producer not yet moved sends it
        return {"location": where}  # type: ignore[dict-item]
    return {"source": declare_sql_source(where["url"]), "table": where["table"]}


def changed(dataset: str, version: str, where: Path | dict[str, str]) -> DataChangedEvent:
    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"dq-{uuid.uuid4().hex[:10]}",
            "source": "urn:aims:tests:dq",
            "data": {
                "dataset_id": dataset,
                "version": version,
                "change_kind": "appended",
                **named(where),
            },
        }
    )


def own_suite(stack: SessionStack, dataset: str) -> None:
    """The shipped loan-applications suite under this test's dataset name."""
    suite = yaml.safe_load((stack.suites_dir / "loan-applications.yaml").read_text())
    suite["dataset"] = dataset
    (stack.suites_dir / f"{dataset}.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))


def trained_on(stack: SessionStack, system: str, dataset: str, tier: str) -> None:
    """An AI system in the inventory whose model version 1 was trained on `dataset`."""
    with stack.register().unit_of_work("test") as uow:
        uow.systems.add(AISystem(name=system, owner="risk", intended_use="loans", risk_tier=tier))
        uow.model_versions.add(
            ModelVersion(
                system=system,
                model_name="gbm",
                version="1",
                source_uri="m:/1",
                submitted_by="ana",
                datasets=[f"{dataset}@v1"],
            )
        )
