"""A real single-node Apache Kafka broker in KRaft mode on 127.0.0.1.

Where the broker comes from, in this order:
1. an existing cluster (`KAFKA_BOOTSTRAP_SERVERS`): nothing is started;
2. a Kafka installation (`KAFKA_HOME`): its `libs/` jars;
3. otherwise the broker jars resolved from Maven Central by Maven, using `infra/kafka/pom.xml`,
   copied once into the state folder.

It listens in plaintext, or with `security="sasl_ssl"` (AIMS_KAFKA_LOCAL_SECURITY) on a SASL_SSL
listener: TLS with a certificate of a CA made in the state folder, SCRAM-SHA-512 users created when
its storage is formatted (infra/kafka_tls.py). The controller's listener stays plaintext on 127.0.0.1:
no client connects there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Literal

from events.kafka_clients import KafkaConnection, KafkaSecurity, make_admin
from infra.kafka_tls import LocalTls, ensure_local_tls, forget_client_security
from infra.processes import ManagedProcess, free_port, port_is_free, wait_until

log = logging.getLogger("aims.kafka")

POM = Path(__file__).parent / "kafka" / "pom.xml"
_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


class BrokerUnavailable(RuntimeError):
    pass


def maven_classpath(libs: Path) -> str:
    """Resolve the broker jars with Maven into `libs` once; later starts reuse them."""
    marker = libs / ".complete"
    pom_digest = POM.read_bytes()
    if marker.exists() and marker.read_bytes() == pom_digest:
        return f"{libs}/*"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerUnavailable(
            "no Kafka: install Java 17+ and Maven, or set KAFKA_HOME to a Kafka installation, "
            "or KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
        )
    if libs.exists():
        shutil.rmtree(libs)
    log.info("resolving the Kafka broker jars from Maven Central (once) into %s", libs)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerUnavailable(
            f"Maven could not resolve the broker jars:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
        )
    marker.write_bytes(pom_digest)
    return f"{libs}/*"


class KafkaBroker:
    """Start, wait for and stop a local broker. Data survives restarts in the state folder."""

    def __init__(
        self,
        state_dir: Path,
        kafka_home: Path | None = None,
        heap: str = "512m",
        libs_dir: Path | None = None,
        security: Literal["plaintext", "sasl_ssl"] = "plaintext",
    ) -> None:
        self.state_dir = state_dir
        self.kafka_home = kafka_home
        # Several state folders (tests, benchmarks) can share one copy of the jars.
        self.libs_dir = libs_dir or state_dir / "kafka" / "libs"
        self.heap = heap
        self.home = state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.process: ManagedProcess | None = None
        self.port = 0
        self.controller_port = 0
        self.security = security
        self.tls: LocalTls | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def listener(self) -> str:
        return "SASL_SSL" if self.security == "sasl_ssl" else "PLAINTEXT"

    @property
    def connection(self) -> KafkaConnection:
        """How a client reaches this broker: its address and, for SASL_SSL, the local user and CA."""
        return KafkaConnection(self.bootstrap, self.tls.client_security() if self.tls else KafkaSecurity())

    def client_env(self) -> dict[str, str]:
        """The KAFKA_* variables a process needs to reach this broker (the password by file)."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **(self.tls.client_env() if self.tls else {})}

    def _classpath(self) -> str:
        if self.kafka_home is not None:
            libs = self.kafka_home / "libs"
            if not libs.is_dir():
                raise BrokerUnavailable(f"KAFKA_HOME={self.kafka_home} has no libs/ folder")
            return f"{libs}/*"
        return maven_classpath(self.libs_dir)

    def _choose_ports(self) -> None:
        # Reuse the last ports when free: every client (stack.json, the supervised processes, routers
        # started by hand) has the broker's address, and the controller's is part of the quorum config.
        # `port_is_free` ignores the TIME_WAIT connections a stopped broker leaves behind.
        ports_file = self.home / "ports.json"
        if ports_file.exists():
            saved = json.loads(ports_file.read_text())
            if port_is_free(saved["broker"]) and port_is_free(saved["controller"]):
                self.port, self.controller_port = saved["broker"], saved["controller"]
                return
            log.warning(
                "the broker's ports %s/%s are taken by another process; moving to new ones",
                saved["broker"],
                saved["controller"],
            )
        self.port = free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:  # two probes may be handed the same port
            self.controller_port = free_port()
        ports_file.write_text(json.dumps({"broker": self.port, "controller": self.controller_port}))

    def _write_config(self) -> Path:
        config = self.home / "server.properties"
        name = self.listener
        security = self.tls.broker_properties() if self.tls else []
        # It holds the broker's SCRAM password and keystore password when there is TLS: owner only.
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners={name}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners={name}://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    f"inter.broker.listener.name={name}",
                    f"listener.security.protocol.map={name}:{name},CONTROLLER:PLAINTEXT",
                    *security,
                    f"log.dirs={self.data_dir}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # A single local node: no reason to delay the first rebalance.
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "message.max.bytes=2097152",
                    "",
                ]
            )
        )
        (self.home / "log4j2.yaml").write_text(_LOG4J)
        return config

    def _java(self, classpath: str, *args: str) -> list[str]:
        java = shutil.which("java", path=os.environ.get("JAVA_HOME", "") + "/bin") or shutil.which("java")
        if java is None:
            raise BrokerUnavailable("no java on PATH: the local broker needs Java 17 or newer")
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            classpath,
            *args,
        ]

    def start(self, timeout: float = 120, cancel: threading.Event | None = None) -> str:
        """Start the broker and wait until it serves; `cancel` ends the wait early (stack stopping)."""
        self.home.mkdir(parents=True, exist_ok=True)
        classpath = self._classpath()
        self._choose_ports()
        if self.security == "sasl_ssl":
            self.tls = ensure_local_tls(self.home)
        else:
            forget_client_security(self.home)
        config = self._write_config()
        formatted_for = self.home / "storage-security"
        if not (self.data_dir / "meta.properties").exists():
            cluster_id = self._random_cluster_id()
            # The SCRAM users can only be written into a storage as it is formatted (KRaft). The
            # arguments hold their passwords for the second the tool runs; only this user can see them.
            users = self.tls.scram_users() if self.tls else []
            scram = [arg for user in users for arg in ("--add-scram", user)]
            result = subprocess.run(
                self._java(
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(config),
                    "--ignore-formatted",
                    *scram,
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BrokerUnavailable(
                    f"formatting the broker storage failed:\n{result.stdout}{result.stderr}"
                )
            formatted_for.write_text(self.security)
        elif self.tls and not (formatted_for.exists() and formatted_for.read_text() == "sasl_ssl"):
            raise BrokerUnavailable(
                f"the broker storage in {self.data_dir} was formatted without SCRAM users, which KRaft "
                "adds only when formatting: for AIMS_KAFKA_LOCAL_SECURITY=sasl_ssl use a new "
                "AIMS_STATE_DIR, or delete that folder (its events and offsets go with it)"
            )
        self.process = ManagedProcess(
            "kafka",
            self._java(classpath, "kafka.Kafka", str(config)),
            self.home / "broker.log",
            dict(os.environ),
        )
        self.process.start()
        waited = wait_until(self._ready, timeout, "Kafka broker", self.process, cancel)
        log.info("Kafka broker ready at %s after %.1fs", self.bootstrap, waited)
        return self.bootstrap

    @staticmethod
    def _random_cluster_id() -> str:
        # Kafka cluster ids are 16 random bytes, base64url without padding (22 characters). Like Kafka's
        # own Uuid.randomUuid, skip ids starting with "-": the storage tool would read one as an option.
        import base64

        while True:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cluster_id.startswith("-"):
                return cluster_id

    def _ready(self) -> bool:
        import socket

        # A plain TCP check first: the admin client logs every refused connection loudly.
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass

        admin = make_admin(self.connection, request_timeout_ms=3000)
        try:
            return bool(admin.describe_cluster().get("brokers"))
        finally:
            admin.close()

    def restart(self, timeout: float = 120, cancel: threading.Event | None = None) -> str:
        """Stop the broker if it runs, start it again; the same address unless someone took its ports.

        Its data (topics, committed offsets) is in the state folder and survives.
        """
        self.stop()
        return self.start(timeout, cancel)

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None:
            self.process.stop(timeout)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
