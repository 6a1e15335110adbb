"""Checks on a new function that AWS makes beyond the model's constraints.

The gateway already enforced the model (patterns, lengths, enums, ranges)
and AWS's runtime list; these are the rules on the package itself, with AWS's
codes and messages.
"""

from __future__ import annotations

import io
import zipfile

from lambdafleet.errors import LambdaError, invalid_parameter
from lambdafleet.functions.v1 import functions_pb2 as pb

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024


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
