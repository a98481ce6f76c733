"""TLS for loopback test servers: a host name that does not look like loopback to ci-env, and a
self-signed certificate for it (trusted by a client through REQUESTS_CA_BUNDLE)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path


def loopback_name() -> str | None:
    """This machine's host name when it resolves to loopback: a name that does not look like
    loopback to ci-env (no plain-http allowance), served on 127.0.0.1."""
    name = socket.gethostname()
    if not name or name == "localhost" or "." in name and name.endswith(".localhost"):
        return None
    try:
        address = socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
    except OSError:
        return None
    return name if address == "127.0.0.1" else None


def self_signed(directory: Path, name: str, *, ip: str | None = None) -> tuple[Path, Path]:
    """A CA-flagged certificate for `name` (and `ip`, when given) and its key, as PEM files."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    alternatives: list[x509.GeneralName] = [x509.DNSName(name)]
    if ip is not None:
        alternatives.append(x509.IPAddress(ipaddress.ip_address(ip)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
