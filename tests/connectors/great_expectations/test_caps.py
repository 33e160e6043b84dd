"""Size caps per source (issue 19, item 2): over a cap the read stops with "too large"; a file is read
once per check, and the hash is of the bytes read."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from connectors.great_expectations import DataUnavailable, GxEngine
from connectors.great_expectations.common import FileTarget, SqlTarget, TooLarge
from schemas.data_sources import SizeLimits
from tests.connectors.great_expectations.data import loans, write_sqlite
from tests.connectors.great_expectations.loan_suites import PASSING


def _csv(path: Path, rows: int, columns: int = 3) -> Path:
    header = ",".join(f"c{i}" for i in range(columns))
    body = "".join(",".join(str(r) for _ in range(columns)) + "\n" for r in range(rows))
    path.write_text(header + "\n" + body)
    return path


@pytest.mark.parametrize(
    ("limits", "setting"),
    [
        (SizeLimits(max_bytes=100), "max_bytes"),
        (SizeLimits(max_rows=99), "max_rows"),
        (SizeLimits(max_columns=2), "max_columns"),
        (SizeLimits(max_decompressed_bytes=500), "max_decompressed_bytes"),
    ],
)
def test_a_csv_over_a_cap_is_too_large(
    engine: GxEngine, tmp_path: Path, limits: SizeLimits, setting: str
) -> None:
    path = _csv(tmp_path / "data.csv", rows=100)
    with pytest.raises(TooLarge) as caught:
        engine.profile(FileTarget(path, limits))
    assert caught.value.reason.startswith("too large: ") and setting in caught.value.reason
    assert not caught.value.retryable


def test_a_csv_at_the_caps_is_read(engine: GxEngine, tmp_path: Path) -> None:
    path = _csv(tmp_path / "data.csv", rows=100)
    limits = SizeLimits(max_bytes=path.stat().st_size, max_rows=100, max_columns=3)
    assert engine.profile(FileTarget(path, limits)).rows == 100


def test_a_gzip_bomb_stops_at_the_decompressed_cap(engine: GxEngine, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb") as fh:
        fh.write(b"a,b\n" + b"1,2\n" * 2_000_000)  # 8 MB of text in a few kilobytes
    with pytest.raises(TooLarge, match="more than 100,000 bytes decompressed"):
        engine.profile(FileTarget(bomb, SizeLimits(max_decompressed_bytes=100_000)))


def test_parquet_caps_are_read_from_its_footer(engine: GxEngine, tmp_path: Path) -> None:
    path = tmp_path / "loans.parquet"
    loans(400).to_parquet(path, index=False)
    for limits, said in (
        (SizeLimits(max_rows=399), "400 rows"),
        (SizeLimits(max_columns=7), "8 columns"),
        (SizeLimits(max_decompressed_bytes=1_000), "bytes uncompressed"),
        (SizeLimits(max_bytes=1_000), "bytes on disk"),
    ):
        with pytest.raises(TooLarge, match=said):
            engine.profile(FileTarget(path, limits))


def test_sql_tables_are_capped_on_rows_and_columns(engine: GxEngine, tmp_path: Path) -> None:
    table = write_sqlite(loans(400), tmp_path / "loans.db")
    for limits, said in ((SizeLimits(max_rows=399), "400 rows"), (SizeLimits(max_columns=7), "8 columns")):
        with pytest.raises(TooLarge, match=said):
            engine.validate(SqlTarget(url=table.url, table=table.table, limits=limits), PASSING)


def test_one_read_serves_the_whole_check_and_its_hash(
    engine: GxEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connectors.great_expectations.engine as engine_module

    path = tmp_path / "loans.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(loans(200).to_csv(index=False).encode())
    reads: list[Path] = []
    real = engine_module.read_file
    monkeypatch.setattr(engine_module, "read_file", lambda target: reads.append(target.path) or real(target))
    with engine.read(FileTarget(path)) as data:
        engine.baseline(data, dataset="loans")
        engine.validate(data, PASSING)
        engine.profile(data)
    assert reads == [path]
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # type: ignore[union-attr]
    assert data.size == path.stat().st_size  # type: ignore[union-attr]


def test_a_fifo_or_a_symlink_is_not_opened_as_a_file(engine: GxEngine, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataUnavailable, match="not a file"):
        engine.profile(FileTarget(fifo))  # would block forever if opened for reading in earnest
    link = tmp_path / "link.csv"
    link.symlink_to(_csv(tmp_path / "real.csv", rows=3))
    with pytest.raises(DataUnavailable, match="cannot be opened"):
        engine.profile(FileTarget(link))  # the resolver hands over real paths; a link is a race
