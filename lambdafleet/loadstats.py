"""What `lambdafleet bench` measured, summarised: pure functions over the
samples the load generator records, so the numbers it prints are tested
without a cluster."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Sample:
    """One invocation as the caller saw it."""

    started_s: float  # since the run began
    latency_ms: float
    # "" for success; otherwise what failed: "Unhandled:<errorType>" for a
    # function error, the AWS error code for an API error (e.g.
    # "TooManyRequestsException"), or "ConnectionError" when no answer came.
    error: str = ""
    cold_start: bool = False


@dataclass
class Summary:
    count: int
    duration_s: float
    throughput_per_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    cold_starts: int
    cold_start_p50_ms: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "duration_s": round(self.duration_s, 3),
            "throughput_per_s": round(self.throughput_per_s, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "errors": dict(self.errors),
            "error_count": self.error_count,
            "cold_starts": self.cold_starts,
            "cold_start_p50_ms": (
                None if self.cold_start_p50_ms is None else round(self.cold_start_p50_ms, 3)
            ),
            **self.extra,
        }


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile by linear interpolation between the closest ranks
    (numpy's default), of values in any order; nan for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(samples: Sequence[Sample], duration_s: float) -> Summary:
    latencies = [s.latency_ms for s in samples]
    latency = {"min": min(latencies, default=math.nan)}
    for p in PERCENTILES:
        latency[f"p{p:g}"] = percentile(latencies, p)
    latency["max"] = max(latencies, default=math.nan)
    latency["mean"] = sum(latencies) / len(latencies) if latencies else math.nan
    cold = [s.latency_ms for s in samples if s.cold_start]
    return Summary(
        count=len(samples),
        duration_s=duration_s,
        throughput_per_s=len(samples) / duration_s if duration_s > 0 else 0.0,
        latency_ms=latency,
        errors=dict(Counter(s.error for s in samples if s.error).most_common()),
        cold_starts=len(cold),
        cold_start_p50_ms=percentile(cold, 50) if cold else None,
    )


def render(summary: Summary, title: str = "") -> str:
    """The table `lambdafleet bench` prints at the end."""
    rows: list[tuple[str, str]] = [
        ("invocations", f"{summary.count}"),
        ("duration", f"{summary.duration_s:.2f} s"),
        ("throughput", f"{summary.throughput_per_s:.1f} /s"),
    ]
    for key, value in summary.latency_ms.items():
        rows.append((f"latency {key}", f"{value:.2f} ms"))
    rows.append(("cold starts", f"{summary.cold_starts}"))
    if summary.cold_start_p50_ms is not None:
        rows.append(("cold start p50", f"{summary.cold_start_p50_ms:.2f} ms"))
    rows.append(("errors", f"{summary.error_count}"))
    for error, n in summary.errors.items():
        rows.append((f"  {error}", f"{n}"))
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"{k:<{width}}  {v:>12}" for k, v in rows]
    return "\n".join(lines)


def progress_line(samples: Sequence[Sample], elapsed_s: float, window_s: float = 2.0) -> str:
    """The live line: totals, and rate and latency over the last seconds."""
    recent = [s for s in samples if s.started_s >= elapsed_s - window_s]
    rate = len(recent) / min(window_s, elapsed_s) if elapsed_s > 0 else 0.0
    p50 = percentile([s.latency_ms for s in recent], 50)
    p99 = percentile([s.latency_ms for s in recent], 99)
    errors = sum(1 for s in samples if s.error)
    cold = sum(1 for s in samples if s.cold_start)
    latency = f"p50 {p50:.1f} ms p99 {p99:.1f} ms" if recent else "p50 - p99 -"
    return (
        f"{elapsed_s:6.1f} s  {len(samples):>8} done  {rate:8.1f}/s  {latency}  "
        f"errors {errors}  cold {cold}"
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'30', '30s', '500ms', '2m', '1h' -> seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 500ms, 2m)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def send_times(rate: float, count: int) -> list[float]:
    """When each of `count` invocations is due (seconds from the start) at a
    steady `rate` per second: an open-loop schedule, so a slow answer does
    not slow the callers down (coordinated omission)."""
    return [i / rate for i in range(count)]


def function_error(payload: bytes) -> str:
    """'Unhandled:<errorType>' from a function error's payload."""
    import json

    try:
        doc = json.loads(payload)
    except ValueError:
        doc = None
    kind = doc.get("errorType") if isinstance(doc, dict) else None
    return f"Unhandled:{kind}" if kind else "Unhandled"
