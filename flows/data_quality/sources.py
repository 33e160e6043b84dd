"""Which data a data-changed event names: its data source in the policy, resolved to what the engine
reads. Pure: no Prefect, no Kafka; it looks at the file system (roots, symlinks) but opens nothing.

The trust boundary of issue 19 (DESIGN.md): an event is untrusted, so it may only *name* a source the
policy declares and a path or table in it. Everything else is refused here, before anything is
opened, hashed or connected to, with a reason a person can act on:
- a source the policy does not declare, or of the other kind (a table in a files source);
- a path that is absolute, or that ends outside its root once `..` and symlinks are resolved;
- a root that is the state folder, lies inside it or contains it (the register, Prefect's database);
- a table the source does not list.
A SQL target gets its source's URL and the password of the setting that source names, never a URL
from the event: credentials go only to their own source.

Events in the old form (`location`) are accepted only when the location lies inside a declared source
(a path under one of its roots, or its very URL); they are then checked as that source, with a
notice that says what to send instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import sqlalchemy as sa

from connectors.great_expectations.common import DataUnavailable, FileTarget, SqlTarget, Target
from schemas.data_sources import DataSource, FileSource, SizeLimits, SqlSource
from schemas.envelope import printable
from schemas.payloads import DataChanged, FileLocation
from schemas.policy import Policy
from schemas.settings import AimsSettings, env_names


@dataclass(frozen=True)
class Resolved:
    target: Target
    # What the register keeps as the version's location: the source and the path or table in it.
    named: dict[str, str]
    # For an event in the old form: how to send it in the new one.
    notice: str | None = None


def named_by(data: DataChanged) -> dict[str, str]:
    """What the event named, as sent (for the record of a refused or superseded change)."""
    if data.location is not None:
        return {k: str(v) for k, v in data.location.model_dump(mode="json").items()}
    out = {"source": data.source or ""}
    out.update({"path": data.path} if data.path is not None else {"table": data.table or ""})
    return out


def resolve(data: DataChanged, policy: Policy | None, settings: AimsSettings) -> Resolved:
    """The target the event names; DataUnavailable (not retryable) saying why it is refused."""
    shown = json.dumps(named_by(data))
    if policy is None:
        raise _refused(
            data,
            f"no data sources: there is no policy file at {settings.policy_file}; declare the source "
            "under data_sources in it",
        )
    sources = policy.data_sources
    defaults = policy.data_quality.limits
    if data.location is None:
        assert data.source is not None  # the payload's validator: a source, or the old location
        return _resolve_named(data, sources, defaults, settings)
    source_id, named = _legacy(data, sources, settings)
    moved = data.model_copy(update={"location": None, "source": source_id, **named})
    resolved = _resolve_named(moved, sources, defaults, settings)
    new_form = json.dumps({"source": source_id, **named})
    notice = (
        f"`location` is deprecated: this change was read as data source {source_id!r}; "
        f"send {new_form} instead of the location {printable(shown, 300)}"
    )
    return Resolved(resolved.target, resolved.named, notice)


def _resolve_named(
    data: DataChanged, sources: Mapping[str, DataSource], defaults: SizeLimits, settings: AimsSettings
) -> Resolved:
    source_id = data.source or ""
    source = sources.get(source_id)
    if source is None:
        known = ", ".join(sorted(sources)[:10]) or "none"
        raise _refused(
            data,
            f"no data source {printable(source_id, 80)!r} in the policy (declared: {known}); "
            "declare it under data_sources, or fix the event's source",
        )
    limits = source.limits.over(defaults)
    if isinstance(source, FileSource):
        if data.path is None:
            raise _refused(data, f"data source {source_id!r} holds files: name a `path` in it, not a `table`")
        path, root = inside_root(source_id, source, data.path, settings)
        return Resolved(FileTarget(path, limits, root), {"source": source_id, "path": data.path})
    if data.table is None:
        raise _refused(data, f"data source {source_id!r} is a SQL database: name a `table`, not a `path`")
    return Resolved(_sql_target(data, source_id, source, data.table, limits, settings), named_by(data))


def inside_root(
    source_id: str, source: FileSource, relative: str, settings: AimsSettings
) -> tuple[Path, Path]:
    """The file `relative` names under the source's roots, symlinks resolved, and its root; refused
    when it is absolute, ends outside its root, or is in no root."""
    what = f"path {printable(relative, 200)!r}"
    if "\x00" in relative or Path(relative).is_absolute() or relative.startswith("~"):
        raise DataUnavailable(what, f"must be relative to a root of data source {source_id!r}, not absolute")
    state = settings.state_path
    register_file = _register_file(settings)
    found: list[tuple[Path, Path]] = []
    for root in source.roots:
        real_root = root.resolve()  # relative roots: to the worker's working directory
        if real_root == state or real_root.is_relative_to(state) or state.is_relative_to(real_root):
            raise DataUnavailable(
                what,
                f"root {str(root)!r} of data source {source_id!r} is the state folder, inside it or around "
                "it, which holds the register and Prefect's database: give the data a folder of its own",
            )
        # strict=False: a missing file still resolves, following every symlink that does exist.
        candidate = (real_root / relative).resolve()
        if not candidate.is_relative_to(real_root) or candidate == real_root:
            raise DataUnavailable(
                what,
                f"leads outside the root of data source {source_id!r} (through '..' or a symlink); "
                "name a file inside it",
            )
        if candidate == register_file:
            raise DataUnavailable(what, "is the register's database, which no check may read")
        if os.path.lexists(candidate):
            found.append((candidate, real_root))
    if not found:
        raise DataUnavailable(what, f"no such file in data source {source_id!r}; check the path in the event")
    return found[0]


def _register_file(settings: AimsSettings) -> Path | None:
    url = settings.database_url.get_secret_value() if settings.database_url is not None else ""
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        return Path(database).resolve() if database else None
    return None


def _sql_target(
    data: DataChanged,
    source_id: str,
    source: SqlSource,
    table: str,
    limits: SizeLimits,
    settings: AimsSettings,
) -> SqlTarget:
    if source.tables and table not in source.tables:
        raise _refused(
            data,
            f"table {printable(table, 100)!r} is not one of data source {source_id!r}'s tables; "
            "add it to the source's tables in the policy, or fix the event",
        )
    try:
        url = sa.make_url(source.url)
    except (sa.exc.ArgumentError, ValueError):
        raise _refused(
            data, f"data source {source_id!r} has no valid SQLAlchemy URL; fix it in the policy"
        ) from None
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and not database.startswith("file:"):
        real = Path(database).resolve()
        state = settings.state_path
        if real.is_relative_to(state) or real == _register_file(settings):
            raise _refused(
                data,
                f"data source {source_id!r} is a database in the state folder (the register, Prefect's): "
                "no check may read it",
            )
    password, env = None, env_names("dq_password", AimsSettings.model_fields["dq_password"])[0]
    if source.credentials is not None:
        password = getattr(settings, source.credentials)
        env = env_names(source.credentials, AimsSettings.model_fields[source.credentials])[0]
    return SqlTarget(url=source.url, table=table, password=password, password_env=env, limits=limits)


def _legacy(
    data: DataChanged, sources: Mapping[str, DataSource], settings: AimsSettings
) -> tuple[str, dict[str, str]]:
    """The declared source an old-form location lies in, and the path or table in it; refused if none.

    A file is matched lexically (`..` collapsed, nothing on disk looked at) so a location outside every
    root learns nothing about the file system; inside, `inside_root` then resolves symlinks."""
    location = data.location
    if isinstance(location, FileLocation):
        parsed = urlparse(location.uri)
        local = parsed.scheme == "file" and parsed.netloc in ("", "localhost")
        if parsed.scheme and not local and len(parsed.scheme) > 1:
            raise _refused(data, "only local files can be read, and only inside a declared data source")
        raw = unquote(parsed.path) if parsed.scheme == "file" else location.uri
        if "\x00" not in raw and Path(raw).is_absolute():
            path = Path(os.path.normpath(raw))
            for source_id in sorted(sources):
                source = sources[source_id]
                if not isinstance(source, FileSource):
                    continue
                for root in source.roots:
                    for form in dict.fromkeys((Path(os.path.abspath(root)), root.resolve())):
                        if path.is_relative_to(form) and path != form:
                            return source_id, {"path": str(path.relative_to(form))}
        what = "file"
    else:
        assert location is not None
        try:
            wanted = sa.make_url(location.url)
        except (sa.exc.ArgumentError, ValueError):
            wanted = None
        for source_id in sorted(sources):
            source = sources[source_id]
            if isinstance(source, SqlSource) and wanted is not None and _same_url(source.url, wanted):
                return source_id, {"table": location.table}
        what = "database"
    raise _refused(
        data,
        f"the {what} is in no data source of the policy: events name a declared source "
        '({"source": ID, "path": PATH} or {"source": ID, "table": TABLE}), never a location of their own',
    )


def _same_url(declared: str, wanted: sa.URL) -> bool:
    try:
        url = sa.make_url(declared)
    except (sa.exc.ArgumentError, ValueError):
        return False
    if url.get_backend_name() == "sqlite" and wanted.get_backend_name() == "sqlite":
        mine, theirs = url.database or "", wanted.database or ""
        return bool(mine) and os.path.abspath(mine) == os.path.abspath(theirs)
    return url.render_as_string(hide_password=False) == wanted.render_as_string(hide_password=False)


def _refused(data: DataChanged, reason: str) -> DataUnavailable:
    return DataUnavailable(printable(json.dumps(named_by(data)), 300), reason)
