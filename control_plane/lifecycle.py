"""AWS's function state model, as pure transitions on FunctionConfiguration.

State: Pending (Creating) -> Active, or -> Failed with a reason.
LastUpdateStatus: an update sets InProgress, then Successful or Failed.
Every transition gets a fresh RevisionId, as AWS's does. Nothing here
performs I/O.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import conflict

Config = api.FunctionConfiguration

PENDING, ACTIVE, INACTIVE, FAILED = "Pending", "Active", "Inactive", "Failed"
IN_PROGRESS, SUCCESSFUL = "InProgress", "Successful"


def now_aws() -> str:
    """A timestamp as AWS writes LastModified: 2026-11-26T22:41:00.000+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def new_revision() -> str:
    return str(uuid.uuid4())


def _copy(config: Config) -> Config:
    out = Config()
    out.CopyFrom(config)
    return out


def created(config: Config) -> Config:
    out = _copy(config)
    out.state = PENDING
    out.state_reason = "The function is being created."
    out.state_reason_code = "Creating"
    out.ClearField("last_update_status")
    out.ClearField("last_update_status_reason")
    out.ClearField("last_update_status_reason_code")
    out.last_modified = now_aws()
    out.revision_id = new_revision()
    return out


def update_started(config: Config) -> Config:
    """An update was accepted: it applies in the background (AWS's wording
    for the reason is the creation one, as recorded)."""
    out = _copy(config)
    out.last_update_status = IN_PROGRESS
    out.last_update_status_reason = "The function is being created."
    out.last_update_status_reason_code = "Creating"
    out.last_modified = now_aws()
    out.revision_id = new_revision()
    return out


def image_in_preparation(config: Config, worker_id: str, step: str) -> Config | None:
    """A Pending function's reason while a worker pulls or builds its
    runtime's image (the first of a runtime can take minutes), or None when
    the function is not Pending. The RevisionId stays: nothing the caller
    set has changed, and activation tells changes by it."""
    if config.state != PENDING:
        return None
    out = _copy(config)
    out.state_reason = (
        f"The runtime image for {config.runtime} is being built on worker {worker_id} "
        f"(the first function of a runtime waits for it): {step}"
    )
    return out


def activated(config: Config) -> Config:
    """Creation or an update finished: the function runs the new settings."""
    out = _copy(config)
    out.state = ACTIVE
    out.ClearField("state_reason")
    out.ClearField("state_reason_code")
    out.last_update_status = SUCCESSFUL
    out.ClearField("last_update_status_reason")
    out.ClearField("last_update_status_reason_code")
    out.revision_id = new_revision()
    return out


def failed(config: Config, reason: str, reason_code: str) -> Config:
    out = _copy(config)
    if out.state == PENDING:
        out.state = FAILED
        out.state_reason = reason
        out.state_reason_code = reason_code
    out.last_update_status = FAILED
    out.last_update_status_reason = reason
    out.last_update_status_reason_code = reason_code
    out.revision_id = new_revision()
    return out


def check_invocable(config: Config) -> None:
    """Raise AWS's error when the function cannot take an invocation now."""
    if config.state != ACTIVE:
        raise conflict(
            "The operation cannot be performed at this time. "
            f"The function is currently in the following state: {config.state or PENDING}"
        )


def check_updatable(config: Config) -> None:
    """Raise AWS's error when an update arrives while another is applied or
    the function is still being created."""
    check_invocable(config)
    if config.last_update_status == IN_PROGRESS:
        raise conflict(
            "The operation cannot be performed at this time. An update is in progress for "
            f"resource: {config.function_arn}"
        )


def is_pending(config: Config) -> bool:
    return config.state == PENDING


def is_updating(config: Config) -> bool:
    return config.last_update_status == IN_PROGRESS
