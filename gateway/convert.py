"""Between AWS's JSON shapes and the control plane's typed messages."""

from __future__ import annotations

import hashlib
from typing import Any

from lambdafleet.functions.v1 import functions_pb2 as pb

STATE = {
    pb.FUNCTION_STATE_PENDING: "Pending",
    pb.FUNCTION_STATE_ACTIVE: "Active",
    pb.FUNCTION_STATE_INACTIVE: "Inactive",
    pb.FUNCTION_STATE_FAILED: "Failed",
}
LAST_UPDATE = {
    pb.LAST_UPDATE_STATUS_SUCCESSFUL: "Successful",
    pb.LAST_UPDATE_STATUS_FAILED: "Failed",
    pb.LAST_UPDATE_STATUS_IN_PROGRESS: "InProgress",
}
ARCH_TO_AWS = {pb.ARCHITECTURE_X86_64: "x86_64", pb.ARCHITECTURE_ARM64: "arm64"}
ARCH_FROM_AWS = {v: k for k, v in ARCH_TO_AWS.items()}
PACKAGE_TO_AWS = {pb.PACKAGE_TYPE_ZIP: "Zip", pb.PACKAGE_TYPE_IMAGE: "Image"}
PACKAGE_FROM_AWS = {v: k for k, v in PACKAGE_TO_AWS.items()}

DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3
DEFAULT_EPHEMERAL_MB = 512


def configuration_from_create(params: dict[str, Any]) -> pb.FunctionConfiguration:
    """The configuration asked for in a CreateFunction input, with AWS's defaults."""
    config = pb.FunctionConfiguration(
        function_name=params["FunctionName"],
        runtime=params.get("Runtime", ""),
        role=params.get("Role", ""),
        handler=params.get("Handler", ""),
        description=params.get("Description", ""),
        timeout=params.get("Timeout", DEFAULT_TIMEOUT_S),
        memory_size=params.get("MemorySize", DEFAULT_MEMORY_MB),
        package_type=PACKAGE_FROM_AWS.get(params.get("PackageType", "Zip"), pb.PACKAGE_TYPE_ZIP),
        ephemeral_storage_mb=(params.get("EphemeralStorage") or {}).get(
            "Size", DEFAULT_EPHEMERAL_MB
        ),
        tracing_mode=(params.get("TracingConfig") or {}).get("Mode", "PassThrough"),
    )
    environment = params.get("Environment")
    if environment is not None:
        config.has_environment = True
        config.environment.update(environment.get("Variables") or {})
    for arch in params.get("Architectures") or ["x86_64"]:
        config.architectures.append(ARCH_FROM_AWS[arch])
    logging_config = params.get("LoggingConfig") or {}
    config.log_format = logging_config.get("LogFormat", "Text")
    config.log_group = logging_config.get("LogGroup", "")
    code = params.get("Code") or {}
    config.image_uri = code.get("ImageUri", "")
    return config


def configuration_to_aws(c: pb.FunctionConfiguration, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FunctionName": c.function_name,
        "FunctionArn": c.function_arn,
        "Runtime": c.runtime,
        "Role": c.role,
        "Handler": c.handler,
        "CodeSize": c.code_size,
        "Description": c.description,
        "Timeout": c.timeout,
        "MemorySize": c.memory_size,
        "LastModified": c.last_modified,
        "CodeSha256": c.code_sha256,
        "Version": c.version,
        "TracingConfig": {"Mode": c.tracing_mode or "PassThrough"},
        "RevisionId": c.revision_id,
        "State": STATE.get(c.state, "Pending"),
        "PackageType": PACKAGE_TO_AWS.get(c.package_type, "Zip"),
        "Architectures": [ARCH_TO_AWS[a] for a in c.architectures] or ["x86_64"],
        "EphemeralStorage": {"Size": c.ephemeral_storage_mb or DEFAULT_EPHEMERAL_MB},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": c.log_format or "Text", "LogGroup": c.log_group},
    }
    if c.has_environment:
        out["Environment"] = {"Variables": dict(c.environment)}
    if c.runtime:
        # AWS names the runtime build that runs the function; one stable id
        # per runtime stands in for it.
        build = hashlib.sha256(c.runtime.encode()).hexdigest()
        out["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": f"arn:aws:lambda:{region}::runtime:{build}"
        }
    if c.state_reason:
        out["StateReason"] = c.state_reason
    if c.state_reason_code:
        out["StateReasonCode"] = c.state_reason_code
    if c.last_update_status in LAST_UPDATE:
        out["LastUpdateStatus"] = LAST_UPDATE[c.last_update_status]
        if c.last_update_status_reason:
            out["LastUpdateStatusReason"] = c.last_update_status_reason
        if c.last_update_status_reason_code:
            out["LastUpdateStatusReasonCode"] = c.last_update_status_reason_code
    return out
