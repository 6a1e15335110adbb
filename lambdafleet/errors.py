"""AWS errors as they cross gRPC.

A control plane RPC that must answer an AWS error aborts with a gRPC status
and attaches a typed AwsError message under a binary trailing-metadata key
(the same pattern as grpc-status-details-bin), so the gateway renders exactly
the code, message and extra fields AWS would, without parsing text.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from lambdafleet.functions.v1 import functions_pb2

METADATA_KEY = "lambdafleet-aws-error-bin"

# gRPC status per AWS error code; the gateway never relies on it (it reads the
# AwsError), but other clients and logs get a meaningful status.
_GRPC_CODES: dict[str, grpc.StatusCode] = {
    "ResourceNotFoundException": grpc.StatusCode.NOT_FOUND,
    "ResourceConflictException": grpc.StatusCode.FAILED_PRECONDITION,
    "InvalidParameterValueException": grpc.StatusCode.INVALID_ARGUMENT,
    "ValidationException": grpc.StatusCode.INVALID_ARGUMENT,
    "TooManyRequestsException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RequestTooLargeException": grpc.StatusCode.INVALID_ARGUMENT,
    "CodeStorageExceededException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ServiceException": grpc.StatusCode.INTERNAL,
}


class LambdaError(Exception):
    """An error that the Lambda API answers with AWS's code and message."""

    def __init__(
        self,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        omit: tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        # Body members AWS leaves out of this particular error (e.g. "Type").
        self.omit = tuple(omit)

    def to_proto(self) -> functions_pb2.AwsError:
        return functions_pb2.AwsError(
            code=self.code, message=self.message, fields=self.fields, omit=self.omit
        )

    def body_members(self) -> dict[str, str | None]:
        """Extra body members for the serializer; None leaves one out."""
        return {**self.fields, **dict.fromkeys(self.omit)}

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _GRPC_CODES.get(self.code, grpc.StatusCode.INVALID_ARGUMENT)


def not_found(message: str) -> LambdaError:
    return LambdaError("ResourceNotFoundException", message)


def conflict(message: str) -> LambdaError:
    return LambdaError("ResourceConflictException", message)


def invalid_parameter(message: str) -> LambdaError:
    return LambdaError("InvalidParameterValueException", message)


def service_error(message: str) -> LambdaError:
    return LambdaError("ServiceException", message)


async def abort(context: grpc.aio.ServicerContext[object, object], error: LambdaError) -> NoReturn:
    await context.abort(
        error.grpc_code,
        error.message,
        trailing_metadata=((METADATA_KEY, error.to_proto().SerializeToString()),),
    )
    raise AssertionError("context.abort returned")  # pragma: no cover


def from_rpc_error(exc: grpc.aio.AioRpcError) -> LambdaError | None:
    """The AWS error a failed call carried, or None for a plain gRPC failure."""
    for key, value in exc.trailing_metadata() or ():
        if key == METADATA_KEY and isinstance(value, bytes):
            proto = functions_pb2.AwsError.FromString(value)
            return LambdaError(proto.code, proto.message, dict(proto.fields), tuple(proto.omit))
    return None
