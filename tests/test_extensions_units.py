"""The Extensions API lifecycle (worker/extensions.py) fed stimuli directly."""

from __future__ import annotations

import pytest
from lambdafleet.worker.extensions import (
    Deliver,
    ExtensionError,
    ExtensionsState,
    InitComplete,
    InvocationComplete,
    ShutdownComplete,
)
from lambdafleet.worker.hot_reload import poll_interval

INVOKE_EVENT = {"eventType": "INVOKE", "requestId": "r1"}


def started(events: list[str]) -> ExtensionsState:
    state = ExtensionsState()
    state.announce(1)
    state.register("e1", "recorder", events)
    assert state.runtime_next() == []  # the extension is not done with init
    assert state.extension_next("e1") == [InitComplete()]
    return state


def test_init_waits_for_announced_extensions() -> None:
    state = ExtensionsState()
    state.announce(2)
    state.register("e1", "a", ["INVOKE"])
    assert state.extension_next("e1") == []
    assert state.runtime_next() == []  # the second one has not registered
    state.register("e2", "b", [])
    assert state.extension_next("e2") == [InitComplete()]
    with pytest.raises(ExtensionError) as late:
        state.register("e3", "c", [])
    assert late.value.status == 403


def test_without_extensions_init_completes_with_the_runtime() -> None:
    assert ExtensionsState().runtime_next() == [InitComplete()]


def test_invocation_ends_when_runtime_and_extension_are_done() -> None:
    state = started(["INVOKE", "SHUTDOWN"])
    assert state.invoke("r1", INVOKE_EVENT) == [Deliver("e1")]
    assert state.take("e1") == INVOKE_EVENT
    assert state.answered("r1") == []  # the extension still holds it
    assert state.extension_next("e1") == [InvocationComplete("r1")]
    assert state.take("e1") is None


def test_extension_done_before_the_runtime_answers() -> None:
    state = started(["INVOKE"])
    state.invoke("r1", INVOKE_EVENT)
    state.take("e1")
    assert state.extension_next("e1") == []
    assert state.answered("r1") == [InvocationComplete("r1")]


def test_shutdown_waits_for_subscribers_and_skips_others() -> None:
    state = started(["SHUTDOWN"])
    assert state.invoke("r1", INVOKE_EVENT) == []
    assert state.answered("r1") == [InvocationComplete("r1")]
    assert state.shutdown({"eventType": "SHUTDOWN"}) == [Deliver("e1")]
    state.take("e1")
    assert state.extension_next("e1") == [ShutdownComplete()]


def test_an_extension_that_failed_is_not_waited_for() -> None:
    state = started(["INVOKE"])
    state.invoke("r1", INVOKE_EVENT)
    state.take("e1")
    state.answered("r1")
    assert state.failed("e1", "Extension.Crash") == [InvocationComplete("r1")]


def test_bad_registrations() -> None:
    state = ExtensionsState()
    for name, events, status in (("", [], 400), ("x", ["LOGS"], 400)):
        with pytest.raises(ExtensionError) as refused:
            state.register("e", name, events)
        assert refused.value.status == status
    state.register("e1", "x", [])
    with pytest.raises(ExtensionError):
        state.register("e2", "x", [])
    with pytest.raises(ExtensionError) as unknown:
        state.extension_next("nope")
    assert unknown.value.status == 403


def test_poll_interval_setting() -> None:
    assert poll_interval(None) is None
    assert poll_interval("0") is None
    assert poll_interval("250") == 0.25
    assert poll_interval("soon") is None
