"""Test certificates: a CA and a server certificate for 127.0.0.1/localhost, as PEM files."""

from __future__ import annotations

from pathlib import Path

from infra.kafka_tls import ensure_local_tls


def pem_server_files(folder: Path) -> tuple[Path, Path, Path]:
    """(CA file, server certificate, server key) made by the local broker's own set-up."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    tls = ensure_local_tls(folder)
    key, cert, _ = pkcs12.load_key_and_certificates(
        tls.keystore.read_bytes(), tls.secret("keystore").encode()
    )
    assert key is not None and cert is not None
    cert_file, key_file = folder / "server.pem", folder / "server-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tls.cafile, cert_file, key_file
