"""What the gateway takes from an HTTP request before a handler reads it:
the path and query as the client wrote them, and a bound on their length.

Tornado decodes the request line as Latin-1 and leaves query values as
bytes; these helpers give text, so that a value sent as raw UTF-8 reaches
validation (and its message) intact.
"""

from __future__ import annotations

import json

import tornado.web

# Longest request target (path and query) answered as a request. It was
# Tornado's whole header limit until server.MAX_HEADER_BYTES raised that, so
# that a longer target is read whole and answered 414 instead of cut off.
MAX_URI_BYTES = 65_536


def request_path(raw: str) -> str:
    """The request's path as its client wrote it. Tornado decodes the request
    line as Latin-1, so a path sent as raw UTF-8 (not percent-encoded)
    arrives as mojibake; its bytes are taken as UTF-8 again."""
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def query_values(arguments: dict[str, list[bytes]]) -> dict[str, list[str]]:
    """Query parameters as text; bytes that are not UTF-8 become U+FFFD, so
    the value fails validation (an AWS 4xx) rather than the request."""
    return {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in arguments.items()}


class UriLimit(tornado.web.RequestHandler):
    """Answers 414 for a request target over MAX_URI_BYTES, before the
    handler looks at it."""

    def prepare(self) -> None:
        if len(self.request.uri or "") > MAX_URI_BYTES:
            self.set_status(414)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": f"Request-URI longer than {MAX_URI_BYTES} bytes"}))
