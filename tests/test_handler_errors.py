"""A handler's unexpected exception is answered as AWS answers its own
failures (ServiceException), logged with what happened, never a traceback
to the caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog
from lambdafleet.control_plane.api import registry

from lambdafleet.api.v1 import lambda_pb2
from lambdafleet.errors import METADATA_KEY
from lambdafleet.functions.v1 import functions_pb2


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple[Any, str, Any] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("lf-account", "000000000000"), ("lf-request-id", "req-1"))

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, trailing_metadata)
        raise Aborted

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass


def test_an_unexpected_exception_is_a_service_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(api: Any, caller: Any, request: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setitem(registry.HANDLERS, "GetAccountSettings", broken)
    handle = registry._unary(None, "GetAccountSettings")  # type: ignore[arg-type]
    context = FakeContext()
    with structlog.testing.capture_logs() as logs, pytest.raises(Aborted):
        asyncio.run(handle(lambda_pb2.GetAccountSettingsRequest(), context))
    assert context.aborted is not None
    _, details, trailing = context.aborted
    assert "KeyError" not in details and "Traceback" not in details
    ((key, value),) = trailing
    assert key == METADATA_KEY
    assert functions_pb2.AwsError.FromString(value).code == "ServiceException"
    (line,) = [entry for entry in logs if entry["event"] == "api.unhandled"]
    assert line["operation"] == "GetAccountSettings"
    assert "a bug" in line["error"]
