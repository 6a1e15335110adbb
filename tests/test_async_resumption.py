"""The pure parts that keep Event attempts from running twice across a
control plane restart, and `lambdafleet logs --follow`'s resume, fed
stimuli directly (the processes are in test_async_duplicates.py and
test_function_logs.py)."""

from __future__ import annotations

import json
from pathlib import Path

from lambdafleet.control_plane import event_queue
from lambdafleet.control_plane.api.kinds import EVENT_INVOKE_CONFIG, FUNCTION
from lambdafleet.control_plane.api.resolve import function_arn
from lambdafleet.control_plane.dispatcher import EventDispatcher
from lambdafleet.control_plane.resumption import InFlight, Resumption
from lambdafleet.control_plane.store import ResourceStore, Scope
from lambdafleet.worker.kept_results import KeptResults

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.logs_command import Resume
from lambdafleet.state.v1 import state_pb2

SCOPE = Scope("000000000000", "us-east-1")


def attempt(n: int, worker: str = "w1", deadline: int = 50_000) -> InFlight:
    return InFlight(SCOPE, f"r{n}", worker, f"i{n}", deadline)


def test_a_result_from_its_worker_settles_the_attempt_once() -> None:
    r = Resumption(grace_ms=5_000)
    r.add(attempt(1), now_ms=0)
    assert r.take("w2", "i1") is None  # not the worker it was sent to
    assert r.take("w1", "i1") == attempt(1)
    assert r.take("w1", "i1") is None
    assert len(r) == 0


def test_a_ready_worker_releases_what_it_neither_answered_nor_runs() -> None:
    r = Resumption(grace_ms=5_000, margin_ms=1_000)
    for n in (1, 2, 3):
        r.add(attempt(n), now_ms=0)
    r.add(attempt(4, worker="w2"), now_ms=0)
    assert r.take("w1", "i1") == attempt(1)  # its kept result came first
    assert r.worker_ready("w1", ["i2"], now_ms=100) == [attempt(3)]
    # i2 runs there: awaited until its deadline and the margin, not the grace.
    assert r.expired(now_ms=4_999) == []
    assert r.next_deadline() == 5_000  # w2's, still in its grace
    assert r.expired(now_ms=5_000) == [attempt(4, worker="w2")]
    assert r.next_deadline() == 51_000
    assert r.expired(now_ms=51_000) == [attempt(2)]
    assert r.next_deadline() is None


def test_a_worker_that_does_not_come_back_has_the_grace() -> None:
    r = Resumption(grace_ms=5_000)
    r.add(attempt(1), now_ms=1_000)
    assert r.expired(now_ms=5_999) == []
    assert r.expired(now_ms=6_000) == [attempt(1)]
    assert r.take("w1", "i1") is None  # too late: it runs again


def result(n: int, size: int = 0) -> apb.InvokeResult:
    return apb.InvokeResult(invocation_id=f"i{n}", payload=b"x" * size)


def test_kept_results_are_bounded_by_age_count_and_bytes() -> None:
    kept = KeptResults(max_age_s=10, max_count=3, max_bytes=1_000)
    for n in range(4):
        kept.add(result(n), now=n)
    assert [r.invocation_id for r in kept.all(now=4)] == ["i1", "i2", "i3"]
    assert [r.invocation_id for r in kept.all(now=12.5)] == ["i3"]
    kept.add(result(5, size=600), now=13)
    kept.add(result(6, size=600), now=13)
    assert [r.invocation_id for r in kept.all(now=13)] == ["i6"]
    kept.add(result(7, size=2_000), now=13)  # larger than all: not kept
    assert [r.invocation_id for r in kept.all(now=13)] == ["i6"]


def line(ts: int, message: str, rid: str = "r") -> dict[str, object]:
    return {"timestamp": ts, "request_id": rid, "log_stream": "s", "message": message}


def test_resume_skips_exactly_what_was_printed() -> None:
    resume = Resume(since_ms=0, window_ms=1_000)
    assert resume.since_ms() == 0
    printed = [line(5_000, "a"), line(5_500, "b"), line(5_500, "b"), line(6_000, "c")]
    for event in printed:
        assert resume.fresh(event)
        resume.printed(event)
    assert resume.since_ms() == 5_000
    resume.reconnecting()
    # The control plane still has them (it did not restart): each comes
    # again once and is skipped; a line written twice is printed twice.
    again = [line(5_000, "a"), line(5_500, "b"), line(5_500, "b"), line(6_000, "c")]
    assert [resume.fresh(e) for e in again] == [False] * 4
    # What came after, with an older timestamp (another worker), is not.
    assert resume.fresh(line(5_800, "late"))
    assert resume.fresh(line(5_500, "b"))


# -- the dispatcher after a restart, in process -------------------------------


class NoScheduler:
    """No event may run again in these tests: any attempt fails them."""

    async def invoke(self, *args: object, **kwargs: object) -> apb.InvokeResult:
        raise AssertionError("the event ran again")


def restarted_dispatcher(tmp_path: Path) -> tuple[ResourceStore, EventDispatcher, str]:
    """A store as a SIGKILL leaves it: an event of `src` (OnSuccess: `dest`)
    whose attempt left for worker w1 and was never answered; and a
    dispatcher started on it (its loop not running)."""
    store = ResourceStore(tmp_path / "state.db")
    for name in ("src", "dest"):
        record = state_pb2.FunctionRecord(
            configuration=api.FunctionConfiguration(function_name=name, version="$LATEST")
        )
        store.put(SCOPE, FUNCTION, name, record, function=name)
    config = api.FunctionEventInvokeConfig()
    config.destination_config.on_success.destination = function_arn(SCOPE, "dest")
    store.put(SCOPE, EVENT_INVOKE_CONFIG, "src:$LATEST", config, function="src")
    event = event_queue.new_event(
        api.FunctionConfiguration(function_name="src", version="$LATEST"), "", b"{}", "", "r1"
    )
    event.attempt_worker_id = "w1"
    event.attempt_invocation_id = "i1"
    event.attempt_deadline_unix_ms = event_queue.now_ms() + 60_000
    event_queue.put(store, SCOPE, event)
    dispatcher = EventDispatcher(store, NoScheduler(), resume_grace_ms=60_000)  # type: ignore[arg-type]
    dispatcher.resume()
    return store, dispatcher, "r1"


def queued(store: ResourceStore) -> list[tuple[str, str]]:
    return [(e.function_name, e.request_id) for _, _, e in event_queue.all_events(store)]


def test_a_reported_result_finishes_the_event_and_sends_its_destination_once(
    tmp_path: Path,
) -> None:
    store, dispatcher, rid = restarted_dispatcher(tmp_path)
    # Awaited, not due: nothing is scheduled to run.
    assert dispatcher._due == []
    answer = apb.InvokeResult(
        invocation_id="i1", status=apb.INVOKE_STATUS_SUCCESS, payload=b'{"ok": 1}'
    )
    dispatcher.unclaimed_result("w2", answer)  # not the worker it went to
    assert queued(store) == [("src", rid)]
    dispatcher.unclaimed_result("w1", answer)
    ((name, destination_id),) = queued(store)
    assert name == "dest" and destination_id != rid
    # The same result again (the worker re-sends what it kept at every
    # reconnect): nothing more.
    dispatcher.unclaimed_result("w1", answer)
    dispatcher.worker_ready("w1", [])
    assert queued(store) == [("dest", destination_id)]
    record = json.loads(event_queue.get(store, SCOPE, destination_id).payload)  # type: ignore[union-attr]
    assert record["requestContext"]["requestId"] == rid
    assert record["responsePayload"] == {"ok": 1}
    store.close()


def test_an_attempt_its_worker_does_not_report_runs_again(tmp_path: Path) -> None:
    store, dispatcher, rid = restarted_dispatcher(tmp_path)
    dispatcher.worker_ready("w1", ["i1"])  # still running there: awaited
    assert dispatcher._due == []
    dispatcher.worker_ready("w1", [])  # reconnected again, and it is gone
    assert [entry[3] for entry in dispatcher._due] == [rid]
    # Its answer, had it come late, is no longer taken.
    dispatcher.unclaimed_result("w1", apb.InvokeResult(invocation_id="i1", status=1))
    assert queued(store) == [("src", rid)]
    store.close()
