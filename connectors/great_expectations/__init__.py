"""Great Expectations (GX 1.x) behind a small interface: run suites, draft baselines, profile datasets.

Flows depend on `DataQualityEngine`; `GxEngine` is the real adapter. Importing this module is cheap:
GX (about 5 s), pandas and numpy are imported inside the methods that need them, and nothing is
created until a method runs (then one in-memory GX context per engine, reused).

Where the data is read:
- a CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`) file, by local path or `file://` URI, is
  read with pandas and checked by GX's pandas engine;
- a SQL table is checked by GX's SQLAlchemy engine, so every expectation runs as SQL in the database
  (aggregates, and samples of at most 20 unexpected values): the table is never loaded into Python.
  `profile` and `baseline` use aggregate and window queries too.

Credentials: `SqlTableLocation.url` never carries a password. The `password` given to `GxEngine`
(the setting `dq_password`, AIMS_DQ_PASSWORD in the environment) is merged into every non-SQLite
URL that has none, when a check runs. Messages and results show the URL with `***`, and the password
is scrubbed from any error text GX or the driver produce.

Data that cannot be read raises `DataUnavailable`, saying what to fix; `retryable` tells a transient
database failure (the server down or unreachable, a query failing midway) from a bad location: a
missing or unreadable file, an unknown table, and a URL that can never work (no such host, database
or user, a refused password, a driver not installed) are not retryable.

A suite whose expectation GX cannot evaluate (a missing column, a type mismatch) is not an error:
that expectation fails, with the reason in `exception`.

The package: `engine` (the interface and the adapter), `sources` (files and SQL tables), `profiling`
(column facts and profiles), `baselines` (drafted suites), `suites` (suite files checked against
GX), `data_docs`, and `common`. Only what callers use is exported here.
"""

from connectors.great_expectations.common import DataUnavailable
from connectors.great_expectations.engine import DataQualityEngine, GxEngine
from connectors.great_expectations.suites import check_expectation, load_suite

__all__ = ["DataQualityEngine", "DataUnavailable", "GxEngine", "check_expectation", "load_suite"]
