"""InvocationService: a gateway's synchronous invocations over one stream.

Each InvocationCall runs as LambdaService.Invoke would (the same handler,
api/functions.py) in a task of its own; replies go back as they finish, in
any order, batched by the writer (lambdafleet/batching.py). When the stream
ends, the invocations still running for it are cancelled, as gRPC cancels a
unary call's handler whose caller went away.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import grpc
import structlog

from lambdafleet import batching, server_timing
from lambdafleet.api.v1 import lambda_pb2
from lambdafleet.errors import LambdaError, service_error
from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

from .api.registry import Api, Caller, run_operation

log = structlog.get_logger(__name__)

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


async def run_call(api: Api, call: pb.InvocationCall) -> pb.InvocationReply:
    """One invocation of the stream, answered: its output or its AWS error."""
    caller = Caller(
        account_id=call.account_id,
        region=call.region,
        request_id=call.request_id,
        base_url=call.base_url,
    )
    reply = pb.InvocationReply(id=call.id)
    try:
        response = await run_operation(api, "Invoke", caller, call.request)
        assert isinstance(response, lambda_pb2.InvocationResponse)
        reply.response.CopyFrom(response)
    except LambdaError as exc:
        reply.error.CopyFrom(exc.to_proto())
    except Exception:
        # A unary call's handler would fail the call; here only this reply.
        log.exception("invocations.unhandled", request_id=call.request_id)
        reply.error.CopyFrom(service_error("An internal error occurred.").to_proto())
    if caller.timing:
        reply.server_timing = server_timing.format_entries(caller.timing)
    return reply


class InvocationService(functions_pb2_grpc.InvocationServiceServicer):  # type: ignore[misc]
    def __init__(self, api: Api) -> None:
        self.api = api

    # Reads and writes through the context (a reader task and this writer).
    async def Invocations(  # type: ignore[override]
        self, request_iterator: Any, context: Context
    ) -> None:
        outbox: asyncio.Queue[pb.InvocationReply | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def answer(call: pb.InvocationCall) -> None:
            outbox.put_nowait(await run_call(self.api, call))

        async def read() -> None:
            try:
                while (message := await context.read()) is not grpc.aio.EOF:
                    for call in message.calls:
                        task = asyncio.create_task(answer(call))
                        running.add(task)
                        task.add_done_callback(running.discard)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                pass
            finally:
                # The gateway closed its side: end once the running ones are answered.
                if running:
                    await asyncio.wait(set(running))
                outbox.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            ended = False
            while not ended and (reply := await outbox.get()) is not None:
                batch, ended = batching.take_batch(outbox, reply, pb.InvocationReply.ByteSize)
                await context.write(pb.InvocationReplies(replies=batch))
        except (asyncio.CancelledError, grpc.aio.AioRpcError, grpc.aio.UsageError):
            pass
        finally:
            reader.cancel()
            for task in list(running):
                task.cancel()
