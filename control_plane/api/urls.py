"""Function URL configs: one per function or alias, each with its own
`https://<id>.lambda-url.<region>.on.aws/` address.

Only configuration for now: serving HTTP requests sent to the URL is a later
issue's. The qualifier pattern (an alias, never a version or $LATEST) is the
model's, checked by the gateway; the errors here are those recorded in
TestLambdaUrl: create and update say "Function does not exist" when the
function or alias is missing, get and delete "The resource you requested
does not exist." for anything missing.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import conflict, not_found

from ..store import ResourceStore, Scope
from .kinds import URL_CONFIG
from .paging import decode_marker as _after
from .paging import encode_marker as _marker
from .registry import Api, Caller, operation
from .resolve import function_arn, get_alias, load

DEFAULT_PAGE = 50
DEFAULT_INVOKE_MODE = "BUFFERED"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_NO_RESOURCE = "The resource you requested does not exist."
_NO_FUNCTION = "Function does not exist"


def url_id() -> str:
    """The host label of a function URL: 32 lowercase letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


def function_url(region: str, uid: str) -> str:
    return f"https://{uid}.lambda-url.{region}.on.aws/"


def now_url() -> str:
    """URL configs' CreationTime and LastModifiedTime: ISO-8601 with
    microseconds and Z, as AWS writes them (not LastModified's format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _row_id(name: str, qualifier: str) -> str:
    return f"{name}:{qualifier}" if qualifier else name


def _exists(store: ResourceStore, scope: Scope, name: str, qualifier: str) -> bool:
    if load(store, scope, name) is None:
        return False
    return not qualifier or get_alias(store, scope, name, qualifier) is not None


def _stored(
    api_: Api, scope: Scope, name: str, qualifier: str
) -> api.GetFunctionUrlConfigResponse | None:
    if not _exists(api_.store, scope, name, qualifier):
        return None
    return api_.store.get(
        scope, URL_CONFIG, _row_id(name, qualifier), api.GetFunctionUrlConfigResponse
    )


@operation("CreateFunctionUrlConfig")
async def create_function_url_config(
    api_: Api, caller: Caller, request: api.CreateFunctionUrlConfigRequest
) -> api.CreateFunctionUrlConfigResponse:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    if not _exists(api_.store, scope, name, qualifier):
        raise not_found(_NO_FUNCTION)
    arn = function_arn(scope, name, qualifier or None)
    now = now_url()
    config = api.GetFunctionUrlConfigResponse(
        function_url=function_url(caller.region, url_id()),
        function_arn=arn,
        auth_type=request.auth_type,
        creation_time=now,
        last_modified_time=now,
        invoke_mode=request.invoke_mode or DEFAULT_INVOKE_MODE,
    )
    if request.HasField("cors"):
        config.cors.CopyFrom(request.cors)
    if not api_.store.insert(scope, URL_CONFIG, _row_id(name, qualifier), config, function=name):
        raise conflict(
            f"Failed to create function url config for [functionArn = {arn}]. Error message:  "
            "FunctionUrlConfig exists for this Lambda function"
        )
    # The answer has no LastModifiedTime, and InvokeMode only when asked for
    # (recorded url_creation).
    out = api.CreateFunctionUrlConfigResponse(
        function_url=config.function_url,
        function_arn=arn,
        auth_type=config.auth_type,
        creation_time=now,
    )
    if config.HasField("cors"):
        out.cors.CopyFrom(config.cors)
    if request.HasField("invoke_mode"):
        out.invoke_mode = request.invoke_mode
    return out


@operation("GetFunctionUrlConfig")
async def get_function_url_config(
    api_: Api, caller: Caller, request: api.GetFunctionUrlConfigRequest
) -> api.GetFunctionUrlConfigResponse:
    config = _stored(api_, caller.scope, request.function_name, request.qualifier)
    if config is None:
        raise not_found(_NO_RESOURCE)
    return config


@operation("UpdateFunctionUrlConfig")
async def update_function_url_config(
    api_: Api, caller: Caller, request: api.UpdateFunctionUrlConfigRequest
) -> api.UpdateFunctionUrlConfigResponse:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    if not _exists(api_.store, scope, name, qualifier):
        raise not_found(_NO_FUNCTION)
    config = _stored(api_, scope, name, qualifier)
    if config is None:
        raise not_found(_NO_RESOURCE)
    if request.HasField("auth_type"):
        config.auth_type = request.auth_type
    if request.HasField("cors"):
        config.cors.CopyFrom(request.cors)
    if request.HasField("invoke_mode"):
        config.invoke_mode = request.invoke_mode
    config.last_modified_time = now_url()
    api_.store.put(scope, URL_CONFIG, _row_id(name, qualifier), config, function=name)
    out = api.UpdateFunctionUrlConfigResponse()
    out.CopyFrom(_as_update(config))
    if not request.HasField("invoke_mode"):
        # InvokeMode only when asked for (recorded updated_url_config).
        out.ClearField("invoke_mode")
    return out


def _as_update(config: api.GetFunctionUrlConfigResponse) -> api.UpdateFunctionUrlConfigResponse:
    # Same members, same field numbers.
    return api.UpdateFunctionUrlConfigResponse.FromString(config.SerializeToString())


@operation("DeleteFunctionUrlConfig")
async def delete_function_url_config(
    api_: Api, caller: Caller, request: api.DeleteFunctionUrlConfigRequest
) -> empty_pb2.Empty:
    scope = caller.scope
    name, qualifier = request.function_name, request.qualifier
    if not _exists(api_.store, scope, name, qualifier) or not api_.store.delete(
        scope, URL_CONFIG, _row_id(name, qualifier)
    ):
        raise not_found(_NO_RESOURCE)
    return empty_pb2.Empty()


def _as_item(config: api.GetFunctionUrlConfigResponse) -> api.FunctionUrlConfig:
    item = api.FunctionUrlConfig(
        function_url=config.function_url,
        function_arn=config.function_arn,
        creation_time=config.creation_time,
        last_modified_time=config.last_modified_time,
        auth_type=config.auth_type,
        invoke_mode=config.invoke_mode,
    )
    if config.HasField("cors"):
        item.cors.CopyFrom(config.cors)
    return item


@operation("ListFunctionUrlConfigs")
async def list_function_url_configs(
    api_: Api, caller: Caller, request: api.ListFunctionUrlConfigsRequest
) -> api.ListFunctionUrlConfigsResponse:
    scope = caller.scope
    name = request.function_name
    if load(api_.store, scope, name) is None:
        raise not_found(_NO_FUNCTION)
    limit = request.max_items or DEFAULT_PAGE
    # The function's own config has id NAME, its aliases' NAME:ALIAS; rows of
    # deleted aliases are left out.
    rows = [
        (rid, config)
        for rid, config in api_.store.items(
            scope, URL_CONFIG, api.GetFunctionUrlConfigResponse, function=name
        )
        if rid == name
        or (rid.startswith(f"{name}:") and _exists(api_.store, scope, name, rid[len(name) + 1 :]))
    ]
    after = _after(request.marker)
    page = [(rid, c) for rid, c in rows if rid > after][: limit + 1]
    out = api.ListFunctionUrlConfigsResponse(
        function_url_configs=[_as_item(c) for _, c in page[:limit]]
    )
    if len(page) > limit:
        out.next_marker = _marker(page[limit - 1][0])
    return out
