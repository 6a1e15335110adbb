"""Who is speaking on the worker's Runtime and Extensions API.

Every environment (and every pre-started container, which becomes one) gets
a random secret at creation. Its container reaches the worker under the host
name `lf-<secret>` (AWS_LAMBDA_RUNTIME_API=lf-<secret>:<port>, mapped to the
worker in the container's /etc/hosts), so every HTTP client a runtime or an
extension uses sends it as the Host header without knowing of it: the
secret is the credential. It works unchanged through NAT, remote daemons and
Docker-in-Docker, where a source address names no container.

The secret is never the environment's public id (shown by /_fleet/status, in
log stream names, on the dashboard): knowing that grants nothing. It leaves
the worker only towards its own container (and the Docker daemon that
creates it).

Lookups go through a digest of the presented secret, then a constant-time
comparison: neither the dict lookup nor the final check tells a prober how
much of a guess was right. No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

# 192 bits: beyond any guessing, and `lf-` + 48 hex digits stays a valid
# DNS label (at most 63 characters), as a host name must be.
SECRET_BYTES = 24
HOST_PREFIX = "lf-"
_SECRET = re.compile(rf"[0-9a-f]{{{SECRET_BYTES * 2}}}")


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def route_of(secret: str) -> str:
    """The key environments are filed under: a digest of the secret, so the
    worker's tables hold no secret, and looking one up compares digests."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class RuntimeCredential:
    """The secret one container authenticates with."""

    # Out of repr: a credential logged by accident leaks nothing.
    secret: str = field(default_factory=new_secret, repr=False)

    @property
    def hostname(self) -> str:
        """The name the container reaches the worker under."""
        return f"{HOST_PREFIX}{self.secret}"

    @property
    def route(self) -> str:
        return route_of(self.secret)

    def admits(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret.encode(), secret.encode())


def presented_secret(host_header: str) -> str | None:
    """The secret a request presents in its Host header (`lf-<secret>` with
    or without a port), or None when it presents none of that shape."""
    host = host_header.strip().lower()
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    if not host.startswith(HOST_PREFIX):
        return None
    secret = host[len(HOST_PREFIX) :]
    return secret if _SECRET.fullmatch(secret) else None


T = TypeVar("T")


def authenticate(
    host_header: str, by_route: Mapping[str, T], credential_of: Callable[[T], RuntimeCredential]
) -> T | None:
    """The one holder (environment or pre-started container) whose secret
    the request presents; None for an absent, malformed or unknown one."""
    secret = presented_secret(host_header)
    if secret is None:
        return None
    holder = by_route.get(route_of(secret))
    if holder is None or not credential_of(holder).admits(secret):
        return None
    return holder
