"""Layers: publish, list, get and delete layer versions, and their policies.

Rows (regional, kinds.py):
- LAYER id NAME: LayerRecord, the version counter; it outlives its versions
  so a number is never reused (test_layer_lifecycle publishes 3 after
  deleting 1 and 2).
- LAYER_VERSION id NAME:0000000003: GetLayerVersionResponse without
  Content.Location (it names the gateway the caller reached, filled on read);
  the functions module reads these to resolve a function's Layers.
- LAYER_POLICY id NAME:0000000003: Policy of the version.
The package is in the CodeStore by its SHA-256, served like function code.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

from google.protobuf import empty_pb2

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError, invalid_parameter, not_found
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle, validation
from ..store import Scope
from . import function_code
from .kinds import LAYER, LAYER_POLICY, LAYER_VERSION, numbered
from .paging import decode_marker as unmarker
from .paging import encode_marker as marker
from .permissions import NO_POLICY, RESOURCE_NOT_FOUND, check_new_sid, document, encode, without
from .registry import Api, Caller, operation
from .resolve import partition

DEFAULT_PAGE = 50
_LAYER_ARN = re.compile(
    r"arn:[^:]+:lambda:(?P<region>[^:]+):(?P<account>\d{12}):layer:(?P<name>.+)"
)
_LAYER_VERSION_ARN = re.compile(
    r"arn:[^:]+:lambda:(?P<region>[^:]+):(?P<account>\d{12}):layer:(?P<name>[^:]+):(?P<v>\d+)"
)

# --- pure -----------------------------------------------------------------------


def layer_arn(scope: Scope, name: str) -> str:
    return f"arn:{partition(scope.region)}:lambda:{scope.region}:{scope.account_id}:layer:{name}"


def layer_name(value: str) -> str:
    """LayerName may be the layer's ARN."""
    m = _LAYER_ARN.fullmatch(value)
    return m["name"] if m else value


def check_version_number(number: int) -> None:
    if number < 1:
        raise invalid_parameter("Layer Version Cannot be less than 1")


def matches(version: api.GetLayerVersionResponse, runtime: str, architecture: str) -> bool:
    """ListLayers/ListLayerVersions filters: a version matches a runtime or
    architecture it declares compatible (unset filters match everything)."""
    if runtime and runtime not in version.compatible_runtimes:
        return False
    return not architecture or architecture in version.compatible_architectures


def list_item(version: api.GetLayerVersionResponse) -> api.LayerVersionsListItem:
    item = api.LayerVersionsListItem(
        layer_version_arn=version.layer_version_arn,
        version=version.version,
        description=version.description,
        created_date=version.created_date,
        compatible_runtimes=version.compatible_runtimes,
        compatible_architectures=version.compatible_architectures,
    )
    if version.HasField("license_info"):
        item.license_info = version.license_info
    return item


def layer_statement(
    sid: str, principal: str, resource: str, organization_id: str | None, region: str
) -> dict[str, Any]:
    """The statement AddLayerVersionPermission adds (recorded key order)."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*"
        if principal == "*"
        else {
            "AWS": principal
            if principal.startswith("arn:")
            else f"arn:{partition(region)}:iam::{principal}:root"
        },
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
    }
    if organization_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
    return statement


def layer_policy_mismatch() -> LambdaError:
    return LambdaError(
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetLayerPolicy API to retrieve the latest Revision Id",
    )


# --- I/O ------------------------------------------------------------------------


def _with_location(caller: Caller, version: api.GetLayerVersionResponse) -> Any:
    out = api.GetLayerVersionResponse()
    out.CopyFrom(version)
    digest = base64.b64decode(version.content.code_sha256).hex()
    out.content.location = f"{caller.base_url}/_fleet/code/{digest}"
    return out


def _get(api_: Api, scope: Scope, name: str, number: int) -> api.GetLayerVersionResponse | None:
    return api_.store.get(scope, LAYER_VERSION, numbered(name, number), api.GetLayerVersionResponse)


def _versions(api_: Api, scope: Scope, name: str) -> list[api.GetLayerVersionResponse]:
    """Every version of a layer, newest first."""
    rows = api_.store.items(scope, LAYER_VERSION, api.GetLayerVersionResponse, prefix=f"{name}:")
    return [v for _, v in reversed(rows)]


@operation("PublishLayerVersion")
async def publish_layer_version(
    api_: Api, caller: Caller, request: api.PublishLayerVersionRequest
) -> api.PublishLayerVersionResponse:
    scope = caller.scope
    name = layer_name(request.layer_name)
    content = request.content
    if content.HasField("zip_file"):
        data = content.zip_file
    elif content.s3_bucket and content.s3_key:
        # The same S3 fetch as a function's code, with the same errors.
        data = await function_code.fetch_s3(
            api_.settings, content.s3_bucket, content.s3_key, content.s3_object_version or None
        )
    else:
        raise invalid_parameter(
            "Please provide a source for layer code (ZipFile, or S3Bucket and S3Key)."
        )
    # Checked as a function's zip is: a layer that cannot be unpacked would
    # otherwise fail every function that uses it, at each invocation.
    validation.check_zip(data)
    sha = await asyncio.to_thread(api_.code.put, data)
    with api_.store.transaction():
        layer = api_.store.get(scope, LAYER, name, state_pb2.LayerRecord) or state_pb2.LayerRecord()
        layer.last_version += 1
        api_.store.put(scope, LAYER, name, layer)
        arn = layer_arn(scope, name)
        version = api.GetLayerVersionResponse(
            layer_arn=arn,
            layer_version_arn=f"{arn}:{layer.last_version}",
            description=request.description,
            created_date=lifecycle.now_aws(),
            version=layer.last_version,
            compatible_runtimes=request.compatible_runtimes,
            compatible_architectures=request.compatible_architectures,
        )
        version.content.code_sha256 = sha
        version.content.code_size = len(data)
        if request.HasField("license_info"):
            version.license_info = request.license_info
        api_.store.put(scope, LAYER_VERSION, numbered(name, layer.last_version), version)
    out = api.PublishLayerVersionResponse()
    out.ParseFromString(_with_location(caller, version).SerializeToString())
    return out


@operation("GetLayerVersion")
async def get_layer_version(
    api_: Api, caller: Caller, request: api.GetLayerVersionRequest
) -> api.GetLayerVersionResponse:
    check_version_number(request.version_number)
    version = _get(api_, caller.scope, layer_name(request.layer_name), request.version_number)
    if version is None:
        raise not_found(RESOURCE_NOT_FOUND)
    return _with_location(caller, version)  # type: ignore[no-any-return]


@operation("GetLayerVersionByArn")
async def get_layer_version_by_arn(
    api_: Api, caller: Caller, request: api.GetLayerVersionByArnRequest
) -> api.GetLayerVersionResponse:
    m = _LAYER_VERSION_ARN.fullmatch(request.arn)
    if m is None or m["region"] != caller.region:
        raise not_found(RESOURCE_NOT_FOUND)
    scope = Scope(m["account"], caller.region)
    version = _get(api_, scope, m["name"], int(m["v"]))
    if version is None:
        raise not_found(RESOURCE_NOT_FOUND)
    return _with_location(caller, version)  # type: ignore[no-any-return]


@operation("DeleteLayerVersion")
async def delete_layer_version(
    api_: Api, caller: Caller, request: api.DeleteLayerVersionRequest
) -> empty_pb2.Empty:
    check_version_number(request.version_number)
    rid = numbered(layer_name(request.layer_name), request.version_number)
    # Deleting what is not there succeeds (recorded); functions that use the
    # version keep their copy of it, as on AWS.
    with api_.store.transaction():
        api_.store.delete(caller.scope, LAYER_VERSION, rid)
        api_.store.delete(caller.scope, LAYER_POLICY, rid)
    return empty_pb2.Empty()


@operation("ListLayerVersions")
async def list_layer_versions(
    api_: Api, caller: Caller, request: api.ListLayerVersionsRequest
) -> api.ListLayerVersionsResponse:
    name = layer_name(request.layer_name)
    limit = request.max_items or DEFAULT_PAGE
    found = [
        v
        for v in _versions(api_, caller.scope, name)
        if matches(v, request.compatible_runtime, request.compatible_architecture)
    ]
    if request.marker:
        after = int(unmarker(request.marker))
        found = [v for v in found if v.version < after]
    out = api.ListLayerVersionsResponse(layer_versions=[list_item(v) for v in found[:limit]])
    if len(found) > limit:
        out.next_marker = marker(str(found[limit - 1].version))
    return out


@operation("ListLayers")
async def list_layers(
    api_: Api, caller: Caller, request: api.ListLayersRequest
) -> api.ListLayersResponse:
    scope = caller.scope
    limit = request.max_items or DEFAULT_PAGE
    after = unmarker(request.marker) if request.marker else ""
    out = api.ListLayersResponse()
    for name, _ in api_.store.items(scope, LAYER, state_pb2.LayerRecord, after=after):
        latest = next(
            (
                v
                for v in _versions(api_, scope, name)
                if matches(v, request.compatible_runtime, request.compatible_architecture)
            ),
            None,
        )
        if latest is None:
            continue
        if len(out.layers) == limit:
            out.next_marker = marker(out.layers[-1].layer_name)
            break
        out.layers.add(
            layer_name=name,
            layer_arn=latest.layer_arn,
            latest_matching_version=list_item(latest),
        )
    return out


# --- layer version policies ----------------------------------------------------


def _require_version(api_: Api, scope: Scope, name: str, number: int) -> str:
    """The version's id, or AWS's not-found naming the version's ARN."""
    check_version_number(number)
    rid = numbered(name, number)
    if not api_.store.exists(scope, LAYER_VERSION, rid):
        raise not_found(f"Layer version {layer_arn(scope, name)}:{number} does not exist.")
    return rid


@operation("AddLayerVersionPermission")
async def add_layer_version_permission(
    api_: Api, caller: Caller, request: api.AddLayerVersionPermissionRequest
) -> api.AddLayerVersionPermissionResponse:
    scope = caller.scope
    name = layer_name(request.layer_name)
    with api_.store.transaction():
        rid = _require_version(api_, scope, name, request.version_number)
        policy = api_.store.get(scope, LAYER_POLICY, rid, state_pb2.Policy)
        if request.revision_id and (policy is None or request.revision_id != policy.revision_id):
            raise layer_policy_mismatch()
        check_new_sid(policy, request.statement_id)
        statement = layer_statement(
            request.statement_id,
            request.principal,
            f"{layer_arn(scope, name)}:{request.version_number}",
            request.organization_id if request.HasField("organization_id") else None,
            caller.region,
        )
        policy = policy or state_pb2.Policy()
        policy.statements.append(encode(statement))
        policy.revision_id = lifecycle.new_revision()
        api_.store.put(scope, LAYER_POLICY, rid, policy)
    return api.AddLayerVersionPermissionResponse(
        statement=encode(statement), revision_id=policy.revision_id
    )


@operation("GetLayerVersionPolicy")
async def get_layer_version_policy(
    api_: Api, caller: Caller, request: api.GetLayerVersionPolicyRequest
) -> api.GetLayerVersionPolicyResponse:
    scope = caller.scope
    rid = _require_version(api_, scope, layer_name(request.layer_name), request.version_number)
    policy = api_.store.get(scope, LAYER_POLICY, rid, state_pb2.Policy)
    if policy is None:
        raise not_found(NO_POLICY)
    return api.GetLayerVersionPolicyResponse(
        policy=document(list(policy.statements)), revision_id=policy.revision_id
    )


@operation("RemoveLayerVersionPermission")
async def remove_layer_version_permission(
    api_: Api, caller: Caller, request: api.RemoveLayerVersionPermissionRequest
) -> empty_pb2.Empty:
    scope = caller.scope
    with api_.store.transaction():
        rid = _require_version(api_, scope, layer_name(request.layer_name), request.version_number)
        policy = api_.store.get(scope, LAYER_POLICY, rid, state_pb2.Policy)
        if request.revision_id and (policy is None or request.revision_id != policy.revision_id):
            raise layer_policy_mismatch()
        if policy is None:
            raise not_found(NO_POLICY)
        kept = without(policy, request.statement_id)
        if kept:
            del policy.statements[:]
            policy.statements.extend(kept)
            policy.revision_id = lifecycle.new_revision()
            api_.store.put(scope, LAYER_POLICY, rid, policy)
        else:
            api_.store.delete(scope, LAYER_POLICY, rid)
    return empty_pb2.Empty()
