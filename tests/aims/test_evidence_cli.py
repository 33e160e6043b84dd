"""`aims evidence bundle` and `aims evidence verify`: the archive from a seeded register, checked
offline with the audit key from the state folder; bad arguments exit 2 and write nothing."""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aims.cli import main
from aims.commands.evidence import bundle_scope
from aims.errors import CliError
from schemas.catalogue import load_catalogue
from tests.aims.runner import aims_process, isolate
from tests.flows.evidence_bundle.seeding import seeded
from tests.resources import EXAMPLE_POLICY

CONTROLS = [c.id for c in load_catalogue().controls]


def cli(state: Path, *args: str) -> tuple[int, str, str]:
    """`aims …` in this process, on the state folder `state`, with its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def test_bundle_then_verify_and_one_changed_byte_is_named(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seeded(state, random.Random(4)).close()
    out = tmp_path / "bundle.zip"
    built = aims_process(
        state, "evidence", "bundle", "--out", str(out), "--no-anchors", "--json", "--control", "A.8.4"
    )
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["counts"]["controls"] == 1 and summary["audit_intact"] is True
    # Progress on stderr: each section and its count.
    for section in ("controls: 1", "evidence records:", "incidents:", "written"):
        assert section in built.stderr
    ok = aims_process(state, "evidence", "verify", str(out))
    assert ok.returncode == 0 and "files match the signed manifest" in ok.stdout, ok.stderr
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo("incidents.json")
    data = bytearray(out.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.file_size // 2] ^= 0x01
    out.write_bytes(bytes(data))
    bad = aims_process(state, "evidence", "verify", str(out), "--json")
    report = json.loads(bad.stdout)
    assert bad.returncode == 1 and report["ok"] is False
    assert [p["path"] for p in report["problems"]] == ["incidents.json"]
    again = aims_process(state, "evidence", "bundle", "--out", str(out), "--no-anchors")
    assert again.returncode == 2 and "exists" in again.stderr and out.read_bytes() == bytes(data)
    forced = aims_process(state, "evidence", "bundle", "--out", str(out), "--no-anchors", "--force")
    assert forced.returncode == 0, forced.stderr
    assert aims_process(state, "evidence", "verify", str(out)).returncode == 0


def test_verify_needs_the_audit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path / "elsewhere", monkeypatch)
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK")
    code, _, err = cli(tmp_path, "evidence", "verify", str(archive))
    assert code == 2 and "no audit key" in err
    assert not (tmp_path / "elsewhere").exists()  # offline: no register opened, nothing made
    code, _, err = cli(tmp_path, "evidence", "verify", str(tmp_path / "missing.zip"))
    assert code == 2 and "no such file" in err


def oracle(first: str | None, last: str | None, controls: list[str]) -> bool:
    """Whether the arguments are good, said independently of the command's own checks."""
    days = []
    for text in (first, last):
        if text is None:
            days.append(None)
            continue
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return False
        try:
            days.append(date.fromisoformat(text))
        except ValueError:
            return False
    if days[0] and days[1] and days[1] < days[0]:
        return False
    return all(c in CONTROLS for c in controls)


dates = st.one_of(
    st.none(),
    st.dates(date(1970, 1, 1), date(2100, 12, 31)).map(date.isoformat),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
    st.text(max_size=12),
)
control_ids = st.lists(
    st.one_of(
        st.sampled_from(CONTROLS),
        st.from_regex(r"A\.[0-9]{1,2}(\.[0-9]{1,2}){0,2}", fullmatch=True),
        st.text(max_size=8),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(first=dates, last=dates, controls=control_ids)
def test_the_arguments_are_checked_as_the_oracle_says(
    first: str | None, last: str | None, controls: list[str]
) -> None:
    good = oracle(first, last, controls)
    try:
        scope = bundle_scope(first, last, controls)
    except CliError:
        assert not good
        return
    assert good
    assert scope.controls == tuple(dict.fromkeys(controls))
    if first is not None:
        assert scope.start is not None and scope.start.date().isoformat() == first
    if last is not None and scope.end is not None:
        assert (scope.end.date() - date.fromisoformat(last)).days == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=dates, last=dates, controls=control_ids)
def test_bad_arguments_exit_2_and_write_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    first: str | None,
    last: str | None,
    controls: list[str],
) -> None:
    if oracle(first, last, controls):
        controls = [*controls, "A.99.1"]  # made bad: this test is about refusals
    work = tmp_path_factory.mktemp("bad")
    state = work / "state"
    monkeypatch.setenv("AIMS_STATE_DIR", str(state))
    monkeypatch.setenv("AIMS_POLICY_FILE", str(EXAMPLE_POLICY))
    out = work / "bundle.zip"
    args = ["evidence", "bundle", "--out", str(out), "--no-anchors"]
    for flag, value in (("--from", first), ("--to", last)):
        if value is not None:
            args.append(f"{flag}={value}")
    args += [f"--control={c}" for c in controls]
    code, stdout, err = cli(work, *args)
    assert code == 2, (args, err)
    assert stdout == "" and err.strip()
    assert sorted(p.name for p in work.iterdir()) == []  # no archive, no temp file, no register


def test_an_out_that_cannot_be_written_is_refused_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(tmp_path / "state", monkeypatch)
    for out, says in (
        (tmp_path, "a folder"),
        (tmp_path / "no" / "such" / "b.zip", "does not exist"),
    ):
        code, _, err = cli(tmp_path, "evidence", "bundle", "--out", str(out))
        assert code == 2 and says in err, err
    code, _, err = cli(tmp_path, "evidence", "bundle")
    assert code == 2 and "--out" in err
    code, _, err = cli(tmp_path, "evidence", "bundle", "--out", str(tmp_path / "b.zip"), "--anchor", "x")
    assert code == 2 and "SEQ:HASH" in err
    assert not (tmp_path / "state").exists() and not (tmp_path / "b.zip").exists()
