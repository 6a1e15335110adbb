"""Function log lines on their way to the control plane: buffered, sent in
batches over the worker's session stream, never in an invocation's way.

`add` only appends to a bounded buffer. A loop sends what is buffered every
`interval_s`, or sooner once `batch_lines` are waiting. While the session's
outbox is backed up (the control plane or the network is slow) or there is no
session, lines wait; past `max_lines` the oldest are dropped and counted, and
the count travels with the next batch and into a warning.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb

log = structlog.get_logger(__name__)

INTERVAL_S = 0.1
BATCH_LINES = 256
MAX_LINES = 20_000
# Messages waiting in the session's outbox beyond which no batch is added.
MAX_OUTBOX = 64

Outbox = asyncio.Queue[apb.ConnectRequest]


class LogShipper:
    def __init__(
        self,
        outbox: Callable[[], Outbox | None],
        *,
        interval_s: float = INTERVAL_S,
        batch_lines: int = BATCH_LINES,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.outbox = outbox
        self.interval_s = interval_s
        self.batch_lines = batch_lines
        self._lines: deque[apb.LogLine] = deque(maxlen=max_lines)
        self._dropped = 0
        self._dropped_total = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, line: apb.LogLine) -> None:
        if len(self._lines) == self._lines.maxlen:
            self._dropped += 1  # the deque drops the oldest
        self._lines.append(line)
        if len(self._lines) >= self.batch_lines:
            self._wake.set()

    @property
    def dropped(self) -> int:
        return self._dropped_total + self._dropped

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-shipper")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Send what is buffered now, if the session can take it."""
        outbox = self.outbox()
        if outbox is None or not self._lines or outbox.qsize() > MAX_OUTBOX:
            return False
        while self._lines:
            lines = [self._lines.popleft() for _ in range(min(self.batch_lines, len(self._lines)))]
            batch = apb.LogBatch(lines=lines, dropped=self._dropped)
            if self._dropped:
                log.warning("logs.dropped", lines=self._dropped)
                self._dropped_total += self._dropped
                self._dropped = 0
            outbox.put_nowait(apb.ConnectRequest(log_batch=batch))
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.flush()
