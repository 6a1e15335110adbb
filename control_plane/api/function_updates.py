"""UpdateFunctionCode and UpdateFunctionConfiguration.

An accepted update answers at once with LastUpdateStatus InProgress; the
scheduler makes it Successful once a worker has the runtime ready. Until
then invocations of $LATEST run the previous code and settings
(FunctionRecord.serving), and a second update is refused, as on AWS.
"""

from __future__ import annotations

from typing import Any

import structlog

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError
from lambdafleet.state.v1 import state_pb2

from .. import lifecycle
from ..store import Scope
from .functions import (
    apply_attachments,
    apply_settings,
    present,
    publish_version,
    set_code,
)
from .registry import Api, Caller, operation
from .resolve import require, save

log = structlog.get_logger(__name__)


def check_revision(config: api.FunctionConfiguration, revision_id: str) -> None:
    """Optimistic locking: the caller's RevisionId must be the current one."""
    if revision_id and revision_id != config.revision_id:
        raise LambdaError(
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )


def check_update(record: state_pb2.FunctionRecord, request: Any) -> None:
    check_revision(record.configuration, request.revision_id)
    lifecycle.check_updatable(record.configuration)


def start_update(
    api_: Api, scope: Scope, record: state_pb2.FunctionRecord, config: api.FunctionConfiguration
) -> api.FunctionConfiguration:
    """Store `config` as $LATEST with the update in progress and have the
    scheduler complete it; the previous settings keep serving meanwhile."""
    started = lifecycle.update_started(config)
    record.configuration.CopyFrom(started)
    save(api_.store, scope, record)
    api_.scheduler.activate(scope, started.function_name)
    return started


@operation("UpdateFunctionCode")
async def update_function_code(
    api_: Api, caller: Caller, request: api.UpdateFunctionCodeRequest
) -> api.FunctionConfiguration:
    scope = caller.scope
    name = request.function_name
    check_update(require(api_.store, scope, name), request)
    staged = state_pb2.FunctionRecord()
    config = api.FunctionConfiguration()
    config.CopyFrom(require(api_.store, scope, name).configuration)
    await set_code(api_, config, staged, request)
    if "Architectures" in present(request):
        del config.architectures[:]
        config.architectures.extend(request.architectures)
    if request.dry_run:
        # Checked, not applied: the function as the update would leave it.
        return config
    # The code was awaited: the function may have changed or gone meanwhile.
    record = require(api_.store, scope, name)
    check_update(record, request)
    record.image_uri, record.resolved_image_uri = staged.image_uri, staged.resolved_image_uri
    record.hot_reload_path = staged.hot_reload_path
    with api_.store.transaction():
        started = start_update(api_, scope, record, config)
        if not request.publish:
            log.info("function.code_updated", function=name, sha=started.code_sha256)
            return started
        # The new version is published from the updated $LATEST; the answer
        # is that version, Pending until the update completes (recorded
        # test_publish_with_update).
        version = publish_version(api_, scope, record)
        save(api_.store, scope, record)
    log.info("function.code_updated", function=name, version=version.version)
    return version


@operation("UpdateFunctionConfiguration")
async def update_function_configuration(
    api_: Api, caller: Caller, request: api.UpdateFunctionConfigurationRequest
) -> api.FunctionConfiguration:
    scope = caller.scope
    name = request.function_name
    record = require(api_.store, scope, name)
    check_update(record, request)
    given = present(request)
    config = api.FunctionConfiguration()
    config.CopyFrom(record.configuration)
    apply_attachments(api_, scope, config, request, given)
    apply_settings(config, request, given, caller.region)
    started = start_update(api_, scope, record, config)
    log.info("function.configuration_updated", function=name, members=sorted(given))
    return started
