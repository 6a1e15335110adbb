"""Security between the parts: which transport a part uses (a pure decision
from its flags and address), and the gRPC credentials and token check that
carry it out.

Modes, for the control plane (server) and its clients (worker, gateway):
- mutual TLS: the server presents a certificate and requires client
  certificates signed by the CA; clients verify the server's certificate.
- token over TLS: server-side TLS, and every call carries
  `authorization: Bearer <token>`, compared in constant time by a server
  interceptor.
- both at once (a client certificate and a token).
- plaintext: only when asked for (--insecure), or when the address is a
  loopback one (the traffic never leaves the host, and function containers,
  in their own network namespaces, cannot reach the host's loopback).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import structlog

log = structlog.get_logger(__name__)

Role = Literal["server", "client"]
TOKEN_HEADER = "authorization"
TOKEN_PREFIX = "Bearer "


class SecurityConfigError(Exception):
    """Flags that make no safe transport: the part refuses to start."""


@dataclass(frozen=True)
class Credentials:
    """What the operator gave a part (paths, not contents)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    token: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class Plan:
    """The decided transport. `warning`, when set, is logged at start."""

    tls: bool
    client_certs: bool  # the server requires, or the client presents, a certificate
    token: bool
    warning: str | None = None

    @property
    def mode(self) -> str:
        if not self.tls:
            return "plaintext"
        parts = ["mtls" if self.client_certs else "tls"]
        if self.token:
            parts.append("token")
        return "+".join(parts)


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT names this host's loopback. 0.0.0.0 and names
    other than localhost are not: they may be reached from elsewhere."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decide(creds: Credentials, role: Role, address: str) -> Plan:
    """The transport for a part listening on (server) or dialing (client)
    `address`, or SecurityConfigError saying what is missing."""
    has_tls_material = any(x is not None for x in (creds.cert, creds.key, creds.ca))
    if creds.insecure:
        if has_tls_material or creds.token:
            raise SecurityConfigError("--insecure together with credentials: choose one")
        return Plan(
            False,
            False,
            False,
            "plaintext by request (--insecure): anyone on the network can read and drive this part",
        )
    if (creds.cert is None) != (creds.key is None):
        raise SecurityConfigError("--tls-cert and --tls-key go together")
    token = bool(creds.token)
    if not has_tls_material and not token:
        if is_loopback(address):
            return Plan(
                False,
                False,
                False,
                f"plaintext on loopback ({address}): no "
                "credentials given; other hosts cannot connect",
            )
        raise SecurityConfigError(
            f"refusing plaintext on {address}: give --tls-cert/--tls-key/--tls-ca "
            "(mutual TLS) or --token with TLS, or --insecure to accept plaintext"
        )
    if role == "server":
        if creds.cert is None:
            raise SecurityConfigError("the control plane needs --tls-cert and --tls-key for TLS")
        if creds.ca is None and not token:
            raise SecurityConfigError(
                "TLS alone authenticates no client: give --tls-ca (client certificates) or --token"
            )
        return Plan(True, creds.ca is not None, token)
    if creds.ca is None:
        raise SecurityConfigError("--tls-ca is needed to verify the control plane's certificate")
    if creds.cert is None and not token:
        raise SecurityConfigError(
            "no credentials for the control plane: give --tls-cert/--tls-key or --token"
        )
    return Plan(True, creds.cert is not None, token)


def token_ok(metadata: Sequence[tuple[str, str | bytes]] | None, expected: str) -> bool:
    """Whether the call's metadata carries the token (constant-time compare:
    how long it takes says nothing about how much of a guess was right)."""
    want = (TOKEN_PREFIX + expected).encode()
    for key, value in metadata or ():
        if key.lower() == TOKEN_HEADER:
            got = value if isinstance(value, bytes) else value.encode()
            return hmac.compare_digest(got, want)
    return False


def read_token(token: str | None, token_file: str | None) -> str | None:
    if token and token_file:
        raise SecurityConfigError("--token and --token-file: give one")
    if token_file:
        value = Path(token_file).expanduser().read_text().strip()
        if not value:
            raise SecurityConfigError(f"token file {token_file} is empty")
        return value
    return token or None


# -- gRPC edges ---------------------------------------------------------------


@dataclass(frozen=True)
class Transport:
    """A decided plan with the credentials' contents, for one part."""

    plan: Plan
    creds: Credentials

    @classmethod
    def build(cls, creds: Credentials, role: Role, address: str) -> Transport:
        return cls(decide(creds, role, address), creds)

    @classmethod
    def plaintext(cls) -> Transport:
        """For in-process use on loopback (tests, `lambdafleet up`)."""
        return cls(Plan(False, False, False), Credentials(insecure=True))

    def log_start(self, part: str) -> None:
        if self.plan.warning:
            log.warning("transport.plaintext", part=part, reason=self.plan.warning)
        else:
            log.info("transport.secured", part=part, mode=self.plan.mode)

    def _read(self, path: Path | None) -> bytes | None:
        return Path(path).expanduser().read_bytes() if path is not None else None

    def server_credentials(self) -> Any:
        if not self.plan.tls:
            return None
        cert, key = self._read(self.creds.cert), self._read(self.creds.key)
        return grpc.ssl_server_credentials(
            [(key, cert)],
            root_certificates=self._read(self.creds.ca),
            require_client_auth=self.plan.client_certs,
        )

    def server_interceptors(self) -> list[Any]:
        if not self.plan.token:
            return []
        assert self.creds.token
        return [TokenInterceptor(self.creds.token)]

    def channel(self, target: str, options: list[tuple[str, Any]]) -> Any:
        if not self.plan.tls:
            return grpc.aio.insecure_channel(target, options=options)
        ssl = grpc.ssl_channel_credentials(
            root_certificates=self._read(self.creds.ca),
            private_key=self._read(self.creds.key),
            certificate_chain=self._read(self.creds.cert),
        )
        if self.plan.token:
            assert self.creds.token
            ssl = grpc.composite_channel_credentials(
                ssl, grpc.access_token_call_credentials(self.creds.token)
            )
        return grpc.aio.secure_channel(target, ssl, options=options)


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every call must carry the token; others end UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        if handler is None or token_ok(details.invocation_metadata, self.token):
            return handler
        log.warning("auth.rejected", method=details.method, reason="missing or invalid token")
        return _denying(handler)


def _denying(handler: Any) -> Any:
    async def deny(request: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid token")

    args = (deny, handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(*args)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(*args)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(*args)
    return grpc.stream_stream_rpc_method_handler(*args)


def session_error(
    code: str | None, details: str, *, tls: bool = False, registered: bool = True
) -> tuple[str, str] | None:
    """A worker's failed session that is about credentials, as (event,
    hint) to log at error level; None for an ordinary connection loss."""
    if code == "UNAUTHENTICATED":
        return "worker.rejected", "the control plane refused this worker's token"
    text = details.lower()
    if tls and not registered and "socket closed" in text:
        # TLS 1.3: a server refusing the client's certificate (or its
        # absence) closes the connection after the client's side of the
        # handshake is done, so the client sees only a closed socket.
        return (
            "worker.tls_failed",
            "the control plane closed the connection during TLS: it requires a client "
            "certificate signed by its CA (--tls-cert/--tls-key)",
        )
    if any(word in text for word in ("ssl", "handshake", "certificate", "tls")):
        return (
            "worker.tls_failed",
            "TLS with the control plane failed: check --tls-ca (the control plane's CA), "
            "--tls-cert/--tls-key (signed by its CA) and the address in its certificate",
        )
    return None
