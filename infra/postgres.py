"""A throwaway PostgreSQL server on 127.0.0.1, with its data in the state folder.

For local use only: benchmarks of Prefect on PostgreSQL, and tests of the register on PostgreSQL.
Trust authentication on loopback, no Unix socket, fsync off by default. Production uses a managed
PostgreSQL; nothing here is meant for it.

Where the server binaries come from, in this order: `AIMS_PG_BIN`, `pg_config --bindir`, the newest
`/usr/lib/postgresql/*/bin` (Debian and Ubuntu). PostgreSQL refuses to run as root: when this process
is root, the data folder is handed to the `postgres` OS user and initdb/pg_ctl run through
`runuser -u postgres --`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from infra.processes import free_port, tail, wait_until

log = logging.getLogger("aims.postgres")

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
RUN_AS = "postgres"  # the OS user the server runs as when this process is root
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    pass


def _has_server(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in SERVER_BINARIES)


def find_pg_bin() -> Path:
    """The folder holding initdb, pg_ctl and postgres; raise `PostgresUnavailable` when there is none."""
    from schemas.settings import load_settings

    configured = load_settings().pg_bin
    if configured:
        bin_dir = Path(configured)
        if not _has_server(bin_dir):
            raise PostgresUnavailable(
                f"AIMS_PG_BIN={configured} does not hold the PostgreSQL server binaries "
                f"({', '.join(SERVER_BINARIES)})"
            )
        return bin_dir
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bin_dir = Path(result.stdout.strip())
        if result.returncode == 0 and result.stdout.strip() and _has_server(bin_dir):
            return bin_dir
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_server(p)]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    if candidates:
        return max(candidates, key=version)
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: install Debian's postgresql "
        "package (`apt-get install postgresql`), or set AIMS_PG_BIN to the folder that holds them"
    )


class PostgresServer:
    """initdb once, then start/stop. Data survives restarts in `state_dir / "postgres" / name`."""

    def __init__(
        self,
        state_dir: Path,
        name: str = "aims",
        *,
        database: str = "aims",
        user: str = "aims",
        port: int | None = None,
        fsync: bool = False,
        bin_dir: Path | None = None,
    ) -> None:
        for what, value in (("database", database), ("user", user)):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{what} {value!r}: use lower-case letters, digits and underscores")
        self.state_dir = state_dir
        self.home = state_dir / "postgres"
        self.data_dir = self.home / name
        self.log_path = self.home / f"{name}.log"
        self.database = database
        self.user = user
        self.port = port or 0
        self._fixed_port = port is not None
        self.fsync = fsync
        self._bin_dir = bin_dir
        self._started = False

    # -- where and how ------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_pg_bin()
        return self._bin_dir

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def url(self, driver: str = "asyncpg") -> str:
        """A SQLAlchemy URL, e.g. `postgresql+asyncpg://aims@127.0.0.1:5432/aims`."""
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _server_command(self, *args: str) -> list[str]:
        """initdb and pg_ctl: as the `postgres` OS user when we are root (PostgreSQL refuses root)."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("running as root needs `runuser` (util-linux) to start PostgreSQL")
            return [runuser, "-u", RUN_AS, "--", *command]
        return command

    def _run(self, command: list[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
                f"\nlast lines of {self.log_path}:\n{tail(self.log_path)}"
            )
        return result

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.as_root:
            return
        import pwd

        try:
            account = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root needs a {RUN_AS!r} OS user to run PostgreSQL (Debian's postgresql "
                "package creates it), or run as an ordinary user"
            ) from None
        for path in (self.home, *self.home.rglob("*")):
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        check = subprocess.run(
            [shutil.which("runuser") or "runuser", "-u", RUN_AS, "--", "test", "-w", str(self.home)],
            capture_output=True,
            check=False,
        )
        if check.returncode != 0:
            raise PostgresUnavailable(
                f"the {RUN_AS!r} OS user cannot write {self.home}: a parent folder is not searchable "
                "by other users; choose a state folder outside it (AIMS_STATE_DIR)"
            )

    def _initdb(self) -> None:
        log.info("initdb %s", self.data_dir)
        self._run(
            self._server_command(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ),
            "initdb",
        )
        # Trust on loopback only; with listen_addresses=127.0.0.1 and no Unix socket nothing else
        # can reach the server anyway.
        (self.data_dir / "pg_hba.conf").write_text(
            "# written by infra/postgres.py: a throwaway local server\n"
            "host  all          all  127.0.0.1/32  trust\n"
            "host  replication  all  127.0.0.1/32  trust\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# infra/postgres.py: a throwaway local server\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "log_min_messages = warning\n"
                "log_destination = 'stderr'\n"
                "logging_collector = off\n"
            )
        if self.as_root:
            self._prepare_home()  # the files written above belong to root

    # -- lifecycle ----------------------------------------------------------------------------

    def running(self) -> bool:
        """Is a server running from this data folder (maybe left behind by an earlier process)?"""
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            self._server_command("pg_ctl", "status", "-D", str(self.data_dir)),
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60) -> str:
        """Start (initdb on first use), wait until it accepts connections; return its URL."""
        self._prepare_home()
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)  # a half-done initdb
            self._initdb()
        if self.running():
            log.warning("a PostgreSQL server left running from %s: stopping it first", self.data_dir)
            self.stop()
        if not self._fixed_port:
            self.port = free_port()
        options = f"-p {self.port} -c fsync={'on' if self.fsync else 'off'}"
        if not self.fsync:
            options += " -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            self._server_command(
                "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                options,
            ),
            "pg_ctl start",
            timeout=timeout + 10,
        )
        self._started = True
        waited = wait_until(self._ready, timeout, "PostgreSQL")
        self._ensure_database()
        log.info("PostgreSQL ready on 127.0.0.1:%d after %.1fs", self.port, waited)
        return self.url()

    def _client(self, name: str, *args: str) -> list[str]:
        return [str(self.bin_dir / name), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, *args]

    def _ready(self) -> bool:
        pg_isready = self.bin_dir / "pg_isready"
        if not pg_isready.is_file():
            return True  # pg_ctl -w already waited for the server to accept connections
        return (
            subprocess.run(
                self._client("pg_isready", "-d", "postgres", "-t", "2"), capture_output=True, check=False
            ).returncode
            == 0
        )

    def _ensure_database(self) -> None:
        found = self._run(
            self._client(
                "psql",
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",
            ),
            "psql",
        )
        if found.stdout.strip() != "1":
            self._run(self._client("createdb", self.database), f"createdb {self.database}")

    def stop(self, timeout: float = 60) -> None:
        """`pg_ctl stop -m fast`; a no-op when no server runs from this data folder."""
        if not (self.data_dir / "postmaster.pid").exists():
            self._started = False
            return
        result = subprocess.run(
            self._server_command(
                "pg_ctl",
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 10,
        )
        if result.returncode != 0 and self.running():
            raise PostgresUnavailable(f"pg_ctl stop failed:\n{result.stdout}{result.stderr}")
        self._started = False
