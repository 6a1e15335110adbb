"""Every function's log lines, as the control plane keeps them: in memory,
the last `per_function` lines of each function (of all its versions and
environments, from every worker), for at most `max_functions` functions.

Pure: no asyncio, no gRPC. Lines keep their arrival order (a worker ships an
environment's lines in the order it wrote them; the ring never reorders), and
each gets a sequence number, so a follower asks for what came after the last
one it saw. Readers learn of new lines through listeners.

Kept after the function is deleted, as CloudWatch Logs keeps a deleted
function's log group: a function created again under the same name continues
the same log. Not persisted: a control plane restart starts empty.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lambdafleet.agent.v1 import agent_pb2 as apb

DEFAULT_PER_FUNCTION = 10_000
DEFAULT_MAX_FUNCTIONS = 1_000


@dataclass(frozen=True, order=True)
class LogKey:
    """One function's log: CloudWatch's log group /aws/lambda/<name> of an
    account and region."""

    account_id: str
    region: str
    function_name: str


def key_of(function_arn: str) -> LogKey | None:
    """arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]."""
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[5] != "function":
        return None
    return LogKey(parts[4], parts[3], parts[6])


@dataclass(frozen=True)
class StoredLine:
    seq: int
    timestamp_ms: int
    request_id: str
    log_stream: str
    message: str
    version: str


@dataclass
class _Log:
    lines: deque[StoredLine]
    listeners: set[Callable[[], None]] = field(default_factory=set)


class FunctionLogs:
    def __init__(
        self,
        per_function: int = DEFAULT_PER_FUNCTION,
        max_functions: int = DEFAULT_MAX_FUNCTIONS,
    ) -> None:
        self.per_function = per_function
        self.max_functions = max_functions
        # Least recently written first: the one evicted past max_functions.
        self._logs: OrderedDict[LogKey, _Log] = OrderedDict()
        self._seq = 0
        # Lines workers said they dropped under backpressure.
        self.dropped = 0

    def add(self, lines: Iterable[apb.LogLine]) -> int:
        """Keep the lines of a worker's batch; answer how many were kept."""
        touched: set[LogKey] = set()
        kept = 0
        for line in lines:
            key = key_of(line.function_arn)
            if key is None:
                continue
            log = self._log(key)
            self._seq += 1
            log.lines.append(
                StoredLine(
                    seq=self._seq,
                    timestamp_ms=line.timestamp_ms,
                    request_id=line.request_id,
                    log_stream=line.log_stream,
                    message=line.message,
                    version=line.version,
                )
            )
            touched.add(key)
            kept += 1
        for key in touched:
            for listener in list(self._logs[key].listeners):
                listener()
        return kept

    def _log(self, key: LogKey) -> _Log:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log(deque(maxlen=self.per_function))
            while len(self._logs) > self.max_functions:
                # The least recently written log nobody follows goes.
                victim = next(
                    (k for k, e in self._logs.items() if not e.listeners and k != key), None
                )
                if victim is None:
                    break
                del self._logs[victim]
        else:
            self._logs.move_to_end(key)
        return log

    def has(self, key: LogKey) -> bool:
        log = self._logs.get(key)
        return log is not None and bool(log.lines)

    def read(self, key: LogKey, since_ms: int = 0, after_seq: int = 0) -> list[StoredLine]:
        """The kept lines of `key` stamped at or after `since_ms` that came
        after sequence number `after_seq`, oldest first."""
        log = self._logs.get(key)
        if log is None:
            return []
        return [
            line for line in log.lines if line.seq > after_seq and line.timestamp_ms >= since_ms
        ]

    def subscribe(self, key: LogKey, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` whenever lines of `key` arrive; answer the
        function that stops it."""
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log(deque(maxlen=self.per_function))
        log.listeners.add(listener)

        def unsubscribe() -> None:
            entry = self._logs.get(key)
            if entry is not None:
                entry.listeners.discard(listener)
                if not entry.lines and not entry.listeners:
                    del self._logs[key]

        return unsubscribe

    def __len__(self) -> int:
        return len(self._logs)
