"""Event attempts a control plane finds in flight when it starts (pure).

Before an event's attempt leaves for a worker, its row records the worker
and the invocation id (dispatcher.py); the answer clears it. A row that
still has one when the control plane starts was cut short by a crash or a
restart, but its attempt may well have run, or still run, on the worker,
which keeps such results and reports them when it registers again
(worker/agent.py): the results it kept, sent before its first heartbeat,
and in its register the attempts still running. So instead of running such
events again at once (a duplicate each), the dispatcher waits:

- the result comes: the event settles with it, as if never interrupted;
- the worker's first heartbeat comes without it, and the worker does not
  say it runs it: it never arrived, or its result is gone; run it again;
- it runs there: wait for its result until its deadline (plus a margin);
- the worker does not come back within the grace: run it again.

No I/O here: the dispatcher feeds the stimuli and executes the releases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .store import Scope

# After the attempt's own deadline, how long a result may still take to come
# (the worker ends a timed-out invocation itself, then answers).
ANSWER_MARGIN_MS = 30_000


@dataclass(frozen=True)
class InFlight:
    """One attempt recorded as sent and never answered."""

    scope: Scope
    request_id: str
    worker_id: str
    invocation_id: str
    # When the attempt times out on the worker (Unix ms).
    deadline_unix_ms: int


class Resumption:
    """The attempts awaited, each until its worker reports it or time runs out."""

    def __init__(self, grace_ms: int, margin_ms: int = ANSWER_MARGIN_MS) -> None:
        self.grace_ms = grace_ms
        self.margin_ms = margin_ms
        # invocation id -> (attempt, wait until, Unix ms)
        self._awaited: dict[str, tuple[InFlight, int]] = {}

    def __len__(self) -> int:
        return len(self._awaited)

    def add(self, attempt: InFlight, now_ms: int) -> None:
        """Await `attempt`: its worker has the grace to come back."""
        self._awaited[attempt.invocation_id] = (attempt, now_ms + self.grace_ms)

    def take(self, worker_id: str, invocation_id: str) -> InFlight | None:
        """A result came from `worker_id`: the attempt it answers, if awaited
        (and sent to that worker); no longer awaited."""
        entry = self._awaited.get(invocation_id)
        if entry is None or entry[0].worker_id != worker_id:
            return None
        del self._awaited[invocation_id]
        return entry[0]

    def worker_ready(self, worker_id: str, running: Iterable[str], now_ms: int) -> list[InFlight]:
        """`worker_id`'s session is ready (its kept results came before):
        the attempts it neither answered nor runs are released; those it
        runs are awaited until their deadline."""
        still = set(running)
        released = []
        for invocation_id, (attempt, until) in list(self._awaited.items()):
            if attempt.worker_id != worker_id:
                continue
            if invocation_id in still:
                answer_by = max(attempt.deadline_unix_ms, now_ms) + self.margin_ms
                self._awaited[invocation_id] = (attempt, max(until, answer_by))
            else:
                del self._awaited[invocation_id]
                released.append(attempt)
        return released

    def expired(self, now_ms: int) -> list[InFlight]:
        """The attempts waited for long enough: released."""
        released = [a for a, until in self._awaited.values() if until <= now_ms]
        for attempt in released:
            del self._awaited[attempt.invocation_id]
        return released

    def next_deadline(self) -> int | None:
        """When the next attempt runs out of time (Unix ms), if any is awaited."""
        return min((until for _, until in self._awaited.values()), default=None)
