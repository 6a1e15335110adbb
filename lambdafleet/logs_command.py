"""`lambdafleet logs FUNCTION`: a function's logs from the control plane,
through the gateway's `GET /_fleet/logs/<name>`, one line per log line:
`2026-12-01T21:40:00.123Z <request id> <message>`.

With `--follow` it runs until interrupted: when the stream breaks (the
control plane or the gateway restarted) it connects again, with backoff,
saying so once on stderr, and goes on after the last line it printed: it
asks again from a little before that line's time and skips what it printed
already (`Resume`), so a line the control plane
still holds is printed once, and none is skipped.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

# Lines reach the control plane in the order workers ship them, not in
# timestamp order: a reconnect asks again from this far before the newest
# line printed, and skips the lines printed since then.
RESUME_WINDOW_MS = 10_000
# Lines remembered for that (the newest), at most.
RESUME_MEMORY = 100_000
BACKOFF_S = (0.2, 5.0)
# Statuses of a gateway whose control plane is away, or restarting.
_UNAVAILABLE = {502, 503, 504}

_Key = tuple[int, str, str, str]


class Resume:
    """What a follower printed lately, to go on after it (pure)."""

    def __init__(self, since_ms: int = 0, window_ms: int = RESUME_WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._since_ms = since_ms
        self.newest_ms: int | None = None
        self._printed: deque[_Key] = deque(maxlen=RESUME_MEMORY)
        self._counts: Counter[_Key] = Counter()

    @staticmethod
    def key(event: dict[str, Any]) -> _Key:
        return (
            int(event.get("timestamp", 0)),
            str(event.get("request_id") or ""),
            str(event.get("log_stream") or ""),
            str(event.get("message", "")),
        )

    def since_ms(self) -> int:
        """Where the next request starts: the window before the newest line."""
        if self.newest_ms is None:
            return self._since_ms
        return max(self._since_ms, self.newest_ms - self.window_ms)

    def fresh(self, event: dict[str, Any]) -> bool:
        """Whether `event` is to print: not when it is a line an earlier
        connection printed, coming again."""
        key = self.key(event)
        if self._counts[key] > 0:
            # The same line again: one of the earlier connection's.
            self._counts[key] -= 1
            return False
        return True

    def printed(self, event: dict[str, Any]) -> None:
        key = self.key(event)
        self._printed.append(key)
        self.newest_ms = key[0] if self.newest_ms is None else max(self.newest_ms, key[0])

    def reconnecting(self) -> None:
        """A new connection starts: each line remembered may come once more."""
        cutoff = self.since_ms()
        self._counts = Counter(k for k in self._printed if k[0] >= cutoff)


def format_event(event: dict[str, Any]) -> str:
    """One log line as the command prints it (a line of an environment's
    init, before any invocation, has no request id)."""
    stamp = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, UTC)
    text = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    request_id = event.get("request_id") or ""
    message = str(event.get("message", "")).rstrip("\n")
    return " ".join(part for part in (text, request_id, message) if part)


def logs_url(
    endpoint: str, function_name: str, since: str, follow: bool, region: str, account: str
) -> str:
    query = {"since": since, "follow": "1" if follow else "", "region": region, "account": account}
    encoded = urllib.parse.urlencode({k: v for k, v in query.items() if v})
    name = urllib.parse.quote(function_name, safe="")
    return f"{endpoint.rstrip('/')}/_fleet/logs/{name}" + (f"?{encoded}" if encoded else "")


class _Lost(Exception):
    """The stream broke, or the control plane is away: try again."""


def _error_message(exc: urllib.error.HTTPError) -> str:
    with exc:
        body = exc.read().decode(errors="replace")
    try:
        message = json.loads(body).get("message", body)
    except (ValueError, AttributeError):
        message = body
    return str(message)


def run(
    endpoint: str,
    function_name: str,
    *,
    since: str = "",
    follow: bool = False,
    region: str = "",
    account: str = "",
    out: IO[str] = sys.stdout,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    if not follow:
        url = logs_url(endpoint, function_name, since, follow, region, account)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                for raw in response:
                    if raw.strip():
                        print(format_event(json.loads(raw)), file=out, flush=True)
        except urllib.error.HTTPError as exc:
            print(f"lambdafleet logs: {_error_message(exc)}", file=sys.stderr)
            return 1
        except urllib.error.URLError as exc:
            print(f"lambdafleet logs: cannot reach {endpoint}: {exc.reason}", file=sys.stderr)
            return 1
        except (http.client.HTTPException, OSError) as exc:
            print(f"lambdafleet logs: the stream broke: {exc!r}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        return 0
    return _follow(endpoint, function_name, since, region, account, out, sleep)


def _follow(
    endpoint: str,
    function_name: str,
    since: str,
    region: str,
    account: str,
    out: IO[str],
    sleep: Callable[[float], None],
) -> int:
    resume: Resume | None = None
    backoff = BACKOFF_S[0]
    announced = False
    try:
        while True:
            # The user's `since` the first time (any form the gateway
            # takes); then Unix ms from what was printed.
            start = since if resume is None else str(resume.since_ms())
            url = logs_url(endpoint, function_name, start, True, region, account)
            try:
                # No timeout: lines may be minutes apart.
                with urllib.request.urlopen(url, timeout=None) as response:
                    if resume is None:
                        resume = Resume()
                    else:
                        resume.reconnecting()
                    backoff, announced = BACKOFF_S[0], False
                    for raw in response:
                        if not raw.strip():
                            continue
                        event = json.loads(raw)
                        if resume.fresh(event):
                            print(format_event(event), file=out, flush=True)
                            resume.printed(event)
                # A follow never ends by itself: its server went away.
                raise _Lost("the stream ended")
            except urllib.error.HTTPError as exc:
                message = _error_message(exc)
                if resume is None or exc.code not in _UNAVAILABLE:
                    print(f"lambdafleet logs: {message}", file=sys.stderr)
                    return 1
                reason = message
            except urllib.error.URLError as exc:
                if resume is None:
                    print(
                        f"lambdafleet logs: cannot reach {endpoint}: {exc.reason}", file=sys.stderr
                    )
                    return 1
                reason = str(exc.reason)
            except (_Lost, http.client.HTTPException, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            if not announced:
                print(f"lambdafleet logs: {reason}; reconnecting", file=sys.stderr, flush=True)
                announced = True
            sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])
    except KeyboardInterrupt:
        return 130
