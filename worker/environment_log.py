"""The log of one execution environment, as AWS writes a log stream:
`START` when an invocation is handed to the runtime, the runtime's output
lines, then `END` and `REPORT` once the invocation is answered and its output
has arrived.

The runtime's output reaches the worker through Docker, on its own path: the
runtime's answer may come in before its last lines. So `END`/`REPORT` are
written when the invocation is closed (`close`), which the pool does once the
output has gone quiet (only a caller who asked for the tail waits for that),
or at once when the next invocation begins on the environment.

No I/O and no asyncio: lines go to `emit`, timestamps come from `clock`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from lambdafleet.agent.v1 import agent_pb2 as apb

from . import invocation_log

STREAMS = ("stdout", "stderr")
# Closed invocations whose log text is kept for a late LogResult: one
# environment runs one invocation at a time, so only the previous one or two
# can still have a caller waiting for its tail.
CLOSED_KEPT = 4
# What a hidden value reads as in the log.
HIDDEN_MARK = "****"


@dataclass
class Outcome:
    """How an invocation ended, for its REPORT."""

    duration_ms: float
    # "" for an answer; "timeout" or "error" (the runtime died) otherwise.
    status: str = ""
    error_type: str = ""


@dataclass
class _Open:
    """An invocation whose END and REPORT are not written yet."""

    request_id: str
    init_duration_ms: float | None
    # START and the output so far: the tail a Tail caller gets.
    lines: list[str] = field(default_factory=list)
    outcome: Outcome | None = None


class EnvironmentLog:
    def __init__(
        self,
        *,
        function_arn: str,
        version: str,
        log_stream: str,
        memory_size_mb: int,
        truncate_at: int,
        emit: Callable[[apb.LogLine], None],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        hidden: str = "",
    ) -> None:
        self.function_arn = function_arn
        self.version = version
        self.log_stream = log_stream
        self.memory_size_mb = memory_size_mb
        self.truncate_at = truncate_at
        self.emit = emit
        self.clock = clock
        self.monotonic = monotonic
        # Written over in the runtime's output (its Runtime API credential:
        # logs are public, the credential must stay in its container).
        self.hidden = hidden
        # When output last arrived (monotonic), for the pool's quiet wait.
        self.last_output = 0.0
        # The environment's peak memory as last read (REPORT's Max Memory Used).
        self.peak_mb: int | None = None
        self._splitters = {s: invocation_log.LineSplitter() for s in STREAMS}
        self._open: _Open | None = None
        # Lines after an invocation's END (late, past the quiet wait) carry
        # its request id; before the first invocation (init), none.
        self._last_request_id = ""
        # The log text of the last invocations closed, by request id: a
        # caller waiting for its tail still gets it when the next
        # invocation's START closed it first (concurrent callers).
        self._closed: OrderedDict[str, str] = OrderedDict()

    @property
    def open_request_id(self) -> str:
        return self._open.request_id if self._open is not None else ""

    def begin(self, request_id: str, init_duration_ms: float | None = None) -> None:
        """The invocation is handed to the runtime: write its START (after
        closing the previous one, whose output must be in by now: the runtime
        asked for more work only after answering)."""
        if self._open is not None:
            self.close(self._open.request_id)
        self._open = _Open(request_id, init_duration_ms)
        self._last_request_id = request_id
        self._write(request_id, invocation_log.start_line(request_id, self.version))

    def answered(self, request_id: str, outcome: Outcome) -> None:
        """How the invocation ended; the first word stands (a runtime's
        answer arriving just after its timeout does not undo the timeout)."""
        current = self._open
        if current is not None and current.request_id == request_id and current.outcome is None:
            current.outcome = outcome

    def output(self, stream: str, chunk: bytes, timestamp: float) -> None:
        """Bytes the runtime wrote to `stream` ("stdout" or "stderr")."""
        self.last_output = self.monotonic()
        for line in self._splitters[stream].feed(chunk):
            self._output_line(line, timestamp)

    def note(self, message: str) -> None:
        """A line the platform writes into the open invocation's log (AWS's
        `Task timed out after ...`)."""
        if self._open is not None:
            self._write(self._open.request_id, message)

    def tail(self, request_id: str) -> str:
        """The log text of `request_id` for LogResult, closing it if still
        open: also when the next invocation's START closed it first."""
        text = self.close(request_id)
        return text if text is not None else self._closed.get(request_id, "")

    def close(self, request_id: str) -> str | None:
        """Write END and REPORT of `request_id` if still open; answer its log
        text for LogResult (None when it was closed already)."""
        current = self._open
        if current is None or current.request_id != request_id:
            return None
        for splitter in self._splitters.values():
            for line in splitter.flush():
                self._output_line(line, self.clock())
        self._open = None
        outcome = current.outcome or Outcome(0.0, "error", "Runtime.Unknown")
        lines = current.lines
        self._write(request_id, invocation_log.end_line(request_id), lines)
        report = invocation_log.report_line(
            request_id,
            duration_ms=outcome.duration_ms,
            memory_size_mb=self.memory_size_mb,
            max_memory_used_mb=self.peak_mb or 0,
            init_duration_ms=current.init_duration_ms,
            status=outcome.status,
            error_type=outcome.error_type,
        )
        self._write(request_id, report, lines)
        text = invocation_log.tail(lines)
        self._closed[request_id] = text
        while len(self._closed) > CLOSED_KEPT:
            self._closed.popitem(last=False)
        return text

    def _output_line(self, line: str, timestamp: float) -> None:
        if self.hidden:
            line = line.replace(self.hidden, HIDDEN_MARK)
        message = invocation_log.truncate(invocation_log.event_message(line), self.truncate_at)
        request_id = self._open.request_id if self._open is not None else self._last_request_id
        self._write(request_id, message, timestamp=timestamp)

    def _write(
        self,
        request_id: str,
        message: str,
        lines: list[str] | None = None,
        timestamp: float | None = None,
    ) -> None:
        if lines is None and self._open is not None and self._open.request_id == request_id:
            lines = self._open.lines
        if lines is not None:
            lines.append(message)
        self.emit(
            apb.LogLine(
                function_arn=self.function_arn,
                version=self.version,
                request_id=request_id,
                log_stream=self.log_stream,
                timestamp_ms=int((self.clock() if timestamp is None else timestamp) * 1000),
                message=message,
            )
        )
