"""Choosing the worker for an invocation: a pure function of a snapshot.

Order of preference, as the scheduling design asks: for an invocation
holding a provisioned lease, a worker with an idle provisioned environment
of its function version; then a worker holding an idle
warm environment of the same function version; otherwise the worker with the
most free memory that can run the architecture. A worker never gets more
invocations in flight than its capacity.

A worker takes work for a runtime only once its image is ready there: while
any worker has it ready, the others (a worker that just joined, still
building it) are passed over, even when that means waiting for room. Only
when no worker has it ready does any worker take it, making the image while
the call waits, so that a fleet where nobody has it yet still runs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerSnapshot:
    worker_id: str
    capacity: int
    memory_mb: int
    in_flight: int
    # Memory held by environments that currently run an invocation.
    busy_memory_mb: int
    architectures: frozenset[str]
    # Idle warm environments per environment key (function version + revision).
    idle: Mapping[str, int] = field(default_factory=dict)
    # Idle provisioned environments per key: only invocations holding a
    # provisioned lease run in them.
    provisioned_idle: Mapping[str, int] = field(default_factory=dict)
    # Runtimes whose image is ready on the worker's daemon.
    ready_runtimes: frozenset[str] = frozenset()

    @property
    def free_memory_mb(self) -> int:
        return self.memory_mb - self.busy_memory_mb


def place(
    workers: Iterable[WorkerSnapshot],
    env_key: str,
    memory_mb: int,
    architecture: str,
    provisioned: bool = False,
    runtime: str = "",
) -> str | None:
    """The id of the worker to run on, or None when every worker is full.
    An invocation with a `provisioned` lease goes first to a worker with an
    idle provisioned environment of its key. `runtime` is the function's
    ("" for an image function, which any worker may run)."""
    able = [w for w in workers if architecture in w.architectures]
    if runtime and any(runtime in w.ready_runtimes for w in able):
        able = [w for w in able if runtime in w.ready_runtimes]
    candidates = [w for w in able if w.in_flight < w.capacity and w.free_memory_mb >= memory_mb]
    if not candidates:
        return None
    ready = [w for w in candidates if provisioned and w.provisioned_idle.get(env_key, 0) > 0]
    warm = [w for w in candidates if w.idle.get(env_key, 0) > 0]
    pool = ready or warm or candidates
    # Ties break on fewest invocations in flight, then the id, so that the
    # choice is deterministic for a given snapshot.
    best = max(pool, key=lambda w: (w.free_memory_mb, -w.in_flight, w.worker_id))
    return best.worker_id
