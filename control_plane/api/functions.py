"""Functions: create, get, list, delete and invoke.

Configuration updates, versions and aliases live in versions.py and
aliases.py; this module holds what every function operation shares: turning
request members into a FunctionConfiguration with AWS's defaults.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from typing import Any

import structlog
from google.protobuf.message import Message

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import conflict, invalid_parameter
from lambdafleet.state.v1 import state_pb2

from .. import event_queue, lifecycle, validation
from ..store import Scope
from . import function_code
from .kinds import QUALIFIER_SCOPED
from .paging import decode_marker as _unmarker
from .paging import encode_marker as _marker
from .registry import Api, Caller, operation
from .resolve import (
    ALIAS,
    FUNCTION,
    LATEST,
    VERSION,
    Resolved,
    fingerprint,
    function_arn,
    function_not_found,
    is_version,
    load,
    partition,
    require,
    resolve,
    save,
    version_id,
)

log = structlog.get_logger(__name__)

DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3
DEFAULT_EPHEMERAL_MB = 512
DEFAULT_PAGE = 50


def present(request: Message) -> set[str]:
    """The top-level members the caller sent (json names)."""
    return set(request.present_members.paths)  # type: ignore[attr-defined]


def runtime_version_arn(region: str, runtime: str) -> str:
    # AWS names the runtime build that runs the function; one stable id per
    # runtime stands in for it.
    build = hashlib.sha256(runtime.encode()).hexdigest()
    return f"arn:{partition(region)}:lambda:{region}::runtime:{build}"


def apply_settings(
    config: api.FunctionConfiguration, request: Any, given: set[str], region: str
) -> None:
    """Copy the configuration members of a CreateFunction or
    UpdateFunctionConfiguration request onto `config` (only those given)."""
    for member, field in (
        ("Role", "role"),
        ("Handler", "handler"),
        ("Description", "description"),
        ("Timeout", "timeout"),
        ("MemorySize", "memory_size"),
        ("KMSKeyArn", "kms_key_arn"),
    ):
        if member in given:
            setattr(config, field, getattr(request, field))
    if "Runtime" in given:
        config.runtime = request.runtime
        config.runtime_version_config.runtime_version_arn = runtime_version_arn(
            region, request.runtime
        )
    if "Environment" in given:
        config.environment.Clear()
        config.environment.variables.update(request.environment.variables)
    if "TracingConfig" in given and request.tracing_config.HasField("mode"):
        config.tracing_config.mode = request.tracing_config.mode
    if "DeadLetterConfig" in given:
        if request.dead_letter_config.target_arn:
            config.dead_letter_config.target_arn = request.dead_letter_config.target_arn
        else:
            config.ClearField("dead_letter_config")
    if "EphemeralStorage" in given:
        config.ephemeral_storage.size = request.ephemeral_storage.size
    if "LoggingConfig" in given:
        logging = request.logging_config
        for field in ("log_format", "application_log_level", "system_log_level", "log_group"):
            if logging.HasField(field):
                setattr(config.logging_config, field, getattr(logging, field))
        if config.logging_config.log_format == "Text":
            # Log levels apply to JSON logs only; AWS drops them for Text.
            config.logging_config.ClearField("application_log_level")
            config.logging_config.ClearField("system_log_level")
        elif config.logging_config.log_format == "JSON":
            if not config.logging_config.HasField("application_log_level"):
                config.logging_config.application_log_level = "INFO"
            if not config.logging_config.HasField("system_log_level"):
                config.logging_config.system_log_level = "INFO"
    if "SnapStart" in given and request.snap_start.HasField("apply_on"):
        config.snap_start.apply_on = request.snap_start.apply_on
    if "ImageConfig" in given:
        if request.image_config.ListFields():
            config.image_config_response.image_config.CopyFrom(request.image_config)
        else:
            # An empty ImageConfig removes the overrides (recorded).
            config.ClearField("image_config_response")


def apply_attachments(
    api_: Api, scope: Scope, config: api.FunctionConfiguration, request: Any, given: set[str]
) -> None:
    """The members AWS checks against other resources or limits: the role's
    account, environment size, layer versions, VPC (CreateFunction and
    UpdateFunctionConfiguration)."""
    if "Role" in given:
        validation.check_role_account(request.role, scope.account_id)
    if "Environment" in given:
        function_code.check_environment(request.environment.variables)
    if "Layers" in given:
        layers = function_code.resolve_layers(api_.store, scope, request.layers)
        del config.layers[:]
        config.layers.extend(layers)
    if "VpcConfig" in given:
        config.vpc_config.CopyFrom(function_code.vpc_response(request.vpc_config))


def new_configuration(
    caller: Caller, request: api.CreateFunctionRequest
) -> api.FunctionConfiguration:
    """$LATEST of a new function, with AWS's defaults, before its code."""
    name = request.function_name
    config = api.FunctionConfiguration(
        function_name=name,
        function_arn=function_arn(caller.scope, name),
        description="",
        timeout=DEFAULT_TIMEOUT_S,
        memory_size=DEFAULT_MEMORY_MB,
        version=LATEST,
        package_type=request.package_type or "Zip",
    )
    config.tracing_config.mode = "PassThrough"
    config.ephemeral_storage.size = DEFAULT_EPHEMERAL_MB
    config.snap_start.apply_on = "None"
    config.snap_start.optimization_status = "Off"
    config.logging_config.log_format = "Text"
    config.logging_config.log_group = f"/aws/lambda/{name}"
    config.architectures.extend(request.architectures or ["x86_64"])
    # No Environment unless the request gives one: AWS's create answers
    # without one show none (26 recorded); the empty map often seen in the
    # recordings is what LocalStack's test helper sends.
    apply_settings(config, request, present(request), caller.region)
    return config


async def store_code(api_: Api, data: bytes) -> tuple[str, int]:
    validation.check_zip(data)
    sha = await asyncio.to_thread(api_.code.put, data)
    return sha, len(data)


def publish_version(
    api_: Api, scope: Scope, record: state_pb2.FunctionRecord, description: str | None = None
) -> api.FunctionConfiguration:
    """Store $LATEST as the next version (the caller saves `record`)."""
    record.last_version += 1
    number = str(record.last_version)
    latest = record.configuration
    if lifecycle.is_pending(latest) or lifecycle.is_updating(latest):
        # Published from code still being created or updated: the version
        # is Pending until that completes (recorded test_publish_with_update);
        # the scheduler activates it with $LATEST.
        config = lifecycle.created(latest)
    else:
        config = settled(latest)
    name = config.function_name
    config.version = number
    config.function_arn = function_arn(scope, name, number)
    config.revision_id = lifecycle.new_revision()
    config.last_modified = lifecycle.now_aws()
    if description is not None:
        config.description = description
    record.published_revision = record.configuration.revision_id
    # PublishVersion answers this version while $LATEST keeps this content.
    record.published_fingerprint = fingerprint(record.configuration)
    api_.store.put(scope, VERSION, version_id(name, number), config, function=name)
    log.info("function.published", function=name, version=number)
    return config


def settled(config: api.FunctionConfiguration) -> api.FunctionConfiguration:
    """A published version as it reads once creation or the update it came
    from completed: versions never show a transition in progress."""
    out = api.FunctionConfiguration()
    out.CopyFrom(config)
    out.state = lifecycle.ACTIVE
    out.last_update_status = lifecycle.SUCCESSFUL
    for field in (
        "state_reason",
        "state_reason_code",
        "last_update_status_reason",
        "last_update_status_reason_code",
    ):
        out.ClearField(field)  # type: ignore[arg-type]
    return out


async def set_code(
    api_: Api, config: api.FunctionConfiguration, record: state_pb2.FunctionRecord, code: Any
) -> None:
    """Put the code of `code` (a FunctionCode or an UpdateFunctionCodeRequest)
    on `config` and `record`, with AWS's errors for a source that does not fit
    the package type."""
    if config.package_type == "Image":
        if not code.image_uri:
            raise invalid_parameter(function_code.ZIP_ON_IMAGE)
        record.image_uri = code.image_uri
        config.code_sha256, record.resolved_image_uri = function_code.image_identity(code.image_uri)
        config.code_size = 0
        return
    if code.image_uri:
        raise invalid_parameter(function_code.IMAGE_URI_ON_ZIP)
    folder = function_code.hot_reload_path(api_.settings, code)
    if folder is not None:
        # Nothing is fetched or stored: the worker mounts the folder.
        record.hot_reload_path = folder
        config.code_sha256, config.code_size = function_code.HOT_RELOAD_SHA256, 0
        return
    record.hot_reload_path = ""
    data = await function_code.zip_source(api_.settings, code)
    if data is None:
        raise invalid_parameter(function_code.NO_SOURCE)
    config.code_sha256, config.code_size = await store_code(api_, data)


@operation("CreateFunction")
async def create_function(
    api_: Api, caller: Caller, request: api.CreateFunctionRequest
) -> api.FunctionConfiguration:
    scope = caller.scope
    name = request.function_name
    if load(api_.store, scope, name) is not None:
        raise conflict(f"Function already exist: {name}")
    config = new_configuration(caller, request)
    record = state_pb2.FunctionRecord()
    if config.package_type == "Image":
        if not request.code.image_uri:
            raise invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages."
                if not request.code.zip_file
                else function_code.IMAGE_URI_ON_ZIP
            )
    else:
        validation.check_zip_function(request.runtime, request.handler)
    apply_attachments(api_, scope, config, request, present(request))
    await set_code(api_, config, record, request.code)
    # The code was awaited: someone may have taken the name meanwhile.
    if load(api_.store, scope, name) is not None:
        raise conflict(f"Function already exist: {name}")
    config = lifecycle.created(config)
    record.configuration.CopyFrom(config)
    record.tags.update(request.tags)
    answer = config
    with api_.store.transaction():
        save(api_.store, scope, record)
        if request.publish:
            # The answer is $LATEST as created, numbered with the new version
            # but under the unqualified ARN (recorded create_response of
            # test_publish_version_on_create): a client that reuses that ARN
            # acts on the function, not on version 1.
            version = publish_version(api_, scope, record)
            answer = api.FunctionConfiguration()
            answer.CopyFrom(config)
            answer.version = version.version
            save(api_.store, scope, record)
    log.info("function.created", function=name, runtime=config.runtime)
    api_.scheduler.activate(scope, name)
    return answer


def code_location(
    caller: Caller, record: state_pb2.FunctionRecord, config: Any
) -> api.FunctionCodeLocation:
    if config.package_type == "Image":
        return api.FunctionCodeLocation(
            repository_type="ECR",
            image_uri=record.image_uri,
            resolved_image_uri=record.resolved_image_uri or record.image_uri,
        )
    if record.hot_reload_path and config.code_sha256 == function_code.HOT_RELOAD_SHA256:
        # No package exists; LocalStack answers the folder in the same way.
        return api.FunctionCodeLocation(
            repository_type="S3", location=f"Code location: {record.hot_reload_path}"
        )
    # AWS hands out a presigned S3 URL; the gateway serves the package itself.
    digest = base64.b64decode(config.code_sha256).hex()
    return api.FunctionCodeLocation(
        repository_type="S3", location=f"{caller.base_url}/_fleet/code/{digest}"
    )


@operation("GetFunction")
async def get_function(
    api_: Api, caller: Caller, request: api.GetFunctionRequest
) -> api.GetFunctionResponse:
    found = resolve(api_.store, caller.scope, request.function_name, request.qualifier or None)
    out = api.GetFunctionResponse(
        configuration=found.configuration,
        code=code_location(caller, found.record, found.configuration),
    )
    out.tags.update(found.record.tags)
    if found.record.HasField("reserved_concurrency"):
        out.concurrency.reserved_concurrent_executions = found.record.reserved_concurrency
    return out


@operation("GetFunctionConfiguration")
async def get_function_configuration(
    api_: Api, caller: Caller, request: api.GetFunctionConfigurationRequest
) -> api.FunctionConfiguration:
    found = resolve(api_.store, caller.scope, request.function_name, request.qualifier or None)
    return found.configuration


# ListFunctions leaves out the state of each function (recorded).
NOT_LISTED = (
    "state",
    "state_reason",
    "state_reason_code",
    "last_update_status",
    "last_update_status_reason",
    "last_update_status_reason_code",
    "runtime_version_config",
)


def listed(config: api.FunctionConfiguration, qualified: bool) -> api.FunctionConfiguration:
    """A configuration as ListFunctions shows it; with FunctionVersion=ALL
    $LATEST's ARN names its version too (recorded)."""
    out = api.FunctionConfiguration()
    out.CopyFrom(config)
    for field in NOT_LISTED:
        out.ClearField(field)  # type: ignore[arg-type]
    if qualified and out.version == LATEST:
        out.function_arn = f"{out.function_arn}:{LATEST}"
    return out


@operation("ListFunctions")
async def list_functions(
    api_: Api, caller: Caller, request: api.ListFunctionsRequest
) -> api.ListFunctionsResponse:
    scope = caller.scope
    if request.master_region:
        # Lambda@Edge replicas of functions mastered elsewhere: none exist here.
        return api.ListFunctionsResponse()
    limit = request.max_items or DEFAULT_PAGE
    after = _unmarker(request.marker) if request.marker else ""
    every_version = request.function_version == "ALL"
    # Entries sort by (function name, version): "$LATEST" sorts before the
    # zero-padded version ids, and the sort key is the marker.
    entries: list[tuple[str, api.FunctionConfiguration]] = []
    for name, record in api_.store.items(scope, FUNCTION, state_pb2.FunctionRecord):
        entries.append((f"{name}\x00", record.configuration))
        if every_version:
            for rid, config in api_.store.items(
                scope, VERSION, api.FunctionConfiguration, prefix=f"{name}:", function=name
            ):
                entries.append((f"{name}\x00{rid.rsplit(':', 1)[1]}", config))
    entries.sort(key=lambda entry: entry[0])
    page = [e for e in entries if e[0] > after][: limit + 1]
    out = api.ListFunctionsResponse(
        functions=[listed(config, every_version) for _, config in page[:limit]]
    )
    if len(page) > limit:
        out.next_marker = _marker(page[limit - 1][0])
    return out


@operation("DeleteFunction")
async def delete_function(
    api_: Api, caller: Caller, request: api.DeleteFunctionRequest
) -> api.DeleteFunctionResponse:
    scope = caller.scope
    name = request.function_name
    qualifier = request.qualifier
    # DeleteFunction never names the version it missed (recorded).
    require(api_.store, scope, name)
    if qualifier and is_version(qualifier):
        users = [
            alias.name
            for _, alias in api_.store.items(
                scope, ALIAS, api.AliasConfiguration, prefix=f"{name}:", function=name
            )
            if alias.function_version == qualifier
            or qualifier in alias.routing_config.additional_version_weights
        ]
        if users:
            raise conflict(
                "Unable to delete version because the following aliases reference it: "
                f"[{', '.join(users)}]"
            )
        with api_.store.transaction():
            if not api_.store.delete(scope, VERSION, version_id(name, qualifier)):
                raise function_not_found(scope, name)
            for kind in QUALIFIER_SCOPED:
                api_.store.delete(scope, kind, f"{name}:{qualifier}")
        api_.scheduler.retire(scope, name, qualifier)
        log.info("function.version_deleted", function=name, version=qualifier)
        return api.DeleteFunctionResponse()
    with api_.store.transaction():
        api_.store.delete_function(scope, name)
    api_.scheduler.retire(scope, name)
    log.info("function.deleted", function=name)
    return api.DeleteFunctionResponse()


def pick_version(alias: api.AliasConfiguration, draw: float | None = None) -> str:
    """The version an invocation of `alias` runs: its routing config sends
    each additional version its weight's share of invocations."""
    roll = random.random() if draw is None else draw
    for version, weight in sorted(alias.routing_config.additional_version_weights.items()):
        if roll < weight:
            return version
        roll -= weight
    return alias.function_version


def invocation_target(api_: Api, scope: Scope, found: Resolved) -> api.FunctionConfiguration:
    """The configuration an invocation runs: $LATEST keeps serving its
    previous settings while an update is applied; an alias follows its routing."""
    if found.alias is not None:
        version = pick_version(found.alias)
        if version != found.configuration.version:
            found = resolve(api_.store, scope, found.record.configuration.function_name, version)
    config = found.configuration
    if config.version == LATEST and found.record.HasField("serving"):
        return found.record.serving
    return config


def invoked_arn(scope: Scope, found: Resolved, qualifier: str) -> str:
    """The ARN an invocation was made through, qualified as it was (none,
    $LATEST, a version number or an alias): what the function sees as
    context.invoked_function_arn, whichever version runs it."""
    return function_arn(scope, found.record.configuration.function_name, qualifier or None)


def lease_qualifier(found: Resolved) -> str | None:
    """The qualifier whose provisioned concurrency an invocation may use:
    the alias invoked, else (None) the version that runs."""
    return found.alias.name if found.alias is not None else None


def queue_event(
    api_: Api,
    scope: Scope,
    config: api.FunctionConfiguration,
    qualifier: str,
    payload: bytes,
    client_context: str,
    request_id: str,
) -> None:
    """Store an Event invocation of `config` (the version it runs) made
    through `qualifier`, and have the dispatcher schedule it."""
    event = event_queue.new_event(config, qualifier, payload, client_context, request_id)
    if api_.events is not None:
        api_.events.enqueue(scope, event)
    else:
        event_queue.put(api_.store, scope, event)


@operation("Invoke")
async def invoke(
    api_: Api, caller: Caller, request: api.InvocationRequest
) -> api.InvocationResponse:
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
    invocation_type = request.invocation_type or "RequestResponse"
    if invocation_type == "DryRun":
        # No X-Amz-Executed-Version on a dry run (recorded: test_invocation_type_dry_run).
        return api.InvocationResponse(status_code=204)
    if invocation_type == "Event":
        # 202 only once the event is durably queued (dispatcher.py delivers it).
        queue_event(
            api_,
            scope,
            config,
            request.qualifier,
            request.payload,
            request.client_context,
            caller.request_id,
        )
        return api.InvocationResponse(status_code=202)
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
    caller.timing.update(worker=result.worker_us / 1000, runtime=result.runtime_us / 1000)
    if result.init_us:
        caller.timing["init"] = result.init_us / 1000
    out = api.InvocationResponse(
        status_code=200, payload=result.payload, executed_version=config.version
    )
    if result.status == apb.INVOKE_STATUS_FUNCTION_ERROR:
        out.function_error = result.function_error or "Unhandled"
    if wants_tail(request.log_type):
        out.log_result = log_result(result)
    return out


def wants_tail(log_type: str) -> bool:
    return (log_type or "None") == "Tail"


def log_result(result: apb.InvokeResult) -> str:
    """X-Amz-Log-Result: base64 of the last 4 KB of the invocation's log."""
    return base64.b64encode(result.log_tail.encode()[-4096:]).decode()
