"""Invocations over a sliding window of seconds: rate, errors and latency
percentiles for the dashboard. Pure and synchronous: the caller passes the
time, so tests need no clock.

Each second is a slot of a ring; a slot holds counts and a sparse histogram
of durations in geometric buckets (ratio 1.1), so recording is a few integer
operations whatever the rate, and a percentile is exact to within the
bucket's width (a few percent).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# The smallest bucket ends at 0.1 ms; each next one is 10 % wider.
_BASE_MS = 0.1
_RATIO = 1.1
_LOG_RATIO = math.log(_RATIO)
MAX_WINDOW_S = 300


def bucket_of(ms: float) -> int:
    """The bucket a duration falls in: bucket i holds (B*r^(i-1), B*r^i]."""
    if ms <= _BASE_MS:
        return 0
    return math.ceil(math.log(ms / _BASE_MS) / _LOG_RATIO - 1e-9)


def _bucket_bounds(index: int) -> tuple[float, float]:
    upper = _BASE_MS * _RATIO**index
    return (0.0 if index == 0 else upper / _RATIO), upper


def percentile(histogram: Counter[int], q: float) -> float:
    """The q-quantile (0 < q <= 1) of the durations in `histogram`,
    interpolated geometrically inside its bucket; 0 when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for index in sorted(histogram):
        count = histogram[index]
        if seen + count >= rank:
            lower, upper = _bucket_bounds(index)
            if lower == 0.0:
                return upper
            fraction = (rank - seen) / count
            return float(lower * (upper / lower) ** fraction)
        seen += count
    return _bucket_bounds(max(histogram))[1]


@dataclass
class _Second:
    second: int = -1
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    durations: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class SecondStats:
    unix_second: int
    invocations: int
    errors: int
    throttles: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class WindowStats:
    window_s: int
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    rate_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    seconds: list[SecondStats]


class SlidingWindow:
    """The last `size_s` seconds of invocations, one slot per second."""

    def __init__(self, size_s: int = MAX_WINDOW_S) -> None:
        self.size_s = size_s
        self._slots = [_Second() for _ in range(size_s)]

    def _slot(self, second: int) -> _Second:
        slot = self._slots[second % self.size_s]
        if slot.second != second:
            slot.second = second
            slot.invocations = slot.errors = slot.throttles = slot.cold_starts = 0
            slot.durations = Counter()
        return slot

    def add(
        self,
        now_s: float,
        duration_ms: float | None,
        *,
        error: bool = False,
        throttled: bool = False,
        cold_start: bool = False,
    ) -> None:
        """One finished invocation; `duration_ms` None when it never ran
        (a throttle, a service error before placement): it counts, but
        stays out of the latency percentiles."""
        slot = self._slot(int(now_s))
        slot.invocations += 1
        slot.errors += error
        slot.throttles += throttled
        slot.cold_starts += cold_start
        if duration_ms is not None:
            slot.durations[bucket_of(duration_ms)] += 1

    def _window(self, now_s: float, window_s: int) -> Iterable[_Second]:
        now = int(now_s)
        for second in range(now - window_s + 1, now + 1):
            slot = self._slots[second % self.size_s]
            yield slot if slot.second == second else _Second(second=second)

    def stats(self, now_s: float, window_s: int = 60) -> WindowStats:
        """The window of `window_s` seconds ending with the current second."""
        window_s = max(1, min(window_s, self.size_s))
        merged: Counter[int] = Counter()
        seconds = []
        invocations = errors = throttles = cold = 0
        for slot in self._window(now_s, window_s):
            merged.update(slot.durations)
            invocations += slot.invocations
            errors += slot.errors
            throttles += slot.throttles
            cold += slot.cold_starts
            seconds.append(
                SecondStats(
                    unix_second=slot.second,
                    invocations=slot.invocations,
                    errors=slot.errors,
                    throttles=slot.throttles,
                    p50_ms=percentile(slot.durations, 0.5),
                    p99_ms=percentile(slot.durations, 0.99),
                )
            )
        return WindowStats(
            window_s=window_s,
            invocations=invocations,
            errors=errors,
            throttles=throttles,
            cold_starts=cold,
            rate_per_s=invocations / window_s,
            p50_ms=percentile(merged, 0.5),
            p90_ms=percentile(merged, 0.9),
            p99_ms=percentile(merged, 0.99),
            seconds=seconds,
        )
