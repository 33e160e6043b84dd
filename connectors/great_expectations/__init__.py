"""Great Expectations (GX 1.x) behind a small interface: run suites, draft baselines, profile datasets.

Flows depend on `DataQualityEngine`; `GxEngine` is the real adapter. Importing this module is cheap:
GX (about 5 s), pandas and numpy are imported inside the methods that need them, and nothing is
created until a method runs (then one in-memory GX context per engine, reused).

What is read is a target, resolved from an event's data source by `flows/data_quality/sources.py`
(events never name locations of their own): `FileTarget` or `SqlTarget`, each with its source's caps.
- a CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`) file is read once per check (`read`),
  within the caps on bytes on disk, decompressed bytes, rows and columns (`files.py`), hashed on the
  way, and checked by GX's pandas engine;
- a SQL table is checked by GX's SQLAlchemy engine, so every expectation runs as SQL in the database
  (aggregates, and samples of at most 20 unexpected values): the table is never loaded into Python.
  `profile` and `baseline` use aggregate and window queries too.

Credentials: the engine holds none. A `SqlTarget` carries the password of its own source (the
setting the policy names for it), merged into that source's URL only. Messages and results show the
URL with `***`, and the password is scrubbed from any error text GX or the driver produce.

Data that cannot be read raises `DataUnavailable`, saying what to fix; `retryable` tells a transient
database failure (the server down or unreachable, a query failing midway) from a bad location: a
missing or unreadable file, an unknown table, and a URL that can never work (no such host, database
or user, a refused password, a driver not installed) are not retryable.

A suite whose expectation GX cannot evaluate (a missing column, a type mismatch) is not an error:
that expectation fails, with the reason in `exception`.

Over a cap, `TooLarge` (a `DataUnavailable`, not retryable) says which cap and where to raise it.

The package: `engine` (the interface and the adapter), `files` (capped reads), `sources` (SQL
tables), `profiling` (column facts and profiles), `baselines` (drafted suites), `suites` (suite files
checked against GX), `data_docs`, and `common` (targets, errors). Only what callers use is exported here.
"""

from connectors.great_expectations.common import DataUnavailable
from connectors.great_expectations.engine import DataQualityEngine, GxEngine
from connectors.great_expectations.suites import check_expectation, load_suite

__all__ = ["DataQualityEngine", "DataUnavailable", "GxEngine", "check_expectation", "load_suite"]
