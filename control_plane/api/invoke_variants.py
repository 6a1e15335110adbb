"""The other ways to invoke: InvokeAsync (deprecated) and
InvokeWithResponseStream.

InvokeAsync is an Event invocation under its old name: it answers 202 with
Status 202 and is queued like Invoke's Event type.

InvokeWithResponseStream runs the invocation like Invoke; a runtime that
answers in the Runtime API's streaming mode has its chunks forwarded as they
arrive (worker -> InvokeChunk -> here -> one PayloadChunk each), a buffered
answer is sent as one PayloadChunk; InvokeComplete ends the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api

from .. import lifecycle
from .functions import (
    invocation_target,
    invoked_arn,
    lease_qualifier,
    log_result,
    queue_event,
    wants_tail,
)
from .registry import Api, Caller, operation
from .resolve import LATEST, resolve

STREAM_CONTENT_TYPE = "application/octet-stream"


@operation("InvokeAsync")
async def invoke_async(
    api_: Api, caller: Caller, request: api.InvokeAsyncRequest
) -> api.InvokeAsyncResponse:
    scope = caller.scope
    found = resolve(api_.store, scope, request.function_name, None, not_found_qualifier=LATEST)
    config = invocation_target(api_, scope, found)
    lifecycle.check_invocable(config)
    queue_event(api_, scope, config, "", request.invoke_args or b"{}", "", caller.request_id)
    return api.InvokeAsyncResponse(status=202)


def function_error_code(result: apb.InvokeResult) -> str:
    return result.function_error or "Unhandled"


@operation("InvokeWithResponseStream")
async def invoke_with_response_stream(
    api_: Api, caller: Caller, request: api.InvokeWithResponseStreamRequest
) -> AsyncIterator[api.InvokeWithResponseStreamResponse]:
    scope = caller.scope
    found = resolve(
        api_.store,
        scope,
        request.function_name,
        request.qualifier or None,
        not_found_qualifier=request.qualifier or LATEST,
    )
    config = invocation_target(api_, scope, found)
    lifecycle.check_invocable(config)
    if (request.invocation_type or "RequestResponse") == "DryRun":
        yield api.InvokeWithResponseStreamResponse(status_code=204)
        return
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    running = asyncio.ensure_future(
        api_.scheduler.invoke(
            scope,
            config,
            request.payload,
            request.client_context,
            caller.request_id,
            qualifier=lease_qualifier(found),
            invoked_arn=invoked_arn(scope, found, request.qualifier),
            log_tail=wants_tail(request.log_type),
            on_chunk=chunks.put_nowait,
        )
    )
    head_sent = False

    def reply(payload: bytes) -> api.InvokeWithResponseStreamResponse:
        nonlocal head_sent
        out = api.InvokeWithResponseStreamResponse()
        if not head_sent:
            # The status and headers go with the first chunk.
            head_sent = True
            out.status_code = 200
            out.executed_version = config.version
            out.response_stream_content_type = STREAM_CONTENT_TYPE
        out.event_stream.payload_chunk.payload = payload
        return out

    try:
        while not running.done() or not chunks.empty():
            if chunks.empty():
                waiting = asyncio.ensure_future(chunks.get())
                await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    waiting.cancel()
                    continue
                chunk = waiting.result()
            else:
                chunk = chunks.get_nowait()
            yield reply(chunk)
        # Raises the invocation's error (a throttle, a lost worker) as the
        # call's, before any chunk when there was none.
        result = running.result()
    finally:
        if not running.done():
            running.cancel()
    if result.payload or not head_sent:
        yield reply(result.payload)
    tail = api.InvokeWithResponseStreamResponse()
    complete = tail.event_stream.invoke_complete
    complete.SetInParent()
    if result.status == apb.INVOKE_STATUS_FUNCTION_ERROR:
        # A streamed answer carries the function's error in InvokeComplete.
        complete.error_code = function_error_code(result)
        complete.error_details = result.payload.decode("utf-8", errors="replace")
    if wants_tail(request.log_type) and result.log_tail:
        complete.log_result = log_result(result)
    yield tail
