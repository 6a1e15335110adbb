"""The gateway's invocation stream (gateway/invocations.py) against a real
gRPC server whose InvocationService answers as the test says: replies
matched by id whatever their order, AWS errors raised as LambdaError, and a
broken stream failing only the calls waiting on it, the next call opening a
new one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from lambdafleet.gateway.invocations import Invocations

from lambdafleet.api.v1 import lambda_pb2
from lambdafleet.errors import LambdaError
from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc


class Scripted(functions_pb2_grpc.InvocationServiceServicer):  # type: ignore[misc]
    """Echoes each payload, replies to a batch in reverse order; a payload of
    b"error" answers an AWS error, b"break" aborts the stream."""

    def __init__(self) -> None:
        self.streams = 0
        self.batch_sizes: list[int] = []

    async def Invocations(  # type: ignore[override]
        self, request_iterator: AsyncIterator[pb.InvocationCalls], context: Any
    ) -> AsyncIterator[pb.InvocationReplies]:
        self.streams += 1
        async for message in request_iterator:
            self.batch_sizes.append(len(message.calls))
            replies = []
            for call in message.calls:
                if call.request.payload == b"break":
                    await context.abort(grpc.StatusCode.INTERNAL, "broken on purpose")
                reply = pb.InvocationReply(id=call.id, server_timing="control-plane;dur=1")
                if call.request.payload == b"error":
                    reply.error.CopyFrom(
                        LambdaError(
                            "TooManyRequestsException", "Rate Exceeded.", {"Reason": "X"}
                        ).to_proto()
                    )
                else:
                    reply.response.status_code = 200
                    reply.response.payload = call.request.payload + call.account_id.encode()
                replies.append(reply)
            yield pb.InvocationReplies(replies=list(reversed(replies)))


async def _serve(servicer: Scripted) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    server = grpc.aio.server()
    functions_pb2_grpc.add_InvocationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _invoke(invocations: Invocations, payload: bytes, account: str = "111111111111") -> Any:
    request = lambda_pb2.InvocationRequest(function_name="f", payload=payload)
    return invocations.invoke(request, account, "us-east-1", "rid", "http://gw")


def test_replies_reach_their_callers_in_any_order() -> None:
    async def run() -> None:
        servicer = Scripted()
        server, channel = await _serve(servicer)
        invocations = Invocations(channel)
        try:
            payloads = [f'{{"n": {i}}}'.encode() for i in range(50)]
            answers = await asyncio.gather(*(_invoke(invocations, p) for p in payloads))
            for payload, (response, timing) in zip(payloads, answers, strict=True):
                assert response.payload == payload + b"111111111111"
                assert timing == "control-plane;dur=1"
            assert servicer.streams == 1
            # Fifty calls at once shared writes.
            assert len(servicer.batch_sizes) < 50
        finally:
            await invocations.close()
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def test_an_aws_error_is_raised_as_such() -> None:
    async def run() -> None:
        server, channel = await _serve(Scripted())
        invocations = Invocations(channel)
        try:
            with pytest.raises(LambdaError) as caught:
                await _invoke(invocations, b"error")
            assert caught.value.code == "TooManyRequestsException"
            assert caught.value.fields == {"Reason": "X"}
            # The stream is still good.
            response, _ = await _invoke(invocations, b"{}")
            assert response.status_code == 200
        finally:
            await invocations.close()
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def test_a_broken_stream_fails_its_waiting_calls_and_the_next_call_opens_another() -> None:
    async def run() -> None:
        servicer = Scripted()
        server, channel = await _serve(servicer)
        invocations = Invocations(channel)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _invoke(invocations, b"break")
            assert caught.value.code() == grpc.StatusCode.INTERNAL
            response, _ = await _invoke(invocations, b"{}")
            assert response.status_code == 200
            assert servicer.streams == 2
        finally:
            await invocations.close()
            await channel.close()
            await server.stop(None)

    asyncio.run(run())


def test_no_control_plane_fails_the_call_as_unavailable() -> None:
    async def run() -> None:
        channel = grpc.aio.insecure_channel("127.0.0.1:9")  # nothing listens
        invocations = Invocations(channel)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(_invoke(invocations, b"{}"), 30)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await invocations.close()
            await channel.close()

    asyncio.run(run())
