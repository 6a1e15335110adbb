"""The other ways to invoke: InvokeAsync (deprecated) and
InvokeWithResponseStream.

InvokeAsync is an Event invocation under its old name: it answers 202 with
Status 202 and is queued like Invoke's Event type.

InvokeWithResponseStream runs the invocation like Invoke; the function's
answer is sent as one PayloadChunk followed by InvokeComplete. (A handler
that streams with the runtime API's streaming mode still arrives whole: the
worker hands the control plane a finished payload.)
"""

from __future__ import annotations

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
        yield api.InvokeWithResponseStreamResponse(status_code=204, executed_version=config.version)
        return
    result = await api_.scheduler.invoke(
        scope,
        config,
        request.payload,
        request.client_context,
        caller.request_id,
        qualifier=lease_qualifier(found),
        invoked_arn=invoked_arn(scope, found, request.qualifier),
        log_tail=wants_tail(request.log_type),
    )
    head = api.InvokeWithResponseStreamResponse(
        status_code=200,
        executed_version=config.version,
        response_stream_content_type=STREAM_CONTENT_TYPE,
    )
    head.event_stream.payload_chunk.payload = result.payload
    yield head
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
