"""`lambdafleet certs`: a CA, the control plane's server certificate and
client certificates for workers and gateways, plus a random token, for an
operator who has no PKI of their own (or for tests).

EC P-256 keys: fast to make, and every gRPC build accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825  # the longest validity clients commonly accept
ALWAYS_HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lambdafleet"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class Authority:
    def __init__(self, common_name: str = "lambdafleet CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def issue(self, common_name: str, *, server: bool, hosts: list[str] | None = None) -> Issued:
        """A leaf certificate: a server one names `hosts` (DNS names or IP
        addresses) as the TLS client checks them; a client one only says
        who it is."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(_san(hosts or []), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def server_hosts(hosts: list[str]) -> list[str]:
    """The names the control plane's certificate answers to: the operator's,
    then loopback (for `lambdafleet` parts on the same host), deduplicated."""
    seen: list[str] = []
    for host in [*hosts, *ALWAYS_HOSTS]:
        host = host.strip()
        if host and host not in seen:
            seen.append(host)
    return seen


def _write(path: Path, data: bytes, secret: bool) -> None:
    # Keys and the token are readable by their owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_bundle(
    out: Path, hosts: list[str], clients: tuple[str, ...] = ("worker", "gateway")
) -> dict[str, Path]:
    """Every file an operator needs, in `out`; answers their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    ca = Authority()
    files: dict[str, tuple[bytes, bool]] = {
        "ca.pem": (ca.cert_pem, False),
        "ca-key.pem": (ca.key_pem, True),
    }
    server = ca.issue("control-plane", server=True, hosts=server_hosts(hosts))
    files["control-plane.pem"] = (server.cert_pem, False)
    files["control-plane-key.pem"] = (server.key_pem, True)
    for client in clients:
        issued = ca.issue(client, server=False)
        files[f"{client}.pem"] = (issued.cert_pem, False)
        files[f"{client}-key.pem"] = (issued.key_pem, True)
    files["token"] = ((secrets.token_urlsafe(32) + "\n").encode(), True)
    paths = {}
    for name, (data, secret) in files.items():
        _write(out / name, data, secret)
        paths[name] = out / name
    return paths
