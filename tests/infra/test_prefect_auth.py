"""The Prefect API's auth string: made once in the state folder, handed to every process of the stack
in its environment, sent by the project's own client, and kept to the server it belongs to.

No Prefect server here (tests/integration/test_prefect_auth.py has the real one): milliseconds each.
"""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from aims.endpoints import prefect_auth, resolve
from connectors.prefect_api import PrefectAuth
from infra import prefect_server
from infra.prefect_server import PrefectServer
from infra.stack import LocalStack, StackInfo
from schemas.settings import AimsSettings

AUTH_VARIABLES = ("PREFECT_API_AUTH_STRING", "AIMS_PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")


@pytest.fixture(autouse=True)
def no_prefect_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The session stack (if this process started it) puts its API and auth string in os.environ.
    for name in (*AUTH_VARIABLES, "PREFECT_API_URL", "AIMS_PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)


def test_the_local_stack_makes_one_auth_string_kept_in_the_state_folder_for_its_owner_only(
    tmp_path: Path,
) -> None:
    env = LocalStack(AimsSettings(state_dir=tmp_path)).child_env()
    auth_file = tmp_path / "prefect-api.auth"
    auth = env["PREFECT_API_AUTH_STRING"]
    user, _, password = auth.partition(":")
    assert auth == auth_file.read_text().strip() and user == "aims" and len(password) >= 32
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    # Kept across stacks: a UI login and the CLI beside the stack keep working after `aims down`.
    assert LocalStack(AimsSettings(state_dir=tmp_path)).child_env()["PREFECT_API_AUTH_STRING"] == auth
    # Random per installation.
    other = LocalStack(AimsSettings(state_dir=tmp_path / "other")).child_env()["PREFECT_API_AUTH_STRING"]
    assert other != auth


def test_the_settings_auth_string_wins_and_an_existing_api_gets_only_that(tmp_path: Path) -> None:
    mine = SecretStr("ops:correct-horse-battery-staple")
    stack = LocalStack(AimsSettings(state_dir=tmp_path, prefect_api_auth_string=mine))
    assert stack.child_env()["PREFECT_API_AUTH_STRING"] == mine.get_secret_value()
    assert not (tmp_path / "prefect-api.auth").exists()
    # An existing Prefect API without configured credentials: the local server's are not sent there.
    LocalStack(AimsSettings(state_dir=tmp_path)).child_env()  # a local stack made one earlier
    remote = LocalStack(AimsSettings(state_dir=tmp_path, prefect_api_url="https://prefect.example/api"))
    assert "PREFECT_API_AUTH_STRING" not in remote.child_env()


def test_the_server_gets_its_auth_string_in_its_environment_never_on_its_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prefect_server.ManagedProcess, "start", lambda self, cwd=None: None)
    monkeypatch.setattr(prefect_server, "wait_until", lambda *args, **kwargs: 0.0)
    secret = "aims:" + "s3cret" * 8
    server = PrefectServer(tmp_path, port=4999, auth=SecretStr(secret))
    server.start()
    assert server.process is not None
    assert all(secret not in arg and "s3cret" not in arg for arg in server.process.command)
    assert server.process.env["PREFECT_SERVER_API_AUTH_STRING"] == secret  # what the server requires
    assert server.process.env["PREFECT_API_AUTH_STRING"] == secret  # what its own clients send

    # Without one, none is inherited from the supervisor's environment either.
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "leftover:value")
    bare = PrefectServer(tmp_path, port=4998)
    bare.start()
    assert bare.process is not None and "PREFECT_SERVER_API_AUTH_STRING" not in bare.process.env


@pytest.mark.parametrize("given", ["no-colon-at-all", ":password-only", "user-only:"])
def test_an_auth_string_without_user_and_password_is_refused_without_being_quoted(given: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AimsSettings(prefect_api_auth_string=given)
    assert "user:password" in str(caught.value)
    assert given not in str(caught.value)


def test_the_auth_string_is_read_from_prefects_own_variable_or_the_aims_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIMS_PREFECT_API_AUTH_STRING", "a:b")
    assert AimsSettings().prefect_api_auth_string == SecretStr("a:b")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "c:d")  # what the Prefect SDK reads too: first
    assert AimsSettings().prefect_api_auth_string == SecretStr("c:d")


def _running_stack(state: Path, api_url: str, prefect_server_pid: bool) -> None:
    pids = {"prefect-server": os.getpid()} if prefect_server_pid else {}
    StackInfo("127.0.0.1:9092", api_url, api_url.removesuffix("/api"), os.getpid(), time.time(), pids).save(
        state
    )


def test_the_cli_sends_the_state_folders_auth_string_to_the_local_server_only(tmp_path: Path) -> None:
    local = "http://127.0.0.1:4200/api"
    secret = LocalStack(AimsSettings(state_dir=tmp_path)).child_env()["PREFECT_API_AUTH_STRING"]
    _running_stack(tmp_path, local, prefect_server_pid=True)
    found = resolve(AimsSettings(state_dir=tmp_path)).prefect_auth
    assert found is not None and found.get_secret_value() == secret
    # PREFECT_API_URL elsewhere, or a stack that uses an existing API: not the local credentials.
    assert prefect_auth(AimsSettings(state_dir=tmp_path), "https://prefect.example/api") is None
    _running_stack(tmp_path, "https://prefect.example/api", prefect_server_pid=False)
    assert resolve(AimsSettings(state_dir=tmp_path)).prefect_auth is None
    # Configured credentials go wherever the API is.
    configured = AimsSettings(state_dir=tmp_path, prefect_api_auth_string="ops:pw")
    assert resolve(configured).prefect_auth == SecretStr("ops:pw")


def test_the_clients_requests_carry_the_whole_auth_string_as_prefect_compares_it() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json=3)

    for secret in ("aims:pa:ss:word", "no-colon"):
        with httpx.Client(
            transport=httpx.MockTransport(handler), auth=PrefectAuth(SecretStr(secret))
        ) as http:
            http.post("http://prefect.test/api/flow_runs/count", json={})
        scheme, token = (seen[-1] or "").split()
        assert scheme == "Basic" and base64.b64decode(token).decode() == secret
        assert secret not in repr(PrefectAuth(SecretStr(secret)))
