"""Finished invocations: what the control plane remembers of each, and a
bounded ring of the latest ones for the dashboard. Pure: no I/O, no clock."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

RECENT_CAPACITY = 500


class Outcome(enum.StrEnum):
    """How an invocation ended; the values are the metrics' label values."""

    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"
    THROTTLED = "throttled"
    SERVICE_ERROR = "service_error"

    @property
    def ran(self) -> bool:
        """The function ran (its duration is a run time, not a refusal's)."""
        return self in (Outcome.SUCCESS, Outcome.FUNCTION_ERROR)

    @property
    def error(self) -> bool:
        return self in (Outcome.FUNCTION_ERROR, Outcome.SERVICE_ERROR)


@dataclass(frozen=True, slots=True)
class Finished:
    """One finished invocation (or one attempt of an asynchronous event)."""

    request_id: str
    account_id: str
    region: str
    function_name: str
    # The version or alias invoked; "" when unqualified.
    qualifier: str
    executed_version: str
    # "" when it was never placed on a worker.
    worker_id: str
    start_unix_ms: int
    duration_s: float
    outcome: Outcome
    error_type: str = ""
    cold_start: bool = False
    asynchronous: bool = False


def qualifier_of(invoked_arn: str) -> str:
    """The qualifier of an invoked function ARN; "" when it has none."""
    parts = invoked_arn.split(":")
    return parts[7] if len(parts) > 7 else ""


class RecentInvocations:
    """The last `capacity` finished invocations; the oldest drop off."""

    def __init__(self, capacity: int = RECENT_CAPACITY) -> None:
        self.capacity = capacity
        self._ring: deque[Finished] = deque(maxlen=capacity)

    def add(self, finished: Finished) -> None:
        self._ring.append(finished)

    def latest(self, limit: int = 0, function_name: str = "") -> list[Finished]:
        """Newest first: at most `limit` (0: all), of one function when named."""
        out = []
        for finished in reversed(self._ring):
            if function_name and finished.function_name != function_name:
                continue
            out.append(finished)
            if limit and len(out) >= limit:
                break
        return out

    def __len__(self) -> int:
        return len(self._ring)
