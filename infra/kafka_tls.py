"""The local broker's SASL_SSL set-up: a CA, the broker's certificate and the SCRAM users.

Made once in the state folder (`kafka/tls/`, private files mode 0600) with the `cryptography` package,
and kept: the SCRAM users are written into the broker's storage when it is formatted, so their
passwords must outlive a restart. Nothing here is a secret worth more than the local broker it
protects; a real cluster has its own CA and users (README "Kafka security").

`client.json` tells the CLI beside a running stack how to reach its broker (as `event-signing.key`
tells it how to sign): the protocol, the user, the CA file and the file holding the password — never
the password itself.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from pydantic import SecretStr

from events.kafka_clients import KafkaSecurity
from schemas.settings import AimsSettings, KafkaSaslMechanism

MECHANISM: KafkaSaslMechanism = "SCRAM-SHA-512"
BROKER_USER = "broker"  # the broker's own inter-broker connections
CLIENT_USER = "aims"  # every process of the local stack, and the CLI beside it
CLIENT_FILE = "client.json"
# Long enough that a local state folder never meets an expired certificate; a real cluster's CA
# decides its own lifetimes.
VALID_FOR = timedelta(days=3650)


@dataclass(frozen=True)
class LocalTls:
    """Where the local broker's TLS and SCRAM material is, and its secrets (read from the files)."""

    folder: Path

    @property
    def cafile(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    def password_file(self, user: str) -> Path:
        return self.folder / f"{user}.password"

    def secret(self, name: str) -> str:
        return self.password_file(name).read_text().strip()

    def client_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            username=CLIENT_USER,
            password=SecretStr(self.secret(CLIENT_USER)),
            cafile=self.cafile,
        )

    def client_env(self) -> dict[str, str]:
        """The variables a process of the stack reads its client security from (the password by file)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": CLIENT_USER,
            "KAFKA_SASL_PASSWORD_FILE": str(self.password_file(CLIENT_USER)),
            "KAFKA_SSL_CAFILE": str(self.cafile),
        }

    def scram_users(self) -> list[str]:
        """`kafka-storage format --add-scram` values: the users exist from the broker's first start."""
        return [
            f"{MECHANISM}=[name={user},password={self.secret(user)}]" for user in (BROKER_USER, CLIENT_USER)
        ]

    def broker_properties(self) -> list[str]:
        """server.properties lines for a SASL_SSL listener named SASL_SSL (the file is kept 0600)."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{BROKER_USER}" password="{self.secret(BROKER_USER)}";'
        )
        return [
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={self.keystore}",
            f"ssl.keystore.password={self.secret('keystore')}",
            # The broker's own inter-broker connection checks its certificate against the same CA.
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.cafile}",
        ]


def ensure_local_tls(kafka_home: Path) -> LocalTls:
    """The CA, the broker's keystore and the SCRAM passwords; made on first use, then reused."""
    tls = LocalTls(kafka_home / "tls")
    if not (tls.cafile.exists() and tls.keystore.exists()):
        tls.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(tls.folder, 0o700)
        for name in (BROKER_USER, CLIENT_USER, "keystore"):
            # Kept if there: a storage formatted earlier holds the SCRAM users with these passwords.
            if not tls.password_file(name).exists():
                _write_private(tls.password_file(name), secrets.token_hex(24))
        _make_certificates(tls)
    _write_client_file(kafka_home, tls)
    return tls


def stored_client_security(kafka_home: Path) -> KafkaSecurity | None:
    """The security of the local broker made in this state folder (for the CLI beside the stack)."""
    path = kafka_home / CLIENT_FILE
    try:
        described = json.loads(path.read_text())
        password = Path(described["password_file"]).read_text().strip()
    except (OSError, ValueError, KeyError):
        return None
    return KafkaSecurity(
        protocol=described["protocol"],
        sasl_mechanism=described["sasl_mechanism"],
        username=described["username"],
        password=SecretStr(password),
        cafile=Path(described["cafile"]),
    )


def with_local_security(settings: AimsSettings) -> AimsSettings:
    """The settings of a command beside the local stack: its broker's security, when it has SASL_SSL.

    Only when the settings name no cluster of their own (KAFKA_BOOTSTRAP_SERVERS): then the command
    talks to the state folder's broker, whatever client security the environment holds.
    """
    if settings.kafka_bootstrap_servers:
        return settings
    stored = stored_client_security(settings.state_path / "kafka")
    if stored is None:
        return settings
    return settings.model_copy(
        update={
            "kafka_security_protocol": stored.protocol,
            "kafka_sasl_mechanism": stored.sasl_mechanism,
            "kafka_sasl_username": stored.username,
            "kafka_sasl_password": stored.password,
            "kafka_ssl_cafile": stored.cafile,
            "kafka_ssl_certfile": None,
            "kafka_ssl_keyfile": None,
            "kafka_ssl_key_password": None,
            "kafka_ssl_check_hostname": True,
        }
    )


def forget_client_security(kafka_home: Path) -> None:
    """The local broker listens in plaintext again: the CLI must not try TLS."""
    (kafka_home / CLIENT_FILE).unlink(missing_ok=True)


def _write_client_file(kafka_home: Path, tls: LocalTls) -> None:
    described = {
        "protocol": "SASL_SSL",
        "sasl_mechanism": MECHANISM,
        "username": CLIENT_USER,
        "password_file": str(tls.password_file(CLIENT_USER)),
        "cafile": str(tls.cafile),
    }
    (kafka_home / CLIENT_FILE).write_text(json.dumps(described, indent=2))


def _write_private(path: Path, text: str | bytes) -> None:
    # Created 0600 from the start: no moment where another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(text.encode() if isinstance(text, str) else text)


def _make_certificates(tls: LocalTls) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC) - timedelta(minutes=5)  # tolerate a little clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AIMS local Kafka CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        # The broker is reached at 127.0.0.1 (its advertised address): clients check the name.
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    keystore = pkcs12.serialize_key_and_certificates(
        b"broker",
        key,
        cert,
        [ca],
        serialization.BestAvailableEncryption(tls.secret("keystore").encode()),
    )
    _write_private(tls.keystore, keystore)
    # The CA's key is not kept: nothing else is ever signed with it. A new set-up makes a new CA.
    tls.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
