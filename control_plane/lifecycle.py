"""AWS's function state model, as pure transitions on FunctionConfiguration.

Pending (Creating) -> Active, or -> Failed with a reason. Every transition
gets a fresh RevisionId, as AWS's does. Nothing here performs I/O.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lambdafleet.errors import conflict
from lambdafleet.functions.v1 import functions_pb2 as pb

Config = pb.FunctionConfiguration

STATE_NAMES: dict[int, str] = {
    pb.FUNCTION_STATE_PENDING: "Pending",
    pb.FUNCTION_STATE_ACTIVE: "Active",
    pb.FUNCTION_STATE_INACTIVE: "Inactive",
    pb.FUNCTION_STATE_FAILED: "Failed",
}


def now_aws() -> str:
    """A timestamp as AWS writes LastModified: 2026-11-26T22:41:00.000+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def new_revision() -> str:
    return str(uuid.uuid4())


def created(config: Config) -> Config:
    out = Config()
    out.CopyFrom(config)
    out.state = pb.FUNCTION_STATE_PENDING
    out.state_reason = "The function is being created."
    out.state_reason_code = "Creating"
    out.last_update_status = pb.LAST_UPDATE_STATUS_UNSPECIFIED
    out.last_modified = now_aws()
    out.revision_id = new_revision()
    return out


def activated(config: Config) -> Config:
    out = Config()
    out.CopyFrom(config)
    out.state = pb.FUNCTION_STATE_ACTIVE
    out.ClearField("state_reason")
    out.ClearField("state_reason_code")
    out.last_update_status = pb.LAST_UPDATE_STATUS_SUCCESSFUL
    out.revision_id = new_revision()
    return out


def failed(config: Config, reason: str, reason_code: str) -> Config:
    out = Config()
    out.CopyFrom(config)
    out.state = pb.FUNCTION_STATE_FAILED
    out.state_reason = reason
    out.state_reason_code = reason_code
    out.last_update_status = pb.LAST_UPDATE_STATUS_FAILED
    out.last_update_status_reason = reason
    out.last_update_status_reason_code = reason_code
    out.revision_id = new_revision()
    return out


def check_invocable(config: Config) -> None:
    """Raise AWS's error when the function cannot take an invocation now."""
    if config.state != pb.FUNCTION_STATE_ACTIVE:
        state = STATE_NAMES.get(config.state, "Pending")
        raise conflict(
            "The operation cannot be performed at this time. "
            f"The function is currently in the following state: {state}"
        )


def is_pending(config: Config) -> bool:
    return config.state == pb.FUNCTION_STATE_PENDING
