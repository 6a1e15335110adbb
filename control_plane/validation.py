"""Checks on function code that AWS makes beyond the model's constraints,
with AWS's codes and messages. The gateway already enforced the model
(patterns, lengths, enums, ranges) and AWS's runtime list."""

from __future__ import annotations

import io
import zipfile

from lambdafleet.errors import LambdaError, invalid_parameter

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024


def check_zip_function(runtime: str, handler: str) -> None:
    if not runtime or not handler:
        raise invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with "
            "deployment packages."
        )


def check_zip(data: bytes) -> None:
    if len(data) > MAX_ZIPPED_BYTES:
        raise LambdaError(
            "RequestEntityTooLargeException",
            f"Zipped size must be smaller than {MAX_ZIPPED_BYTES} bytes",
        )
    unreadable = invalid_parameter(
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
            # Sizes come from the directory, so an oversized archive is refused
            # before anything is decompressed.
            if unzipped > MAX_UNZIPPED_BYTES:
                raise invalid_parameter(
                    f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
                )
            # testzip reads every member and checks its CRC, catching archives
            # whose directory parses but whose data is corrupt.
            if archive.testzip() is not None:
                raise unreadable
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError):
        raise unreadable from None


def role_account(role_arn: str) -> str:
    """The account of an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME,
    the only form the model's pattern lets through)."""
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def check_role_account(role_arn: str, account_id: str) -> None:
    """AWS passes a function (or a capacity provider) only a role of the
    caller's own account; IAM refuses any other before anything is made."""
    if role_account(role_arn) != account_id:
        raise LambdaError("AccessDeniedException", "Cross-account pass role is not allowed.")
