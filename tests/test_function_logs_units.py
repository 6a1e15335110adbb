"""The pure parts of function logs: AWS's lines, the environment's log
sequence, the control plane's ring of lines, `since`, the CLI's lines, and the
worker's shipper and fake-backend path."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from lambdafleet.control_plane.function_logs import FunctionLogs, LogKey, key_of
from lambdafleet.gateway.fleet_logs import parse_since
from lambdafleet.worker import invocation_log as il
from lambdafleet.worker.backends import FAKE_PEAK_MEMORY_MB, FakeBackend, FakeConfig, FakeImages
from lambdafleet.worker.environment import log_stream_name
from lambdafleet.worker.environment_log import EnvironmentLog, Outcome
from lambdafleet.worker.log_shipper import LogShipper
from lambdafleet.worker.pool import Pool

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.logs_command import format_event, logs_url

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"

# -- AWS's lines ---------------------------------------------------------------


def test_report_line_is_the_recorded_one() -> None:
    # tests/data/aws-recorded/test_lambda.snapshot.json, TestLambdaBehavior log events.
    cold = il.report_line(
        "<request-id>",
        duration_ms=3.01,
        memory_size_mb=128,
        max_memory_used_mb=36,
        init_duration_ms=110.10,
    )
    assert cold == (
        "REPORT RequestId: <request-id>\tDuration: 3.01 ms\tBilled Duration: 4 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 36 MB\tInit Duration: 110.10 ms\t"
    )
    warm = il.report_line(
        "<request-id>", duration_ms=2.9, memory_size_mb=128, max_memory_used_mb=36
    )
    assert warm == (
        "REPORT RequestId: <request-id>\tDuration: 2.90 ms\tBilled Duration: 3 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 36 MB\t"
    )
    assert il.start_line("r", "$LATEST") == "START RequestId: r Version: $LATEST"
    assert il.end_line("r") == "END RequestId: r"


def test_a_timeout_report_says_so() -> None:
    line = il.report_line(
        "r", duration_ms=1000.0, memory_size_mb=128, max_memory_used_mb=30, status="timeout"
    )
    assert line.endswith("\tMax Memory Used: 30 MB\tStatus: timeout\t")


@pytest.mark.parametrize(
    ("duration", "billed"), [(3.01, 4), (2.90, 3), (3.0, 3), (3.0000001, 3), (0.04, 1), (12.34, 13)]
)
def test_billed_duration_rounds_up_to_the_millisecond(duration: float, billed: int) -> None:
    assert il.billed_ms(duration) == billed


def test_truncation_as_localstack() -> None:
    assert il.truncate("x" * 10, 10) == "x" * 10
    assert il.truncate("x" * 11, 10) == "x" * 10 + "..."
    assert il.truncate_limit({}) == 2000
    assert il.truncate_limit({"LAMBDA_TRUNCATE_STDOUT": "50"}) == 50
    assert il.truncate_limit({"LAMBDA_TRUNCATE_STDOUT": "junk"}) == 2000


def test_tail_is_the_last_4_kb() -> None:
    lines = [f"line {n:05d}" for n in range(1000)]
    text = il.tail(lines)
    assert len(text.encode()) == 4096
    assert text.endswith("line 00999\n")
    assert il.tail(["a", "b"]) == "a\nb\n"


def test_splitter_cuts_at_newlines_only_and_keeps_partial_lines() -> None:
    splitter = il.LineSplitter()
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.pending
    assert splitter.feed(b"o\nthree\r still three\n") == ["two", "three\r still three"]
    # A character split across chunks survives.
    euro = "€".encode()
    assert splitter.feed(euro[:1]) == []
    assert splitter.feed(euro[1:] + b"\n") == ["€"]
    assert splitter.feed(b"last") == []
    assert splitter.flush() == ["last"]
    assert splitter.flush() == []


def test_splitter_bounds_an_endless_line() -> None:
    splitter = il.LineSplitter(max_pending=10)
    assert splitter.feed(b"x" * 25) == ["x" * 25]
    assert not splitter.pending


def test_log_stream_name_is_awss() -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)
    assert log_stream_name("3", "abc", day) == "2026/12/01/[3]abc"


# -- one environment's log -------------------------------------------------------


def make_log(truncate_at: int = 2000) -> tuple[EnvironmentLog, list[apb.LogLine]]:
    out: list[apb.LogLine] = []
    log = EnvironmentLog(
        function_arn=ARN,
        version="$LATEST",
        log_stream="2026/12/01/[$LATEST]e1",
        memory_size_mb=128,
        truncate_at=truncate_at,
        emit=out.append,
        clock=lambda: 1000.0,
    )
    log.peak_mb = 40
    return log, out


def test_an_invocation_is_start_output_end_report() -> None:
    log, out = make_log()
    log.output("stderr", b"init output\n", 999.0)
    log.begin("r1", init_duration_ms=123.456)
    log.output("stdout", b"hello\nwor", 1000.5)
    log.answered("r1", Outcome(12.344))
    # Output that arrives after the answer is still the invocation's.
    log.output("stdout", b"ld\n", 1000.6)
    tail = log.close("r1")
    assert tail == (
        "START RequestId: r1 Version: $LATEST\nhello\nworld\nEND RequestId: r1\n"
        "REPORT RequestId: r1\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 123.46 ms\t\n"
    )
    assert [(line.request_id, line.message) for line in out][:2] == [
        ("", "init output"),
        ("r1", "START RequestId: r1 Version: $LATEST"),
    ]
    assert {line.log_stream for line in out} == {"2026/12/01/[$LATEST]e1"}
    assert out[2].timestamp_ms == 1000500
    assert log.close("r1") is None  # once


def test_the_next_invocation_closes_the_previous_first() -> None:
    log, out = make_log()
    log.begin("r1")
    log.output("stdout", b"partial", 1000.0)
    log.answered("r1", Outcome(1.0))
    log.begin("r2")
    log.output("stdout", b"two\n", 1000.0)
    log.answered("r2", Outcome(2.0))
    log.close("r2")
    messages = [line.message.split("\t")[0] for line in out]
    assert messages == [
        "START RequestId: r1 Version: $LATEST",
        "partial",
        "END RequestId: r1",
        "REPORT RequestId: r1",
        "START RequestId: r2 Version: $LATEST",
        "two",
        "END RequestId: r2",
        "REPORT RequestId: r2",
    ]
    # A late line, after END, carries the last request id.
    log.output("stdout", b"late\n", 1001.0)
    assert (out[-1].request_id, out[-1].message) == ("r2", "late")


def test_long_output_lines_are_truncated_but_not_awss() -> None:
    log, out = make_log(truncate_at=5)
    log.begin("request-id-longer-than-5")
    log.output("stdout", b"abcdefgh\n", 1000.0)
    log.answered("request-id-longer-than-5", Outcome(1.0))
    log.close("request-id-longer-than-5")
    assert out[1].message == "abcde..."
    assert out[0].message.startswith("START RequestId: request-id-longer-than-5")


# -- the control plane's ring ------------------------------------------------------


def line(name: str, n: int, ts: int, region: str = "us-east-1") -> apb.LogLine:
    return apb.LogLine(
        function_arn=f"arn:aws:lambda:{region}:000000000000:function:{name}",
        version="$LATEST",
        request_id=f"r{n}",
        log_stream="s",
        timestamp_ms=ts,
        message=f"m{n}",
    )


def test_ring_keeps_the_last_lines_per_function() -> None:
    logs = FunctionLogs(per_function=3)
    logs.add([line("f", n, 100 + n) for n in range(5)])
    logs.add([line("g", 9, 50)])
    key = LogKey("000000000000", "us-east-1", "f")
    assert [x.message for x in logs.read(key)] == ["m2", "m3", "m4"]
    assert [x.message for x in logs.read(key, since_ms=104)] == ["m4"]
    after = logs.read(key)[0].seq
    assert [x.message for x in logs.read(key, after_seq=after)] == ["m3", "m4"]
    assert [x.message for x in logs.read(LogKey("000000000000", "us-east-1", "g"))] == ["m9"]
    assert logs.read(LogKey("000000000000", "eu-west-1", "f")) == []


def test_ring_separates_regions_and_evicts_the_least_recent_function() -> None:
    logs = FunctionLogs(max_functions=2)
    logs.add([line("a", 1, 1)])
    logs.add([line("a", 2, 1, region="eu-west-1")])
    logs.add([line("b", 3, 1)])  # evicts a in us-east-1, written least recently
    assert not logs.has(LogKey("000000000000", "us-east-1", "a"))
    assert logs.has(LogKey("000000000000", "eu-west-1", "a"))
    assert logs.has(LogKey("000000000000", "us-east-1", "b"))


def test_listeners_hear_of_their_functions_lines_only() -> None:
    logs = FunctionLogs()
    heard: list[str] = []
    stop = logs.subscribe(LogKey("000000000000", "us-east-1", "f"), lambda: heard.append("f"))
    logs.add([line("g", 1, 1)])
    logs.add([line("f", 2, 1), line("f", 3, 1)])
    assert heard == ["f"]
    stop()
    logs.add([line("f", 4, 1)])
    assert heard == ["f"]
    assert key_of("not-an-arn") is None
    assert key_of(f"{ARN}:prod") == LogKey("000000000000", "us-east-1", "f")


# -- since, and the CLI's lines ------------------------------------------------------


def test_since_takes_ms_iso_and_durations() -> None:
    now = 1_800_000_000_000
    assert parse_since("", now) == 0
    assert parse_since("1700000000123", now) == 1_700_000_000_123
    assert parse_since("10m", now) == now - 600_000
    assert parse_since("1h30m", now) == now - 5_400_000
    assert parse_since("500ms", now) == now - 500
    assert parse_since("2d", now) == now - 172_800_000
    assert parse_since("2026-12-01T21:40:00.123Z", now) == 1_796_161_200_123
    assert parse_since("2026-12-01T21:40:00", now) == 1_796_161_200_000
    assert parse_since("2026-12-01T22:40:00+01:00", now) == 1_796_161_200_000
    with pytest.raises(ValueError):
        parse_since("yesterday", now)


def test_cli_lines() -> None:
    event: dict[str, Any] = {
        "timestamp": 1_796_161_200_123,
        "request_id": "r1",
        "log_stream": "s",
        "message": "START RequestId: r1 Version: $LATEST",
    }
    assert format_event(event) == "2026-12-01T21:40:00.123Z r1 START RequestId: r1 Version: $LATEST"
    assert format_event({**event, "request_id": ""}).startswith("2026-12-01T21:40:00.123Z START")
    assert (
        logs_url("http://h:1/", "f n", "10m", True, "", "")
        == "http://h:1/_fleet/logs/f%20n?since=10m&follow=1"
    )


# -- the worker: shipping, and the fake backend's path ------------------------------------


def test_shipper_batches_and_drops_the_oldest_under_backpressure() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[apb.ConnectRequest] = asyncio.Queue()
        present = False
        shipper = LogShipper(lambda: outbox if present else None, batch_lines=2, max_lines=3)
        for n in range(5):
            shipper.add(line("f", n, n))
        assert not shipper.flush()  # no session: the lines wait, the oldest go
        assert shipper.dropped == 2
        present = True
        assert shipper.flush()
        batches = [outbox.get_nowait().log_batch for _ in range(outbox.qsize())]
        assert [[x.message for x in b.lines] for b in batches] == [["m2", "m3"], ["m4"]]
        assert batches[0].dropped == 2 and batches[1].dropped == 0

    asyncio.run(run())


class NoCode:
    async def tar(self, sha: str) -> bytes:
        return b""


def test_fake_sandboxes_write_lines_and_a_tail_is_answered() -> None:
    async def run() -> None:
        pool: Pool
        sandboxes = FakeBackend(FakeConfig()).sandboxes("w1", lambda h: pool.lookup(h))
        pool = Pool(
            containers=sandboxes,
            images=FakeImages(),
            code=NoCode(),  # type: ignore[arg-type]
            runtime_api_host="127.0.0.1",
            runtime_api_port=0,
            capacity=4,
            keepalive_s=600,
            startup_timeout_s=5,
        )
        shipped: list[apb.LogLine] = []
        pool.emit_log = shipped.append
        sandboxes.watch_output(pool.on_container_output)
        spec = apb.FunctionSpec(
            function_arn=ARN,
            function_name="f",
            version="$LATEST",
            runtime="python3.11",
            handler="app.handler",
            memory_size=128,
            timeout=5,
            code_sha256="sha",
        )
        cold = await pool.invoke(
            apb.InvokeAssignment(invocation_id="i1", request_id="r1", function=spec, log_tail=True)
        )
        lines = cold.log_tail.splitlines()
        assert lines[:3] == [
            "START RequestId: r1 Version: $LATEST",
            "fake runtime: handling r1",
            "END RequestId: r1",
        ]
        assert re.fullmatch(
            r"REPORT RequestId: r1\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
            rf"Memory Size: 128 MB\tMax Memory Used: {FAKE_PEAK_MEMORY_MB} MB\t"
            r"Init Duration: \d+\.\d\d ms\t",
            lines[3],
        )
        warm = await pool.invoke(
            apb.InvokeAssignment(invocation_id="i2", request_id="r2", function=spec)
        )
        assert warm.log_tail == ""  # not asked for
        await pool.flush_logs()
        messages = [(x.request_id, x.message.split("\t")[0]) for x in shipped]
        assert messages == [
            ("", "fake runtime: init"),
            ("r1", "START RequestId: r1 Version: $LATEST"),
            ("r1", "fake runtime: handling r1"),
            ("r1", "END RequestId: r1"),
            ("r1", "REPORT RequestId: r1"),
            ("r2", "START RequestId: r2 Version: $LATEST"),
            ("r2", "fake runtime: handling r2"),
            ("r2", "END RequestId: r2"),
            ("r2", "REPORT RequestId: r2"),
        ]
        assert "Init Duration" not in shipped[-1].message
        await pool.close()

    asyncio.run(run())


def test_event_json_is_one_object_a_line() -> None:
    from lambdafleet.gateway.fleet_logs import event_json

    from lambdafleet.functions.v1 import functions_pb2 as pb

    text = event_json(pb.LogEvent(timestamp_ms=5, request_id="r", log_stream="s", message="m"))
    assert "\n" not in text
    assert json.loads(text) == {
        "timestamp": 5,
        "request_id": "r",
        "log_stream": "s",
        "message": "m",
    }


def fake_pool(capacity: int = 4) -> tuple[Pool, list[apb.LogLine]]:
    pool: Pool
    sandboxes = FakeBackend(FakeConfig()).sandboxes("w1", lambda h: pool.lookup(h))
    pool = Pool(
        containers=sandboxes,
        images=FakeImages(),
        code=NoCode(),  # type: ignore[arg-type]
        runtime_api_host="127.0.0.1",
        runtime_api_port=0,
        capacity=capacity,
        keepalive_s=600,
        startup_timeout_s=5,
    )
    shipped: list[apb.LogLine] = []
    pool.emit_log = shipped.append
    sandboxes.watch_output(pool.on_container_output)
    return pool, shipped


REPORT_LINE = re.compile(
    r"REPORT RequestId: (?P<id>r\d+-\d+)\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t"
    r"(?:Init Duration: \d+\.\d\d ms\t)?"
)


def test_concurrent_callers_get_true_report_lines() -> None:
    """Eight callers invoking one succeeding function over and over, as
    many environments as callers: an environment that answered is taken by
    the next caller before the first caller's waiter has run, and the next
    START closes the first invocation's log. Its REPORT must still say how
    it ended (issue 18: `Duration: 0.00 ms ... Status: error` for 404 of
    1,895), and a Tail caller still gets its own log."""

    async def run() -> None:
        pool, shipped = fake_pool(capacity=8)
        spec = apb.FunctionSpec(
            function_arn=ARN,
            function_name="f",
            version="$LATEST",
            runtime="python3.11",
            handler="app.handler",
            memory_size=128,
            timeout=5,
            code_sha256="sha",
        )
        tails: dict[str, str] = {}

        async def caller(n: int) -> None:
            for i in range(30):
                rid = f"r{n}-{i}"
                result = await pool.invoke(
                    apb.InvokeAssignment(
                        invocation_id=rid, request_id=rid, function=spec, log_tail=i % 2 == 0
                    )
                )
                assert result.status == apb.INVOKE_STATUS_SUCCESS
                if i % 2 == 0:
                    tails[rid] = result.log_tail

        await asyncio.gather(*(caller(n) for n in range(8)))
        await pool.flush_logs()
        reports = [x.message for x in shipped if x.message.startswith("REPORT")]
        assert len(reports) == 8 * 30
        bad = [r for r in reports if REPORT_LINE.fullmatch(r) is None]
        assert bad == [], f"{len(bad)} of {len(reports)} REPORT lines untrue: {bad[:3]}"
        for rid, tail in tails.items():
            report = [x for x in tail.splitlines() if x.startswith("REPORT")]
            assert len(report) == 1, (rid, tail)
            match = REPORT_LINE.fullmatch(report[0])
            assert match is not None and match["id"] == rid, report
        await pool.close()

    asyncio.run(run())


def test_a_late_answer_does_not_undo_a_timeout() -> None:
    log, out = make_log()
    log.begin("r1")
    log.answered("r1", Outcome(1000.0, "timeout"))
    log.answered("r1", Outcome(1000.5))
    log.close("r1")
    assert out[-1].message.endswith("\tStatus: timeout\t")


def test_the_tail_of_an_invocation_closed_by_the_next_start() -> None:
    log, _ = make_log()
    log.begin("r1")
    log.output("stdout", b"one\n", 1000.0)
    log.answered("r1", Outcome(1.0))
    log.begin("r2")
    assert log.close("r1") is None  # END and REPORT were written once
    assert log.tail("r1").splitlines()[:3] == [
        "START RequestId: r1 Version: $LATEST",
        "one",
        "END RequestId: r1",
    ]
    assert log.tail("unknown") == ""


# -- multi-line messages ----------------------------------------------------------


def test_a_line_with_carriage_returns_is_one_event_with_line_breaks() -> None:
    # awslambdaric's StandardLogSink: the lines of an error joined by \r.
    assert il.event_message("[ERROR] KeyError: 'name'\rTraceback (most recent call last):") == (
        "[ERROR] KeyError: 'name'\nTraceback (most recent call last):"
    )
    assert il.event_message("a line ended by CRLF\r") == "a line ended by CRLF"
    assert il.event_message("a\r\rb") == "a\n\nb"
    assert il.event_message("plain") == "plain"


def test_a_python_error_keeps_its_line_breaks_in_the_log_and_the_tail() -> None:
    log, out = make_log()
    log.begin("r1")
    log.output(
        "stdout",
        b"[ERROR] KeyError: 'name'\rTraceback (most recent call last):\r"
        b'\xc2\xa0\xc2\xa0File "/var/task/app.py", line 2, in handler\n',
        1000.0,
    )
    log.answered("r1", Outcome(1.0))
    tail = log.close("r1")
    assert tail is not None
    assert tail.splitlines()[1:4] == [
        "[ERROR] KeyError: 'name'",
        "Traceback (most recent call last):",
        '\xa0\xa0File "/var/task/app.py", line 2, in handler',
    ]
    # One event, as AWS's log holds it (recorded: test_invocation_type_event_error).
    assert out[1].message == (
        "[ERROR] KeyError: 'name'\nTraceback (most recent call last):\n"
        '\xa0\xa0File "/var/task/app.py", line 2, in handler'
    )
