"""Code signing configurations and the functions linked to them.

A configuration is a regional resource (kinds.CODE_SIGNING_CONFIG, id
`csc-<17 hex>`); a function names the one it uses in its FunctionRecord.
lambdafleet stores and answers the configuration as AWS does but does not
verify signatures: deployments are never refused for an untrusted artifact.
"""

from __future__ import annotations

import secrets

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, conflict
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle
from ..store import Scope
from . import kinds
from .paging import decode_marker as after_marker
from .paging import encode_marker as page_marker
from .registry import Api, Caller, operation
from .resolve import FUNCTION, function_arn, partition, require, save

DEFAULT_POLICY = "Warn"
DEFAULT_PAGE = 50


def new_id() -> str:
    return "csc-" + secrets.token_hex(9)[:17]


def csc_arn(scope: Scope, csc_id: str) -> str:
    return (
        f"arn:{partition(scope.region)}:lambda:{scope.region}:{scope.account_id}"
        f":code-signing-config:{csc_id}"
    )


def id_of(arn: str) -> str:
    """The id an ARN names (the model's pattern already checked its form)."""
    return arn.rsplit(":", 1)[-1]


def csc_not_found(arn: str) -> LambdaError:
    # AWS's answer for a missing configuration has no `Type` member (recorded).
    return LambdaError(
        "ResourceNotFoundException",
        f"The Lambda code signing configuration {arn} can not be found.",
        omit=("Type",),
    )


def load(api_: Api, scope: Scope, arn: str) -> api.CodeSigningConfig | None:
    found = api_.store.get(scope, kinds.CODE_SIGNING_CONFIG, id_of(arn), api.CodeSigningConfig)
    # An ARN of another region or account names nothing here.
    if found is None or found.code_signing_config_arn != arn:
        return None
    return found


def require_csc(api_: Api, scope: Scope, arn: str) -> api.CodeSigningConfig:
    found = load(api_, scope, arn)
    if found is None:
        raise csc_not_found(arn)
    return found


def users(api_: Api, scope: Scope, arn: str) -> list[str]:
    """ARNs of the functions linked to the configuration, in name order."""
    return [
        function_arn(scope, name)
        for name, record in api_.store.items(scope, FUNCTION, state_pb2.FunctionRecord)
        if record.code_signing_config_arn == arn
    ]


@operation("CreateCodeSigningConfig")
async def create(
    api_: Api, caller: Caller, request: api.CreateCodeSigningConfigRequest
) -> api.CreateCodeSigningConfigResponse:
    scope = caller.scope
    csc_id = new_id()
    config = api.CodeSigningConfig(
        code_signing_config_id=csc_id,
        code_signing_config_arn=csc_arn(scope, csc_id),
        description=request.description,
        last_modified=lifecycle.now_aws(),
    )
    config.allowed_publishers.CopyFrom(request.allowed_publishers)
    config.code_signing_policies.untrusted_artifact_on_deployment = (
        request.code_signing_policies.untrusted_artifact_on_deployment or DEFAULT_POLICY
    )
    with api_.store.transaction():
        api_.store.put(scope, kinds.CODE_SIGNING_CONFIG, csc_id, config)
        kinds.set_tags(api_.store, scope, config.code_signing_config_arn, dict(request.tags))
    return api.CreateCodeSigningConfigResponse(code_signing_config=config)


@operation("GetCodeSigningConfig")
async def get(
    api_: Api, caller: Caller, request: api.GetCodeSigningConfigRequest
) -> api.GetCodeSigningConfigResponse:
    config = require_csc(api_, caller.scope, request.code_signing_config_arn)
    return api.GetCodeSigningConfigResponse(code_signing_config=config)


@operation("UpdateCodeSigningConfig")
async def update(
    api_: Api, caller: Caller, request: api.UpdateCodeSigningConfigRequest
) -> api.UpdateCodeSigningConfigResponse:
    scope = caller.scope
    config = require_csc(api_, scope, request.code_signing_config_arn)
    given = set(request.present_members.paths)
    changed = False
    if "Description" in given:
        config.description = request.description
        changed = True
    if "AllowedPublishers" in given:
        config.allowed_publishers.CopyFrom(request.allowed_publishers)
        changed = True
    if "CodeSigningPolicies" in given:
        config.code_signing_policies.untrusted_artifact_on_deployment = (
            request.code_signing_policies.untrusted_artifact_on_deployment or DEFAULT_POLICY
        )
        changed = True
    if changed:
        config.last_modified = lifecycle.now_aws()
        api_.store.put(scope, kinds.CODE_SIGNING_CONFIG, config.code_signing_config_id, config)
    return api.UpdateCodeSigningConfigResponse(code_signing_config=config)


@operation("DeleteCodeSigningConfig")
async def delete(
    api_: Api, caller: Caller, request: api.DeleteCodeSigningConfigRequest
) -> api.DeleteCodeSigningConfigResponse:
    scope = caller.scope
    arn = request.code_signing_config_arn
    config = require_csc(api_, scope, arn)
    if users(api_, scope, arn):
        # AWS deletes a configuration only when no function uses it.
        raise conflict(
            f"The code signing configuration {arn} cannot be deleted because it is still "
            "attached to one or more functions."
        )
    with api_.store.transaction():
        api_.store.delete(scope, kinds.CODE_SIGNING_CONFIG, config.code_signing_config_id)
        kinds.drop_tags(api_.store, scope, arn)
    return api.DeleteCodeSigningConfigResponse()


@operation("ListCodeSigningConfigs")
async def list_configs(
    api_: Api, caller: Caller, request: api.ListCodeSigningConfigsRequest
) -> api.ListCodeSigningConfigsResponse:
    limit = request.max_items or DEFAULT_PAGE
    after = after_marker(request.marker) if request.marker else ""
    rows = api_.store.items(
        caller.scope, kinds.CODE_SIGNING_CONFIG, api.CodeSigningConfig, after=after, limit=limit + 1
    )
    out = api.ListCodeSigningConfigsResponse(code_signing_configs=[c for _, c in rows[:limit]])
    if len(rows) > limit:
        out.next_marker = page_marker(rows[limit - 1][0])
    return out


@operation("PutFunctionCodeSigningConfig")
async def put_function(
    api_: Api, caller: Caller, request: api.PutFunctionCodeSigningConfigRequest
) -> api.PutFunctionCodeSigningConfigResponse:
    scope = caller.scope
    arn = request.code_signing_config_arn
    # The configuration is checked before the function (recorded: both
    # missing answers the configuration's error).
    if load(api_, scope, arn) is None:
        raise LambdaError(
            "CodeSigningConfigNotFoundException",
            "The code signing configuration cannot be found. Check that the provided "
            f"configuration is not deleted: {arn}.",
        )
    record = require(api_.store, scope, request.function_name)
    record.code_signing_config_arn = arn
    save(api_.store, scope, record)
    return api.PutFunctionCodeSigningConfigResponse(
        code_signing_config_arn=arn, function_name=request.function_name
    )


@operation("GetFunctionCodeSigningConfig")
async def get_function(
    api_: Api, caller: Caller, request: api.GetFunctionCodeSigningConfigRequest
) -> api.GetFunctionCodeSigningConfigResponse:
    record = require(api_.store, caller.scope, request.function_name)
    if not record.code_signing_config_arn:
        # AWS answers 200 with no members at all (recorded).
        return api.GetFunctionCodeSigningConfigResponse()
    return api.GetFunctionCodeSigningConfigResponse(
        code_signing_config_arn=record.code_signing_config_arn,
        function_name=request.function_name,
    )


@operation("DeleteFunctionCodeSigningConfig")
async def delete_function(
    api_: Api, caller: Caller, request: api.DeleteFunctionCodeSigningConfigRequest
) -> empty_pb2.Empty:
    scope = caller.scope
    record = require(api_.store, scope, request.function_name)
    if record.code_signing_config_arn:
        record.code_signing_config_arn = ""
        save(api_.store, scope, record)
    return empty_pb2.Empty()


@operation("ListFunctionsByCodeSigningConfig")
async def list_functions(
    api_: Api, caller: Caller, request: api.ListFunctionsByCodeSigningConfigRequest
) -> api.ListFunctionsByCodeSigningConfigResponse:
    scope = caller.scope
    arn = request.code_signing_config_arn
    require_csc(api_, scope, arn)
    limit = request.max_items or DEFAULT_PAGE
    after = after_marker(request.marker) if request.marker else ""
    arns = [a for a in users(api_, scope, arn) if a > after][: limit + 1]
    out = api.ListFunctionsByCodeSigningConfigResponse(function_arns=arns[:limit])
    if len(arns) > limit:
        out.next_marker = page_marker(arns[limit - 1])
    return out
