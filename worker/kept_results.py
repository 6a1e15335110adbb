"""Results of Event attempts the worker keeps, to send again after a
reconnect (pure: no asyncio, no gRPC).

A result written to the session may still be lost with the control plane
before it stored it (SIGKILL), and one that finishes while the control plane
is down has no session to go to. Nothing acknowledges a result, so the
worker keeps the recent ones and sends them all again right after it
registers; the control plane takes those of attempts it still awaits
(control_plane/resumption.py) and ignores the rest. Bounded by age, count
and bytes: an outage longer than the age costs a second run of the events
then finished, never a lost one.
"""

from __future__ import annotations

from collections import OrderedDict

from lambdafleet.agent.v1 import agent_pb2 as apb

MAX_AGE_S = 900.0
MAX_COUNT = 10_000
MAX_BYTES = 64 * 1024 * 1024


class KeptResults:
    def __init__(
        self, max_age_s: float = MAX_AGE_S, max_count: int = MAX_COUNT, max_bytes: int = MAX_BYTES
    ) -> None:
        self.max_age_s = max_age_s
        self.max_count = max_count
        self.max_bytes = max_bytes
        # invocation id -> (kept at, result), oldest first.
        self._results: OrderedDict[str, tuple[float, apb.InvokeResult]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._results)

    def add(self, result: apb.InvokeResult, now: float) -> None:
        size = result.ByteSize()
        if size > self.max_bytes:
            return  # the event then runs again after an outage
        previous = self._results.pop(result.invocation_id, None)
        if previous is not None:
            self._bytes -= previous[1].ByteSize()
        self._results[result.invocation_id] = (now, result)
        self._bytes += size
        self._prune(now)

    def all(self, now: float) -> list[apb.InvokeResult]:
        """Every result kept, oldest first."""
        self._prune(now)
        return [result for _, result in self._results.values()]

    def _prune(self, now: float) -> None:
        while self._results:
            kept_at, oldest = next(iter(self._results.values()))
            if (
                now - kept_at <= self.max_age_s
                and len(self._results) <= self.max_count
                and self._bytes <= self.max_bytes
            ):
                return
            self._results.popitem(last=False)
            self._bytes -= oldest.ByteSize()
