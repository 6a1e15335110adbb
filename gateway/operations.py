"""The Lambda operations the gateway serves, each turning a parsed AWS input
into a typed control plane call and the reply into AWS's output shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

from . import arns, validation
from .convert import configuration_from_create, configuration_to_aws
from .protocol import AwsError

INVOCATION_TYPES = {
    "RequestResponse": pb.INVOCATION_TYPE_REQUEST_RESPONSE,
    "Event": pb.INVOCATION_TYPE_EVENT,
    "DryRun": pb.INVOCATION_TYPE_DRY_RUN,
}


@dataclass
class Call:
    """One API call: who makes it, its parsed input, and how to reach the
    control plane."""

    context: pb.RequestContext
    operation: str
    params: dict[str, Any]
    stub: functions_pb2_grpc.FunctionServiceStub
    # Base URL of this gateway as the caller reached it (for code locations).
    base_url: str

    def function(self) -> arns.FunctionRef:
        return arns.parse_function_identifier(
            self.params["FunctionName"],
            self.params.get("Qualifier"),
            self.context.region,
            self.context.account_id,
            self.operation,
        )


Handler = Callable[[Call], Awaitable[dict[str, Any]]]


async def create_function(call: Call) -> dict[str, Any]:
    ref = call.function()
    if "Runtime" in call.params:
        # AWS checks the runtime against its own list, not the model's enum.
        validation.check_runtime(call.params["Runtime"])
    config = configuration_from_create(call.params)
    config.function_name = ref.name
    code = call.params.get("Code") or {}
    reply = await call.stub.CreateFunction(
        pb.CreateFunctionRequest(
            context=call.context,
            configuration=config,
            zip_file=code.get("ZipFile", b""),
            publish=bool(call.params.get("Publish")),
            tags=call.params.get("Tags") or {},
        )
    )
    return configuration_to_aws(reply.configuration, call.context.region)


async def get_function(call: Call) -> dict[str, Any]:
    ref = call.function()
    reply = await call.stub.GetFunction(
        pb.GetFunctionRequest(
            context=call.context, function_name=ref.name, qualifier=ref.qualifier or ""
        )
    )
    c = reply.configuration
    out: dict[str, Any] = {
        "Configuration": configuration_to_aws(c, call.context.region),
        # AWS hands out a presigned S3 URL; the gateway serves the package itself.
        "Code": {
            "RepositoryType": "S3",
            "Location": f"{call.base_url}/_fleet/code/{base64.b64decode(c.code_sha256).hex()}",
        },
    }
    if reply.tags:
        out["Tags"] = dict(reply.tags)
    return out


async def get_function_configuration(call: Call) -> dict[str, Any]:
    ref = call.function()
    reply = await call.stub.GetFunction(
        pb.GetFunctionRequest(
            context=call.context, function_name=ref.name, qualifier=ref.qualifier or ""
        )
    )
    return configuration_to_aws(reply.configuration, call.context.region)


async def list_functions(call: Call) -> dict[str, Any]:
    reply = await call.stub.ListFunctions(
        pb.ListFunctionsRequest(
            context=call.context,
            marker=call.params.get("Marker", ""),
            max_items=call.params.get("MaxItems", 0),
        )
    )
    out: dict[str, Any] = {
        "Functions": [configuration_to_aws(c, call.context.region) for c in reply.functions]
    }
    if reply.next_marker:
        out["NextMarker"] = reply.next_marker
    return out


async def delete_function(call: Call) -> dict[str, Any]:
    ref = call.function()
    await call.stub.DeleteFunction(
        pb.DeleteFunctionRequest(
            context=call.context, function_name=ref.name, qualifier=ref.qualifier or ""
        )
    )
    # The model says 200; AWS answers 204 (recorded).
    return {"StatusCode": 204}


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


async def invoke(call: Call) -> dict[str, Any]:
    ref = call.function()
    invocation_type = call.params.get("InvocationType", "RequestResponse")
    payload = check_payload(call.params.get("Payload") or b"")
    reply = await call.stub.Invoke(
        pb.InvokeRequest(
            context=call.context,
            function_name=ref.name,
            qualifier=ref.qualifier or "",
            payload=payload,
            invocation_type=INVOCATION_TYPES[invocation_type],
            client_context=call.params.get("ClientContext", ""),
            tail_log=call.params.get("LogType") == "Tail",
        )
    )
    out: dict[str, Any] = {"StatusCode": reply.status_code}
    if reply.status_code == 200:
        out["Payload"] = reply.payload
    if reply.function_error:
        out["FunctionError"] = reply.function_error
    if reply.executed_version:
        out["ExecutedVersion"] = reply.executed_version
    if reply.log_result:
        out["LogResult"] = reply.log_result
    return out


HANDLERS: dict[str, Handler] = {
    "CreateFunction": create_function,
    "GetFunction": get_function,
    "GetFunctionConfiguration": get_function_configuration,
    "ListFunctions": list_functions,
    "DeleteFunction": delete_function,
    "Invoke": invoke,
}
