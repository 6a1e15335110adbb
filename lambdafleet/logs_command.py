"""`lambdafleet logs FUNCTION`: a function's logs from the control plane,
through the gateway's `GET /_fleet/logs/<name>`, one line per log line:
`2026-12-01T21:40:00.123Z <request id> <message>`."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import IO, Any


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


def run(
    endpoint: str,
    function_name: str,
    *,
    since: str = "",
    follow: bool = False,
    region: str = "",
    account: str = "",
    out: IO[str] = sys.stdout,
) -> int:
    url = logs_url(endpoint, function_name, since, follow, region, account)
    try:
        # No timeout while following: lines may be minutes apart.
        with urllib.request.urlopen(url, timeout=None if follow else 60) as response:
            for raw in response:
                if raw.strip():
                    print(format_event(json.loads(raw)), file=out, flush=True)
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read().decode(errors="replace")
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        print(f"lambdafleet logs: {message}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"lambdafleet logs: cannot reach {endpoint}: {exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
