"""Parsing of HOST:PORT addresses given on the command line."""

from __future__ import annotations


def split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """Split "host:port", "[v6]:port", "host" or ":port"."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    if value.count(":") == 1:
        host, port = value.split(":")
        return host or "0.0.0.0", int(port)
    return value or "0.0.0.0", default_port
