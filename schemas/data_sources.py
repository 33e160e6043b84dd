"""The data sources a data-changed event may name, and the size caps on reading them (policy).

Trust boundary (DESIGN.md): an event names *what* changed — a source id and a path or a table in it —
never *where* to connect with *which* credentials. The policy maps each id to a location: files under
allow-listed roots, or one SQL database URL, whose password comes from the setting the source names
and goes to that URL only. Anything an event names outside these is refused before a file is opened,
hashed or a connection made (`flows/data_quality/sources.py` resolves events against this).

Sizes are capped per source, each cap defaulting to `data_quality.limits`: a check that would read
more fails as "too large" and stops reading, so a small compressed file cannot expand without bound.
These models read nothing: whether a root exists is known only where the check runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StrictInt, field_validator

from schemas.policy_base import PolicyModel

# Like an approver group's name: it appears in events, tags and messages.
SourceId = Annotated[
    str,
    Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Lowercase letters, digits, '.', '-', '_'."),
]

# Settings that may hold a data source's password: data-quality secrets only, so that a policy
# cannot hand the Jira token or the register's URL to a database.
CREDENTIAL_SETTINGS = ("dq_password",)

# SQLAlchemy's URL grammar: user names stop at ':' or '/', passwords run to the '@'.
_URL_PASSWORD = re.compile(r"^[\w+.-]+://[^:/@]*:[^@]*@")

MIB = 1024 * 1024


class SizeLimits(PolicyModel):
    """How much one check may read; over any cap the check fails as "too large" and reading stops."""

    max_bytes: StrictInt = Field(
        256 * MIB, ge=1, le=1 << 40, description="Bytes of a file on disk (compressed, for .csv.gz)."
    )
    max_decompressed_bytes: StrictInt = Field(
        1024 * MIB,
        ge=1,
        le=1 << 40,
        description="Bytes after decompression: the CSV text of a .csv.gz, the uncompressed Parquet data.",
    )
    max_rows: StrictInt = Field(5_000_000, ge=1, le=10**10, description="Rows of a file or a table.")
    max_columns: StrictInt = Field(1_000, ge=1, le=100_000, description="Columns of a file or a table.")


class LimitOverrides(PolicyModel):
    """A source's own caps; each one left out is `data_quality.limits`'s."""

    max_bytes: StrictInt | None = Field(None, ge=1, le=1 << 40)
    max_decompressed_bytes: StrictInt | None = Field(None, ge=1, le=1 << 40)
    max_rows: StrictInt | None = Field(None, ge=1, le=10**10)
    max_columns: StrictInt | None = Field(None, ge=1, le=100_000)

    def over(self, defaults: SizeLimits) -> SizeLimits:
        return defaults.model_copy(update=self.model_dump(exclude_none=True))


class FileSource(PolicyModel):
    """CSV (.csv, .csv.gz) and Parquet (.parquet, .pq) files under one or more folders."""

    kind: Literal["files"] = Field(description="Files under `roots`.")
    roots: tuple[Path, ...] = Field(
        min_length=1,
        max_length=20,
        description="Folders an event's path is taken relative to (relative roots: to the working "
        "directory of the worker). Symlinks are followed, and a path that ends outside its root is "
        "refused. Never the state folder, nor a folder containing it.",
    )
    description: str | None = Field(None, max_length=500)
    owner: str | None = Field(
        None,
        min_length=1,
        max_length=320,
        pattern=r"^\S(.*\S)?$",
        description="Who owns the datasets read from this source (an e-mail address, as `people` lists "
        "it): asked to review each drafted baseline suite (`aims dq accept-baseline`), in Slack when set up.",
    )
    limits: LimitOverrides = Field(default_factory=LimitOverrides, description="This source's caps.")

    @field_validator("roots")
    @classmethod
    def _real_folders(cls, roots: tuple[Path, ...]) -> tuple[Path, ...]:
        for root in roots:
            if str(root).strip() in ("", ".") or root == Path("/"):
                raise ValueError(f"{str(root)!r} is not a root: name a folder that holds only data")
        return roots


class SqlSource(PolicyModel):
    """Tables of one SQL database, reached with one SQLAlchemy URL."""

    kind: Literal["sql"] = Field(description="Tables of the database at `url`.")
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="SQLAlchemy URL without a password, e.g. postgresql+psycopg://dq_reader@db/warehouse.",
    )
    credentials: str | None = Field(
        None,
        description="The setting that holds this database's password (dq_password, AIMS_DQ_PASSWORD in "
        "the environment); it is given to this URL only. None: the URL needs no password.",
    )
    tables: tuple[str, ...] = Field(
        (), max_length=10_000, description="Tables events may name (schema.table); empty: any table."
    )
    description: str | None = Field(None, max_length=500)
    owner: str | None = Field(
        None,
        min_length=1,
        max_length=320,
        pattern=r"^\S(.*\S)?$",
        description="Who owns the datasets read from this source (an e-mail address, as `people` lists "
        "it): asked to review each drafted baseline suite (`aims dq accept-baseline`), in Slack when set up.",
    )
    limits: LimitOverrides = Field(default_factory=LimitOverrides, description="This source's caps.")

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        # The policy is in git and in evidence: a password in it would be one more copy of a secret.
        if _URL_PASSWORD.match(url) or "password=" in url.lower():
            raise ValueError("the URL carries a password: name the setting that holds it in `credentials`")
        return url

    @field_validator("credentials")
    @classmethod
    def _a_credential_setting(cls, name: str | None) -> str | None:
        if name is not None and name not in CREDENTIAL_SETTINGS:
            raise ValueError(
                f"{name!r} is not a data-source credential setting: use one of {CREDENTIAL_SETTINGS}"
            )
        return name


DataSource = Annotated[FileSource | SqlSource, Field(discriminator="kind")]
