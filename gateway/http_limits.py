"""How long and how many clients the gateway waits for: the bounds that keep
a slow or idle client from holding it (pure values; gateway/http_server.py
applies them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpLimits:
    # A connection's next request head (request line and headers) must be
    # whole within this: it closes idle keep-alive connections and slow
    # heads alike (Tornado times both with one clock).
    idle_timeout_s: float = 60.0
    # A body must arrive within this plus its length at min_body_rate: a
    # stalled one is cut off within seconds, a 50 MB zip over a slow link
    # still gets minutes.
    body_timeout_s: float = 10.0
    min_body_rate: int = 256 * 1024
    # Connections served at once; beyond, the gateway stops accepting and
    # further clients wait in the kernel's listen queue until one closes.
    max_connections: int = 1000

    def body_timeout(self, content_length: int | None, largest: int) -> float:
        """Seconds to read a body of `content_length` bytes; a body without
        a length (chunked) gets the time of the `largest` read at all."""
        size = largest if content_length is None else min(content_length, largest)
        return self.body_timeout_s + size / self.min_body_rate


def content_length(value: str | None) -> int | None:
    """A Content-Length header's value; None when absent or not a count
    (Tornado answers 400 for the latter itself)."""
    digits = (value or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)
