"""Security between the parts, the pure decisions: which transport a part's
flags make, the token check, how a worker reads a refused session, and the
certificates `lambdafleet certs` makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from lambdafleet.certs import server_hosts, write_bundle
from lambdafleet.security import (
    Credentials,
    SecurityConfigError,
    decide,
    is_loopback,
    read_token,
    session_error,
    token_ok,
)

P = Path("x.pem")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:4567", True),
        ("127.5.0.1:1", True),
        ("localhost:4567", True),
        ("[::1]:4567", True),
        ("0.0.0.0:4567", False),
        ("[::]:4567", False),
        ("10.0.0.5:4567", False),
        ("cp.example:4567", False),
        (":4567", False),
    ],
)
def test_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_no_credentials_is_plaintext_on_loopback_only() -> None:
    plan = decide(Credentials(), "server", "127.0.0.1:4567")
    assert plan.mode == "plaintext" and plan.warning and "loopback" in plan.warning
    for role in ("server", "client"):
        with pytest.raises(SecurityConfigError, match="refusing plaintext"):
            decide(Credentials(), role, "0.0.0.0:4567")  # type: ignore[arg-type]


def test_insecure_is_plaintext_anywhere_with_a_warning() -> None:
    plan = decide(Credentials(insecure=True), "server", "0.0.0.0:4567")
    assert plan.mode == "plaintext" and plan.warning and "--insecure" in plan.warning
    with pytest.raises(SecurityConfigError, match="choose one"):
        decide(Credentials(insecure=True, token="t"), "server", "0.0.0.0:4567")


def test_server_modes() -> None:
    assert decide(Credentials(P, P, P), "server", "0.0.0.0:1").mode == "mtls"
    assert decide(Credentials(P, P, token="t"), "server", "0.0.0.0:1").mode == "tls+token"
    assert decide(Credentials(P, P, P, "t"), "server", "0.0.0.0:1").mode == "mtls+token"
    assert decide(Credentials(P, P, P), "server", "127.0.0.1:1").warning is None
    with pytest.raises(SecurityConfigError, match="authenticates no client"):
        decide(Credentials(P, P), "server", "0.0.0.0:1")
    with pytest.raises(SecurityConfigError, match="go together"):
        decide(Credentials(cert=P, ca=P), "server", "0.0.0.0:1")
    # A token is never sent or checked over plaintext.
    with pytest.raises(SecurityConfigError, match="--tls-cert and --tls-key"):
        decide(Credentials(token="t"), "server", "0.0.0.0:1")


def test_client_modes() -> None:
    assert decide(Credentials(P, P, P), "client", "cp:1").mode == "mtls"
    assert decide(Credentials(ca=P, token="t"), "client", "cp:1").mode == "tls+token"
    with pytest.raises(SecurityConfigError, match="verify the control plane"):
        decide(Credentials(token="t"), "client", "cp:1")
    with pytest.raises(SecurityConfigError, match="no credentials"):
        decide(Credentials(ca=P), "client", "cp:1")


def test_token_check() -> None:
    assert token_ok([("authorization", "Bearer s3cret")], "s3cret")
    assert token_ok([("Authorization", b"Bearer s3cret")], "s3cret")
    assert not token_ok([("authorization", "Bearer s3cre")], "s3cret")
    assert not token_ok([("authorization", "s3cret")], "s3cret")
    assert not token_ok([("x-other", "Bearer s3cret")], "s3cret")
    assert not token_ok(None, "s3cret")


def test_token_file(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("abc\n")
    assert read_token(None, str(tmp_path / "t")) == "abc"
    assert read_token("xyz", None) == "xyz"
    assert read_token("", None) is None
    with pytest.raises(SecurityConfigError):
        read_token("xyz", str(tmp_path / "t"))


def test_worker_reads_refusals() -> None:
    rejected = session_error("UNAUTHENTICATED", "missing or invalid token")
    assert rejected is not None and rejected[0] == "worker.rejected"
    bad_ca = session_error("UNAVAILABLE", "Ssl handshake failed: CERTIFICATE_VERIFY_FAILED")
    assert bad_ca is not None and bad_ca[0] == "worker.tls_failed"
    no_cert = session_error(
        "UNAVAILABLE", "ipv4:1.2.3.4:1: Socket closed", tls=True, registered=False
    )
    assert no_cert is not None and no_cert[0] == "worker.tls_failed"
    # A control plane going away is no credentials problem.
    assert session_error("UNAVAILABLE", "Socket closed", tls=True, registered=True) is None
    assert session_error("UNAVAILABLE", "Connection refused") is None


def test_certs_bundle(tmp_path: Path) -> None:
    files = write_bundle(tmp_path, ["cp.example", "10.0.0.5"])
    assert set(files) >= {
        "ca.pem",
        "control-plane.pem",
        "control-plane-key.pem",
        "worker.pem",
        "worker-key.pem",
        "gateway.pem",
        "gateway-key.pem",
        "token",
    }
    for name in ("ca-key.pem", "control-plane-key.pem", "worker-key.pem", "token"):
        assert files[name].stat().st_mode & 0o077 == 0, f"{name} must be private"
    ca = x509.load_pem_x509_certificate(files["ca.pem"].read_bytes())
    server = x509.load_pem_x509_certificate(files["control-plane.pem"].read_bytes())
    worker = x509.load_pem_x509_certificate(files["worker.pem"].read_bytes())
    for cert in (server, worker):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cp.example", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1"]
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert server_hosts(["a", "localhost", " "]) == ["a", "localhost", "127.0.0.1"]
