"""Every Lambda operation, as a typed call to the control plane's
LambdaService: parsed AWS input -> request message -> RPC -> reply -> AWS
output. The few things the gateway decides itself (how a FunctionName is
written, whether a payload is JSON, the runtime list) run before the call;
the few places where AWS's answer differs from its model's run after it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from lambdafleet import server_timing
from lambdafleet.api.v1 import lambda_pb2

from . import arns, messages, protocol, validation
from .invocations import Invocations
from .protocol import AwsError

SERVICE = lambda_pb2.DESCRIPTOR.services_by_name["LambdaService"]


@dataclass(frozen=True)
class Caller:
    """Who calls; sent to the control plane as metadata with every call."""

    account_id: str
    region: str
    request_id: str
    # Base URL of this gateway as the caller reached it (for code locations).
    base_url: str
    # Server-Timing entries the control plane answered with ("control-plane",
    # "worker", "runtime", "init": ms), for the answer's header.
    timing: list[str] = field(default_factory=list, compare=False)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("lf-account", self.account_id),
            ("lf-region", self.region),
            ("lf-request-id", self.request_id),
            ("lf-base-url", self.base_url),
        )


def check_payload(payload: bytes) -> bytes:
    """AWS parses the event as JSON before anything runs; no payload at all is
    an empty object."""
    if not payload:
        return b"{}"
    try:
        json.loads(payload)
    except UnicodeDecodeError as exc:
        raise AwsError(
            "InvalidRequestContentException",
            "Could not parse request body into json: Could not parse payload into json: "
            f"Invalid UTF-8 start byte 0x{payload[exc.start]:02x}",
        ) from None
    except ValueError as exc:
        raise AwsError(
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {exc}",
        ) from None
    return payload


# Operations without a Qualifier member that keep the qualifier written in
# FunctionName (an event source mapping's FunctionArn, recorded:
# test_function_name_variations).
_QUALIFIER_IN_NAME = frozenset(
    {"CreateEventSourceMapping", "UpdateEventSourceMapping", "ListEventSourceMappings"}
)


def _function_name(operation: str, params: dict[str, Any], caller: Caller) -> Caller:
    """Split a FunctionName given as an ARN or name:qualifier into the bare
    name and the Qualifier, with AWS's errors for inconsistent ones; the call
    then acts in the function owner's account."""
    if "FunctionName" not in params:
        return caller
    shape = protocol.operation(operation).input_shape
    has_qualifier = shape is not None and "Qualifier" in shape.members
    ref = arns.parse_function_identifier(
        params["FunctionName"],
        params.get("Qualifier") if has_qualifier else None,
        caller.region,
        caller.account_id,
        operation,
    )
    params["FunctionName"] = ref.name
    if has_qualifier and ref.qualifier is not None:
        params["Qualifier"] = ref.qualifier
    if operation in _QUALIFIER_IN_NAME and ref.qualifier is not None:
        # No Qualifier member: the mapping records the name as qualified.
        params["FunctionName"] = f"{ref.name}:{ref.qualifier}"
    return replace(caller, account_id=ref.account)


# AWS's limit on a function's environment variables, measured as compact JSON.
MAX_ENVIRONMENT_BYTES = 4 * 1024


def _check_environment(params: dict[str, Any]) -> None:
    """AWS quotes the variables in the order the caller gave them, which only
    the gateway still knows (the control plane checks the size again)."""
    variables = (params.get("Environment") or {}).get("Variables") or {}
    measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > MAX_ENVIRONMENT_BYTES:
        raise AwsError(
            "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided exceeded the 4KB limit. "
            f"String measured: {measured}",
        )


def _before_create_function(params: dict[str, Any]) -> None:
    if "Runtime" in params:
        # AWS checks the runtime against its own list, not the model's enum.
        validation.check_runtime(params["Runtime"])
    _check_environment(params)


def _before_invoke(params: dict[str, Any]) -> None:
    params["Payload"] = check_payload(params.get("Payload") or b"")


def _after_delete_function(output: dict[str, Any]) -> None:
    # The model says 200; AWS answers 204 (recorded).
    output.setdefault("StatusCode", 204)


def _after_invoke(output: dict[str, Any]) -> None:
    if output.get("StatusCode") != 200:
        output.pop("Payload", None)


def _before_invoke_args(params: dict[str, Any]) -> None:
    params["InvokeArgs"] = check_payload(params.get("InvokeArgs") or b"")


def _event_source_mapping(mapping: dict[str, Any]) -> None:
    # AWS writes an empty FunctionResponseTypes for queue and stream sources
    # (recorded), not for Kafka ones; protobuf cannot tell empty from absent.
    if mapping.get("EventSourceArn", "").split(":")[2:3] in (["sqs"], ["kinesis"], ["dynamodb"]):
        mapping.setdefault("FunctionResponseTypes", [])


def _after_list_event_source_mappings(output: dict[str, Any]) -> None:
    for mapping in output.get("EventSourceMappings", []):
        _event_source_mapping(mapping)


BEFORE: dict[str, Callable[[dict[str, Any]], None]] = {
    "CreateFunction": _before_create_function,
    "UpdateFunctionConfiguration": _before_create_function,
    "Invoke": _before_invoke,
    "InvokeWithResponseStream": _before_invoke,
    "InvokeAsync": _before_invoke_args,
}
AFTER: dict[str, Callable[[dict[str, Any]], None]] = {
    "DeleteFunction": _after_delete_function,
    "Invoke": _after_invoke,
    "CreateEventSourceMapping": _event_source_mapping,
    "GetEventSourceMapping": _event_source_mapping,
    "UpdateEventSourceMapping": _event_source_mapping,
    "DeleteEventSourceMapping": _event_source_mapping,
    "ListEventSourceMappings": _after_list_event_source_mappings,
}
# Members AWS writes back as sent, even as an empty list (recorded:
# test_layer_exceptions publish_empty_result); left out when not sent.
ECHO_EMPTY: dict[str, tuple[str, ...]] = {
    "PublishLayerVersion": ("CompatibleRuntimes", "CompatibleArchitectures"),
}


def _types(method: MethodDescriptor) -> tuple[type[Message], type[Message]]:
    return (
        message_factory.GetMessageClass(method.input_type),
        message_factory.GetMessageClass(method.output_type),
    )


async def stream(
    channel: grpc.aio.Channel, operation: str, params: dict[str, Any], caller: Caller
) -> AsyncIterator[dict[str, Any]]:
    """Run a server-streaming operation (InvokeWithResponseStream): each
    reply as it arrives, AWS-shaped, its event (if any) as a one-event
    `EventStream` list, so an answer can be written part by part."""
    caller = _function_name(operation, params, caller)
    before = BEFORE.get(operation)
    if before is not None:
        before(params)
    method = SERVICE.methods_by_name[operation]
    request_type, response_type = _types(method)
    request = messages.to_request(request_type, params)
    replies = channel.unary_stream(
        f"/{SERVICE.full_name}/{operation}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )(request, metadata=caller.metadata())
    async for reply in replies:
        part = messages.to_dict(reply)
        event = part.pop("EventStream", None)
        part["EventStream"] = [event] if isinstance(event, dict) else []
        yield part


async def call(
    channel: grpc.aio.Channel,
    operation: str,
    params: dict[str, Any],
    caller: Caller,
    invocations: Invocations | None = None,
) -> dict[str, Any]:
    """Run one operation on the control plane; AWS-shaped output. With
    `invocations`, an Invoke goes over its stream instead of a call."""
    method = SERVICE.methods_by_name[operation]
    if method.server_streaming:
        output: dict[str, Any] = {"EventStream": []}
        async for part in stream(channel, operation, params, caller):
            events = part.pop("EventStream")
            output.update(part)
            output["EventStream"].extend(events)
        return output
    caller = _function_name(operation, params, caller)
    before = BEFORE.get(operation)
    if before is not None:
        before(params)
    request_type, response_type = _types(method)
    request = messages.to_request(request_type, params)
    path = f"/{SERVICE.full_name}/{operation}"
    keep_empty = operation.startswith("List")
    if invocations is not None and isinstance(request, lambda_pb2.InvocationRequest):
        reply, timing = await invocations.invoke(
            request, caller.account_id, caller.region, caller.request_id, caller.base_url
        )
        if timing:
            caller.timing.append(timing)
    else:
        unary = channel.unary_unary(
            path,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )(request, metadata=caller.metadata())
        reply = await unary
        for key, value in await unary.trailing_metadata() or ():
            if key == server_timing.METADATA_KEY:
                caller.timing.append(value)
    output = messages.to_dict(reply, keep_empty=keep_empty)
    after = AFTER.get(operation)
    if after is not None:
        after(output)
    for member in ECHO_EMPTY.get(operation, ()):
        if params.get(member) is not None:
            output.setdefault(member, [])
    return output
