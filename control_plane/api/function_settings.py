"""Function-wide settings that change no code: recursive loop detection,
runtime management and the scaling of Lambda Managed Instances functions.

lambdafleet records them as AWS answers them. None changes how invocations
run: runtimes are the images the operator configured, recursion is not
detected, and there are no managed instances to scale.
"""

from __future__ import annotations

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import invalid_parameter

from . import kinds
from .registry import Api, Caller, operation
from .resolve import (
    LATEST,
    Resolved,
    function_arn,
    function_not_found,
    require,
    resolve,
    save,
)

DEFAULT_RECURSIVE_LOOP = "Terminate"
DEFAULT_UPDATE_RUNTIME_ON = "Auto"


# -- recursion ---------------------------------------------------------------


@operation("PutFunctionRecursionConfig")
async def put_recursion(
    api_: Api, caller: Caller, request: api.PutFunctionRecursionConfigRequest
) -> api.PutFunctionRecursionConfigResponse:
    scope = caller.scope
    record = require(api_.store, scope, request.function_name)
    # The model's enum (checked by the gateway) leaves Allow or Terminate.
    record.recursive_loop = request.recursive_loop
    save(api_.store, scope, record)
    return api.PutFunctionRecursionConfigResponse(recursive_loop=record.recursive_loop)


@operation("GetFunctionRecursionConfig")
async def get_recursion(
    api_: Api, caller: Caller, request: api.GetFunctionRecursionConfigRequest
) -> api.GetFunctionRecursionConfigResponse:
    record = require(api_.store, caller.scope, request.function_name)
    return api.GetFunctionRecursionConfigResponse(
        recursive_loop=record.recursive_loop or DEFAULT_RECURSIVE_LOOP
    )


# -- runtime management ------------------------------------------------------


def check_runtime_management(update_runtime_on: str, runtime_version_arn: str | None) -> None:
    """AWS pins a runtime version only in Manual mode, and needs one there."""
    if update_runtime_on == "Manual" and not runtime_version_arn:
        raise invalid_parameter("RuntimeVersionArn is required when UpdateRuntimeOn is Manual.")
    if update_runtime_on != "Manual" and runtime_version_arn:
        raise invalid_parameter(
            "RuntimeVersionArn can only be provided when UpdateRuntimeOn is Manual."
        )


@operation("PutRuntimeManagementConfig")
async def put_runtime_management(
    api_: Api, caller: Caller, request: api.PutRuntimeManagementConfigRequest
) -> api.PutRuntimeManagementConfigResponse:
    scope = caller.scope
    name = request.function_name
    # The qualifier must name $LATEST or an existing version; the setting is
    # kept per function (lambdafleet runs the same runtime image for all).
    found = resolve(api_.store, scope, name, request.qualifier or None)
    runtime_version = (
        request.runtime_version_arn if request.HasField("runtime_version_arn") else None
    )
    check_runtime_management(request.update_runtime_on, runtime_version)
    out = api.PutRuntimeManagementConfigResponse(
        update_runtime_on=request.update_runtime_on,
        function_arn=function_arn(scope, name, request.qualifier or None),
    )
    if runtime_version:
        out.runtime_version_arn = runtime_version
    record = found.record
    record.runtime_management.CopyFrom(out)
    save(api_.store, scope, record)
    return out


@operation("GetRuntimeManagementConfig")
async def get_runtime_management(
    api_: Api, caller: Caller, request: api.GetRuntimeManagementConfigRequest
) -> api.GetRuntimeManagementConfigResponse:
    scope = caller.scope
    name = request.function_name
    found = resolve(api_.store, scope, name, request.qualifier or None)
    stored = found.record.runtime_management
    out = api.GetRuntimeManagementConfigResponse(
        update_runtime_on=stored.update_runtime_on or DEFAULT_UPDATE_RUNTIME_ON,
        function_arn=function_arn(scope, name, request.qualifier or None),
    )
    # AWS names the runtime version only when it is pinned (Manual).
    if out.update_runtime_on == "Manual" and stored.runtime_version_arn:
        out.runtime_version_arn = stored.runtime_version_arn
    return out


# -- function scaling (Lambda Managed Instances) ------------------------------


def check_scaling(config: api.FunctionScalingConfig) -> None:
    if (
        config.HasField("min_execution_environments")
        and config.HasField("max_execution_environments")
        and config.min_execution_environments > config.max_execution_environments
    ):
        raise invalid_parameter(
            "MinExecutionEnvironments must be less than or equal to MaxExecutionEnvironments."
        )


LATEST_PUBLISHED = "$LATEST.PUBLISHED"


def scaling_id(name: str, qualifier: str) -> str:
    return f"{name}:{qualifier or LATEST}"


def scaled_version(api_: Api, caller: Caller, name: str, qualifier: str) -> Resolved:
    """The version a scaling config names: a number, or $LATEST.PUBLISHED
    (the model's only two forms) for the highest published version."""
    if qualifier != LATEST_PUBLISHED:
        return resolve(api_.store, caller.scope, name, qualifier or None)
    record = require(api_.store, caller.scope, name, qualifier)
    if not record.last_version:
        raise function_not_found(caller.scope, name, qualifier)
    return resolve(
        api_.store, caller.scope, name, str(record.last_version), not_found_qualifier=qualifier
    )


@operation("PutFunctionScalingConfig")
async def put_scaling(
    api_: Api, caller: Caller, request: api.PutFunctionScalingConfigRequest
) -> api.PutFunctionScalingConfigResponse:
    scope = caller.scope
    name = request.function_name
    found = scaled_version(api_, caller, name, request.qualifier)
    check_scaling(request.function_scaling_config)
    stored = api.GetFunctionScalingConfigResponse(
        function_arn=function_arn(scope, name, request.qualifier or None)
    )
    # Without instances to scale, what is requested is applied at once.
    stored.requested_function_scaling_config.CopyFrom(request.function_scaling_config)
    stored.applied_function_scaling_config.CopyFrom(request.function_scaling_config)
    api_.store.put(scope, kinds.SCALING, scaling_id(name, request.qualifier), stored, function=name)
    return api.PutFunctionScalingConfigResponse(function_state=found.configuration.state)


@operation("GetFunctionScalingConfig")
async def get_scaling(
    api_: Api, caller: Caller, request: api.GetFunctionScalingConfigRequest
) -> api.GetFunctionScalingConfigResponse:
    scope = caller.scope
    name = request.function_name
    scaled_version(api_, caller, name, request.qualifier)
    stored = api_.store.get(
        scope,
        kinds.SCALING,
        scaling_id(name, request.qualifier),
        api.GetFunctionScalingConfigResponse,
    )
    if stored is None:
        return api.GetFunctionScalingConfigResponse(
            function_arn=function_arn(scope, name, request.qualifier or None)
        )
    return stored
