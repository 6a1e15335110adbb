"""What a function's container is made of, gathered before it is created:
the image (the runtime's, or a PackageType=Image function's own), the code
for /var/task, the merged layers for /opt, the command, and /tmp's size."""

from __future__ import annotations

from dataclasses import dataclass

from lambdafleet.agent.v1 import agent_pb2 as apb

from .backends import Images
from .code_cache import CodeCache
from .launcher import launch_entrypoint
from .layers import opt_tar

DEFAULT_TMP_MB = 512


@dataclass(frozen=True)
class Launch:
    image: str
    code_tar: bytes
    opt_tar: bytes
    # None: the image's own ENTRYPOINT / WORKDIR.
    command: list[str]
    entrypoint: list[str] | None
    working_dir: str | None
    tmp_mb: int
    # An image function's container is the user's image: never pre-started.
    user_image: bool


def is_image(spec: apb.FunctionSpec) -> bool:
    return spec.package_type == "Image"


def container_command(spec: apb.FunctionSpec) -> tuple[list[str], list[str] | None, str | None]:
    """(command, entrypoint, working directory) of `spec`'s container, as AWS
    runs it: a zip function's image gets the handler as its CMD; an image
    function keeps its image's ENTRYPOINT, CMD and WORKDIR except where
    ImageConfig replaces them (an empty command: the image's CMD)."""
    if not is_image(spec):
        return [spec.handler], None, None
    config = spec.image_config
    return (
        list(config.command),
        list(config.entry_point) or None,
        config.working_directory or None,
    )


async def gather(images: Images, code: CodeCache, spec: apb.FunctionSpec) -> Launch:
    command, entrypoint, working_dir = container_command(spec)
    tmp_mb = spec.ephemeral_storage_mb or DEFAULT_TMP_MB
    if is_image(spec):
        # The image holds the code; its CodeSha256 names no package.
        image = await images.ensure_image(spec.image_uri)
        return Launch(image, b"", b"", command, entrypoint, working_dir, tmp_mb, True)
    image = await images.ensure(spec.runtime)
    # A hot-reloading function's code is its mounted folder.
    code_tar = b"" if spec.hot_reload_path else await code.tar(spec.code_sha256)
    layers = await opt_tar(code, spec)
    # lambdafleet's launcher starts the extensions, then the image's own
    # entrypoint with the handler (worker/launcher.py).
    return Launch(image, code_tar, layers, command, launch_entrypoint(), working_dir, tmp_mb, False)
