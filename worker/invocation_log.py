"""The lines AWS writes around an invocation, and the function's own output
cut into lines: pure functions and a line splitter, no I/O.

Formats follow the recorded AWS answers (tests/data/aws-recorded/,
`TestLambdaBehavior` log events): `START RequestId: <id> Version: <v>`,
`END RequestId: <id>`, and `REPORT RequestId: <id>` followed by
tab-separated fields, each ending in a tab (`...\\tMax Memory Used: 36 MB\\t`
and, on a cold start, `Init Duration: 110.10 ms\\t`). Billed Duration is the
duration rounded up to the millisecond (recorded: 3.01 ms bills 4 ms, 2.90 ms
bills 3 ms).
"""

from __future__ import annotations

import math
import os

# LocalStack's name and default (2000 characters); see README, "Function logs".
TRUNCATE_ENV_VAR = "LAMBDA_TRUNCATE_STDOUT"
DEFAULT_TRUNCATE = 2000
# What AWS gives a caller who asked LogType=Tail: the last 4 KB.
TAIL_BYTES = 4096


def truncate_limit(environ: dict[str, str] | None = None) -> int:
    """LAMBDA_TRUNCATE_STDOUT as LocalStack reads it: a positive integer, else
    the default."""
    raw = (os.environ if environ is None else environ).get(TRUNCATE_ENV_VAR, "")
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_TRUNCATE
    return value if value > 0 else DEFAULT_TRUNCATE


def truncate(line: str, limit: int) -> str:
    """LocalStack's truncation: the first `limit` characters and `...`."""
    return f"{line[:limit]}..." if len(line) > limit else line


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def billed_ms(duration_ms: float) -> int:
    """AWS bills by the millisecond, rounding up; never less than 1 ms."""
    # Rounded to the hundredth first, as the REPORT shows it: 3.00 ms is
    # billed 3 ms even when measured as 3.0000001.
    return max(1, math.ceil(round(duration_ms, 2)))


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str = "",
    error_type: str = "",
) -> str:
    """AWS's REPORT line. `status` (`timeout`, `error`) and `error_type` are
    the fields AWS adds when an invocation did not end normally."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_size_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status:
        fields.append(f"Status: {status}")
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields) + "\t"


def event_message(line: str) -> str:
    """A line of output as its log event's message. awslambdaric (and
    lambdafleet's Node.js client) write a multi-line message, such as an
    error with its traceback, as one line whose line breaks are `\\r`, so
    that it stays one event; AWS's log holds that event with its line
    breaks (recorded: `[ERROR] CustomException: some error occurred\\n
    Traceback (most recent call last):\\n...`). A `\\r` that ends the line
    (a CRLF) is the line's end, not a break."""
    if line.endswith("\r"):
        line = line[:-1]
    return line.replace("\r", "\n")


def tail(lines: list[str], limit: int = TAIL_BYTES) -> str:
    """The log text of an invocation as LogResult carries it (each line ended
    by a newline), cut to its last `limit` bytes."""
    text = "".join(f"{line}\n" for line in lines).encode()
    return text[-limit:].decode(errors="ignore")


class LineSplitter:
    """Bytes from one output stream, cut into lines at `\\n` only: a `\\r`
    stays inside its line, which is one log event (awslambdaric joins the
    lines of a traceback with `\\r`: see event_message). A partial line
    waits for the rest; bytes are kept until a line is whole, so a
    character split across chunks survives."""

    def __init__(self, max_pending: int = 256 * 1024) -> None:
        self._pending = b""
        # A runtime writing one endless line must not grow the buffer without
        # bound: past this it is cut and counted as a line.
        self.max_pending = max_pending

    def feed(self, chunk: bytes) -> list[str]:
        data = self._pending + chunk
        *whole, self._pending = data.split(b"\n")
        if len(self._pending) > self.max_pending:
            whole.append(self._pending)
            self._pending = b""
        return [line.decode(errors="replace") for line in whole]

    def flush(self) -> list[str]:
        """What is left when the stream ends or the invocation's output is
        taken: a last line without its newline."""
        rest, self._pending = self._pending, b""
        return [rest.decode(errors="replace")] if rest else []

    @property
    def pending(self) -> bool:
        return bool(self._pending)
