"""Checks on a new function that AWS makes beyond the model's constraints.

The gateway already enforced the model (patterns, lengths, enums, ranges);
these are the semantic rules, with AWS's codes and messages.
"""

from __future__ import annotations

import io
import zipfile

from lambdafleet.errors import LambdaError, invalid_parameter
from lambdafleet.functions.v1 import functions_pb2 as pb

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024

# Runtimes in the model's enum that AWS no longer accepts for creating or
# updating functions (their deprecation's "block create" date has passed).
DEPRECATED_RUNTIMES = frozenset(
    {
        "nodejs", "nodejs4.3", "nodejs4.3-edge", "nodejs6.10", "nodejs8.10", "nodejs10.x",
        "nodejs12.x", "nodejs14.x", "nodejs16.x", "java8", "python2.7", "python3.6",
        "python3.7", "python3.8", "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1",
        "dotnetcore3.1", "dotnet6", "go1.x", "ruby2.5", "ruby2.7", "provided",
        "python2.7-greengrass", "nasa",
    }
)  # fmt: skip


def check_create(config: pb.FunctionConfiguration, zip_file: bytes) -> None:
    """Raise the error AWS answers for an invalid new Zip function."""
    if config.package_type == pb.PACKAGE_TYPE_IMAGE:
        raise invalid_parameter(
            "lambdafleet does not run PackageType Image functions yet; use a Zip package."
        )
    if not config.runtime or not config.handler:
        raise invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with "
            "deployment packages."
        )
    if config.runtime in DEPRECATED_RUNTIMES:
        raise invalid_parameter(
            f"The runtime parameter of {config.runtime} is no longer supported for creating or "
            "updating AWS Lambda functions. We recommend you use a supported runtime while "
            "creating or updating functions."
        )
    check_zip(zip_file)


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
