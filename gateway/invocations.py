"""The gateway's end of InvocationService: every synchronous Invoke of this
gateway rides one long-lived stream to the control plane.

Calls are queued and written in batches (lambdafleet/batching.py); replies
are matched to their callers by id. The stream is opened on first use and
again after it breaks: a break fails the invocations waiting on it with the
gRPC error, which the gateway answers as it answers a failed unary call.
"""

from __future__ import annotations

import asyncio
import itertools

import grpc
import structlog

from lambdafleet import batching
from lambdafleet.api.v1 import lambda_pb2
from lambdafleet.errors import LambdaError
from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

log = structlog.get_logger(__name__)


class _Session:
    """One open stream and the calls waiting on it."""

    def __init__(self, stub: functions_pb2_grpc.InvocationServiceStub) -> None:
        self.call = stub.Invocations()
        self.outbox: asyncio.Queue[pb.InvocationCall] = asyncio.Queue()
        self.waiting: dict[int, asyncio.Future[pb.InvocationReply]] = {}
        self.broken: BaseException | None = None
        self.tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._read())]

    async def _write(self) -> None:
        try:
            while True:
                call = await self.outbox.get()
                batch, _ = batching.take_batch(self.outbox, call, pb.InvocationCall.ByteSize)
                await self.call.write(pb.InvocationCalls(calls=batch))
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            self._break(exc)

    async def _read(self) -> None:
        try:
            while (message := await self.call.read()) is not grpc.aio.EOF:
                for reply in message.replies:
                    future = self.waiting.pop(reply.id, None)
                    if future is not None and not future.done():
                        future.set_result(reply)
            self._break(_unavailable("the control plane ended the invocation stream"))
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            self._break(exc)

    def _break(self, exc: BaseException, closing: bool = False) -> None:
        if self.broken is not None:
            return
        if not isinstance(exc, grpc.aio.AioRpcError):
            exc = _unavailable(f"invocation stream broken: {exc!r}")
        self.broken = exc
        (log.debug if closing else log.warning)(
            "gateway.invocation_stream_broken", error=repr(exc), waiting=len(self.waiting)
        )
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(exc)
        self.waiting.clear()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.call.cancel()


def _unavailable(details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details
    )


class Invocations:
    """Invoke over the stream: `invoke` answers the InvocationResponse and
    the Server-Timing entries of the control plane, or raises LambdaError
    (the AWS error it answered) or grpc.aio.AioRpcError (no answer)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = functions_pb2_grpc.InvocationServiceStub(channel)
        self._session: _Session | None = None
        self._ids = itertools.count(1)

    async def invoke(
        self,
        request: lambda_pb2.InvocationRequest,
        account_id: str,
        region: str,
        request_id: str,
        base_url: str,
    ) -> tuple[lambda_pb2.InvocationResponse, str]:
        session = self._session
        if session is None or session.broken is not None:
            session = self._session = _Session(self._stub)
        call_id = next(self._ids)
        future: asyncio.Future[pb.InvocationReply] = asyncio.get_running_loop().create_future()
        session.waiting[call_id] = future
        session.outbox.put_nowait(
            pb.InvocationCall(
                id=call_id,
                account_id=account_id,
                region=region,
                request_id=request_id,
                base_url=base_url,
                request=request,
            )
        )
        try:
            reply = await future
        finally:
            session.waiting.pop(call_id, None)
        if reply.WhichOneof("outcome") == "error":
            error = reply.error
            raise LambdaError(error.code, error.message, dict(error.fields), tuple(error.omit))
        return reply.response, reply.server_timing

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session._break(_unavailable("the gateway is stopping"), closing=True)
