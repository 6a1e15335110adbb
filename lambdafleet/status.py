"""`lambdafleet status`: the cluster at a glance, from the gateway's
`/_fleet/status` and `/_fleet/functions`. Fetching is at the edge; `render`
is pure, so its layout is tested without a cluster."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from typing import Any

_STATES = ("STARTING", "READY", "INVOKING")


class StatusError(Exception):
    """The gateway or its control plane could not answer."""


def _get(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        with exc:
            detail = exc.read().decode(errors="replace")[:300]
        raise StatusError(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusError(f"cannot reach {url}: {reason}") from None


def fetch(endpoint: str, timeout: float = 5.0) -> dict[str, Any]:
    """{"endpoint", "status", "functions"}: what `render` and --json show."""
    base = endpoint.rstrip("/")
    status = _get(f"{base}/_fleet/status", timeout)
    functions = _get(f"{base}/_fleet/functions", timeout).get("functions", [])
    return {"endpoint": base, "status": status, "functions": functions}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Left-aligned columns, two spaces apart."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _age(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _name(arn: str) -> str:
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


def render(view: dict[str, Any]) -> str:
    status, functions = view["status"], view["functions"]
    workers = status.get("workers", [])
    lines = [
        f"lambdafleet at {view['endpoint']}: {status.get('live_workers', 0)} live worker(s), "
        f"{len(functions)} function(s), {status.get('queued_events', 0)} queued event(s)",
        "",
        "WORKERS",
    ]
    if workers:
        lines += table(
            ["ID", "STATE", "IN FLIGHT", "MEMORY", "ENVIRONMENTS", "PRESTARTED", "HEARTBEAT"],
            [
                [
                    w["worker_id"],
                    "draining" if w.get("draining") else "live",
                    f"{w.get('in_flight', 0)}/{w.get('capacity', 0)}",
                    f"{w.get('memory_mb', 0)} MB",
                    len(w.get("environments", [])),
                    w.get("prestarted", 0),
                    _age(int(w.get("heartbeat_age_ms", 0))),
                ]
                for w in workers
            ],
        )
    else:
        lines.append("(no live worker)")

    # Environments per function version and worker, counted by state.
    counts: dict[tuple[str, str, str], Counter[str]] = {}
    for w in workers:
        for env in w.get("environments", []):
            key = (_name(env["function_arn"]), env.get("version", ""), w["worker_id"])
            state = str(env.get("state", "")).removeprefix("ENVIRONMENT_STATE_")
            counter = counts.setdefault(key, Counter())
            counter[state] += 1
            counter["PROVISIONED"] += bool(env.get("provisioned"))
    lines += ["", "ENVIRONMENTS"]
    if counts:
        lines += table(
            ["FUNCTION", "VERSION", "WORKER", *_STATES, "PROVISIONED"],
            [
                [*key, *(c[s] for s in _STATES), c["PROVISIONED"]]
                for key, c in sorted(counts.items())
            ],
        )
    else:
        lines.append("(none)")

    lines += ["", "FUNCTIONS"]
    if functions:
        lines += table(
            ["FUNCTION", "ACCOUNT", "REGION", "STATE", "RUNTIME", "VERSIONS", "RESERVED", "PROV."],
            [
                [
                    f["function_name"],
                    f["account_id"],
                    f["region"],
                    f.get("state") or "?",
                    f.get("runtime") or "image",
                    f.get("versions", 0),
                    f.get("reserved_concurrency", "-"),
                    f"{f.get('provisioned_ready', 0)}/{f['provisioned_concurrency']}"
                    if f.get("provisioned_concurrency")
                    else "-",
                ]
                for f in functions
            ],
        )
    else:
        lines.append("(none)")
    return "\n".join(lines) + "\n"
