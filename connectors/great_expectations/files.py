"""Reading one CSV or Parquet file once, within its source's caps, hashing what is on disk on the way.

One pass per check: the bytes read for the frame are the bytes hashed (SHA-256 and size, A.7.5
provenance), so the check never reads a file twice and the hash is of what was checked. Every cap
stops the read where it is crossed, before pandas holds more than the cap:
- bytes on disk: the file's size before opening, and the bytes counted as they are read;
- decompressed bytes: counted between gzip and the CSV parser, so a small .csv.gz that expands
  without bound stops at the cap; for Parquet, the uncompressed size its footer declares;
- rows: the parser is asked for one row more than the cap; Parquet's footer says its row count;
- columns: counted once parsed (the text they came from is within the decompressed cap).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from connectors.great_expectations.common import DataUnavailable, FileTarget, TooLarge, first_line

if TYPE_CHECKING:
    import pandas as pd

_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}

_CHUNK = 1 << 20


@dataclass
class FileData:
    """A file as one check reads it: the frame, and the hash and size of the bytes it came from."""

    frame: pd.DataFrame
    display: str
    fmt: str
    size: int
    sha256: str


def file_format(path: Path) -> str:
    """csv or parquet, from the name; DataUnavailable for any other kind of file."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if suffixes and suffixes[-1] == ".gz" and (len(suffixes) < 2 or suffixes[0] != ".csv"):
        fmt = None
    if fmt is None:
        raise DataUnavailable(
            str(path),
            f"unsupported file type ({path.suffix or 'no extension'}): publish CSV (.csv, .csv.gz) "
            "or Parquet (.parquet, .pq)",
        )
    return fmt


class _Counted(io.RawIOBase):
    """A readable stream that counts (and optionally hashes) what passes, and stops past `cap`."""

    def __init__(self, inner: IO[bytes], cap: int, over: TooLarge, digest: Any = None) -> None:
        self._inner = inner
        self._cap = cap
        self._over = over
        self._digest = digest
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        # At most one byte past the cap is ever asked for: enough to know the cap was crossed.
        want = min(len(buffer), self._cap - self.count + 1)
        data = self._inner.read(want)
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self._digest is not None:
            self._digest.update(data)
        if self.count > self._cap:
            raise self._over
        return n


def read_file(target: FileTarget) -> FileData:
    """The file's frame, hash and size, read once; DataUnavailable (or TooLarge) saying what to fix."""
    path, limits = target.path, target.limits
    display = str(path)
    fmt = file_format(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DataUnavailable(display, "file not found; check the path in the event") from None
    except PermissionError:
        raise DataUnavailable(display, "permission denied; make the file readable by the worker") from None
    except OSError as exc:  # a symlink left in the resolved path (ELOOP), a device, …
        raise DataUnavailable(display, f"cannot be opened ({exc.strerror})") from None
    try:
        _still_inside(fd, target)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (O_NONBLOCK: the open did not hang)
            raise DataUnavailable(display, "not a file; the path must name one CSV or Parquet file")
        if info.st_size > limits.max_bytes:
            raise TooLarge(display, f"{info.st_size:,} bytes on disk", limits.max_bytes, "max_bytes")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        digest = hashlib.sha256()
        over = TooLarge(
            display, f"more than {limits.max_bytes:,} bytes on disk", limits.max_bytes, "max_bytes"
        )
        disk = _Counted(fh, limits.max_bytes, over, digest)
        if fmt == "csv":
            frame = _read_csv(disk, path, target, display)
        else:
            frame = _read_parquet(disk, target, display)
        while disk.read(_CHUNK):  # the rest of the file (gzip's trailer), so the hash covers it all
            pass
    frame.columns = [str(c) for c in frame.columns]
    return FileData(frame=frame, display=display, fmt=fmt, size=disk.count, sha256=digest.hexdigest())


def _still_inside(fd: int, target: FileTarget) -> None:
    """The opened file is under its root: a component swapped for a symlink after resolving is caught."""
    if target.root is None:
        return
    link = Path(f"/proc/self/fd/{fd}")
    if not link.exists():  # not Linux: O_NOFOLLOW guarded the last component
        return
    if not Path(os.readlink(link)).is_relative_to(target.root):
        raise DataUnavailable(str(target.path), "the file moved outside its data source's root while opening")


def _read_csv(disk: _Counted, path: Path, target: FileTarget, display: str) -> pd.DataFrame:
    import pandas as pd

    limits = target.limits
    raw: Any = io.BufferedReader(disk, _CHUNK)
    if path.suffix.lower() == ".gz":
        raw = gzip.GzipFile(fileobj=raw, mode="rb")
    cap = limits.max_decompressed_bytes
    over = TooLarge(display, f"more than {cap:,} bytes decompressed", cap, "max_decompressed_bytes")
    text = io.BufferedReader(_Counted(raw, limits.max_decompressed_bytes, over), _CHUNK)
    try:
        # One row more than the cap tells "over the cap" without reading the rest.
        frame = pd.read_csv(text, nrows=limits.max_rows + 1)
    except pd.errors.EmptyDataError:
        raise DataUnavailable(display, "the CSV file is empty; it needs at least a header row") from None
    except (OSError, ValueError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        if isinstance(exc.__context__, TooLarge):
            raise exc.__context__ from None
        raise DataUnavailable(
            display, f"cannot be read as CSV: {first_line(exc)}; fix the file or its producer"
        ) from None
    if len(frame) > limits.max_rows:
        raise TooLarge(display, f"more than {limits.max_rows:,} rows", limits.max_rows, "max_rows")
    # After the parse, within max_decompressed_bytes: a wide header is no larger than its bytes.
    if len(frame.columns) > limits.max_columns:
        raise TooLarge(display, f"{len(frame.columns):,} columns", limits.max_columns, "max_columns")
    return frame


def _read_parquet(disk: _Counted, target: FileTarget, display: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    limits = target.limits
    buffer = disk.read()  # within max_bytes: `disk` stops past it
    try:
        parquet = pq.ParquetFile(pa.BufferReader(buffer))
        meta = parquet.metadata
        if meta.num_columns > limits.max_columns:
            raise TooLarge(display, f"{meta.num_columns:,} columns", limits.max_columns, "max_columns")
        if meta.num_rows > limits.max_rows:
            raise TooLarge(display, f"{meta.num_rows:,} rows", limits.max_rows, "max_rows")
        expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if expanded > limits.max_decompressed_bytes:
            raise TooLarge(
                display,
                f"{expanded:,} bytes uncompressed",
                limits.max_decompressed_bytes,
                "max_decompressed_bytes",
            )
        return parquet.read().to_pandas()
    except (OSError, ValueError, pa.ArrowException) as exc:  # ArrowInvalid is a ValueError
        raise DataUnavailable(
            display, f"cannot be read as Parquet: {first_line(exc)}; fix the file or its producer"
        ) from None
