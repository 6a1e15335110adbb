"""Durable executions: the API surface, without an execution engine.

lambdafleet does not run durable functions (DurableConfig is stored, nothing
checkpoints), so no execution ever exists. Every operation answers what AWS
answers when the execution, or the callback, is not there; listing the
executions of an existing function answers an empty list.

The messages of these answers are not recorded; they follow the form AWS
uses for its other newer resources ("Capacity provider not found: <arn>").
The operations whose model declares no ResourceNotFoundException
(CheckpointDurableExecution, GetDurableExecutionState and the callbacks)
answer InvalidParameterValueException instead, the only client error their
model allows besides throttling.
"""

from __future__ import annotations

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, invalid_parameter, not_found

from .registry import Api, Caller, operation
from .resolve import resolve


def execution_not_found(arn: str) -> LambdaError:
    return not_found(f"Durable execution not found: {arn}")


def execution_invalid(arn: str) -> LambdaError:
    return invalid_parameter(f"Durable execution not found: {arn}")


def callback_invalid(callback_id: str) -> LambdaError:
    return invalid_parameter(f"Callback not found: {callback_id}")


@operation("GetDurableExecution")
async def get_execution(
    api_: Api, caller: Caller, request: api.GetDurableExecutionRequest
) -> api.GetDurableExecutionResponse:
    raise execution_not_found(request.durable_execution_arn)


@operation("GetDurableExecutionHistory")
async def get_history(
    api_: Api, caller: Caller, request: api.GetDurableExecutionHistoryRequest
) -> api.GetDurableExecutionHistoryResponse:
    raise execution_not_found(request.durable_execution_arn)


@operation("StopDurableExecution")
async def stop_execution(
    api_: Api, caller: Caller, request: api.StopDurableExecutionRequest
) -> api.StopDurableExecutionResponse:
    raise execution_not_found(request.durable_execution_arn)


@operation("GetDurableExecutionState")
async def get_state(
    api_: Api, caller: Caller, request: api.GetDurableExecutionStateRequest
) -> api.GetDurableExecutionStateResponse:
    raise execution_invalid(request.durable_execution_arn)


@operation("CheckpointDurableExecution")
async def checkpoint(
    api_: Api, caller: Caller, request: api.CheckpointDurableExecutionRequest
) -> api.CheckpointDurableExecutionResponse:
    raise execution_invalid(request.durable_execution_arn)


@operation("SendDurableExecutionCallbackSuccess")
async def callback_success(
    api_: Api, caller: Caller, request: api.SendDurableExecutionCallbackSuccessRequest
) -> api.SendDurableExecutionCallbackSuccessResponse:
    raise callback_invalid(request.callback_id)


@operation("SendDurableExecutionCallbackFailure")
async def callback_failure(
    api_: Api, caller: Caller, request: api.SendDurableExecutionCallbackFailureRequest
) -> api.SendDurableExecutionCallbackFailureResponse:
    raise callback_invalid(request.callback_id)


@operation("SendDurableExecutionCallbackHeartbeat")
async def callback_heartbeat(
    api_: Api, caller: Caller, request: api.SendDurableExecutionCallbackHeartbeatRequest
) -> api.SendDurableExecutionCallbackHeartbeatResponse:
    raise callback_invalid(request.callback_id)


@operation("ListDurableExecutionsByFunction")
async def list_by_function(
    api_: Api, caller: Caller, request: api.ListDurableExecutionsByFunctionRequest
) -> api.ListDurableExecutionsByFunctionResponse:
    # The function (and version or alias) must exist; it has no executions.
    resolve(api_.store, caller.scope, request.function_name, request.qualifier or None)
    return api.ListDurableExecutionsByFunctionResponse()


@operation("PauseDurableExecution")
async def pause_execution(
    api_: Api, caller: Caller, request: api.PauseDurableExecutionRequest
) -> api.PauseDurableExecutionResponse:
    raise execution_not_found(request.durable_execution_arn)


@operation("ResumeDurableExecution")
async def resume_execution(
    api_: Api, caller: Caller, request: api.ResumeDurableExecutionRequest
) -> api.ResumeDurableExecutionResponse:
    raise execution_not_found(request.durable_execution_arn)


@operation("DeleteDurableExecution")
async def delete_execution(
    api_: Api, caller: Caller, request: api.DeleteDurableExecutionRequest
) -> api.DeleteDurableExecutionResponse:
    raise execution_not_found(request.durable_execution_arn)
