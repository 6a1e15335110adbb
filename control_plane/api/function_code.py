"""Where a function's code and attached resources come from, with AWS's
checks: a zip given inline or fetched from S3, a container image, layer
versions, a VPC, environment variables within 4 KB.

The decisions (sizes, digests, layer ARNs) are pure functions; the only I/O
is the S3 fetch, which runs botocore in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import invalid_parameter

from ..store import ResourceStore, Scope
from .kinds import LAYER_VERSION, numbered
from .registry import Settings

log = structlog.get_logger(__name__)

MAX_LAYERS = 5
MAX_ENVIRONMENT_BYTES = 4 * 1024
NO_SOURCE = "Please provide a source for function code (ZipFile, S3Bucket and S3Key, or ImageUri)."
IMAGE_URI_ON_ZIP = "Please don't provide ImageUri when updating a function with packageType Zip."
ZIP_ON_IMAGE = "Please provide ImageUri when updating a function with packageType Image."


# -- environment -------------------------------------------------------------


def check_environment(variables: Mapping[str, str]) -> None:
    """AWS measures the variables as compact JSON, in the order given."""
    measured = json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode()) > MAX_ENVIRONMENT_BYTES:
        raise invalid_parameter(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided exceeded the 4KB limit. "
            f"String measured: {measured}"
        )


# -- container images ----------------------------------------------------------


def image_identity(image_uri: str) -> tuple[str, str]:
    """(CodeSha256, ResolvedImageUri) of an image URI.

    AWS resolves the tag to the manifest digest in ECR; without a registry
    lookup the digest is the one pinned in the URI, else a stable digest of
    the URI itself (the same URI always resolves alike)."""
    if "@sha256:" in image_uri:
        repository, digest = image_uri.split("@sha256:", 1)
        return digest, image_uri
    repository = image_uri
    last = image_uri.rsplit("/", 1)[-1]
    if ":" in last:
        repository = image_uri[: -(len(last) - last.index(":"))]
    digest = hashlib.sha256(image_uri.encode()).hexdigest()
    return digest, f"{repository}@sha256:{digest}"


# -- layers --------------------------------------------------------------------


def _layer_parts(arn: str) -> tuple[str, str, str, str] | None:
    """(region, account, layer name, version) of a layer version ARN."""
    parts = arn.split(":")
    if len(parts) != 8 or parts[5] != "layer":
        return None
    return parts[3], parts[4], parts[6], parts[7]


def resolve_layers(store: ResourceStore, scope: Scope, arns: Sequence[str]) -> list[api.Layer]:
    """The function's Layers entries, or AWS's error for the first bad one."""
    if len(arns) > MAX_LAYERS:
        raise invalid_parameter(f"Cannot reference more than {MAX_LAYERS} layers.")
    seen: dict[str, str] = {}
    layers: list[api.Layer] = []
    for arn in arns:
        parts = _layer_parts(arn)
        if parts is None:
            raise invalid_parameter(f"Layer version {arn} does not exist.")
        region, account, name, version = parts
        if region != scope.region:
            raise invalid_parameter(
                "Layers are not in the same region as the function. "
                f"Layers are expected to be in region {scope.region}."
            )
        layer = arn.rsplit(":", 1)[0]
        if layer in seen:
            raise invalid_parameter(
                "Two different versions of the same layer are not allowed to be referenced "
                f"in the same function. {seen[layer]} and {arn} are versions of the same layer."
            )
        seen[layer] = arn
        found = store.get(
            Scope(account, region),
            LAYER_VERSION,
            numbered(name, version),
            api.GetLayerVersionResponse,
        )
        if found is None:
            raise invalid_parameter(f"Layer version {arn} does not exist.")
        layers.append(api.Layer(arn=arn, code_size=found.content.code_size))
    return layers


# -- VPC -----------------------------------------------------------------------


def vpc_response(vpc: api.VpcConfig) -> api.VpcConfigResponse:
    """The VpcConfig AWS reports. Without EC2 to ask, the VPC id is derived
    from the subnets (stable for the same subnets); no subnets: detached."""
    out = api.VpcConfigResponse(
        subnet_ids=list(vpc.subnet_ids),
        security_group_ids=list(vpc.security_group_ids),
        ipv6_allowed_for_dual_stack=vpc.ipv6_allowed_for_dual_stack,
        vpc_id="",
    )
    if vpc.subnet_ids:
        out.vpc_id = (
            "vpc-" + hashlib.sha256(",".join(sorted(vpc.subnet_ids)).encode()).hexdigest()[:17]
        )
    return out


# -- S3 ------------------------------------------------------------------------


def _s3_error(code: str, message: str) -> Exception:
    return invalid_parameter(
        f"Error occurred while GetObject. S3 Error Code: {code}. S3 Error Message: {message}"
    )


def _get_object(endpoint: str, bucket: str, key: str, version: str | None) -> bytes:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = botocore.session.get_session()
    credentials: dict[str, Any] = {}
    if session.get_credentials() is None:
        # S3 emulators accept any credentials; an operator's own are used when set.
        credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    client = session.create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=session.get_config_variable("region") or "us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        **credentials,
    )
    try:
        extra = {"VersionId": version} if version else {}
        body = client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise _s3_error(str(error.get("Code", "")), str(error.get("Message", ""))) from None
    except BotoCoreError as exc:
        log.warning("s3.unreachable", endpoint=endpoint, error=str(exc))
        raise _s3_error("ServiceUnavailable", "S3 could not be reached.") from None
    finally:
        client.close()


async def fetch_s3(settings: Settings, bucket: str, key: str, version: str | None) -> bytes:
    """A deployment package from S3 (the operator's S3 endpoint)."""
    if not settings.s3_endpoint:
        # No S3 is configured, so no bucket exists: AWS's answer for a missing one.
        raise _s3_error("NoSuchBucket", "The specified bucket does not exist")
    return await asyncio.to_thread(_get_object, settings.s3_endpoint, bucket, key, version)


# -- hot reloading ---------------------------------------------------------------

# What LocalStack answers as CodeSha256 (and CodeSize 0) for a function whose
# code is a mounted folder: there is no package to hash, and tools written
# against LocalStack recognise this value.
HOT_RELOAD_SHA256 = "hot-reloading-hash-not-available"


def hot_reload_path(settings: Settings, code: Any) -> str | None:
    """The folder a FunctionCode names when its S3Bucket is the marker
    bucket, else None. The folder is on the worker's host, so it is only
    checked for form here (the control plane may run elsewhere)."""
    if not code.HasField("s3_bucket") or code.s3_bucket != settings.bucket_marker_local:
        return None
    key: str = code.s3_key
    if not key.startswith("/"):
        raise invalid_parameter(
            f"S3Key of the hot-reload bucket {settings.bucket_marker_local!r} must be an "
            f"absolute folder path on the worker's host, got {key!r}."
        )
    return key.rstrip("/") or "/"


async def zip_source(settings: Settings, code: Any) -> bytes | None:
    """The zip a FunctionCode or UpdateFunctionCodeRequest carries, inline or
    in S3; None when it names none."""
    if code.HasField("zip_file"):
        data: bytes = code.zip_file
        return data
    if code.HasField("s3_bucket") or code.HasField("s3_key"):
        return await fetch_s3(settings, code.s3_bucket, code.s3_key, code.s3_object_version or None)
    return None
