"""A function's layers on the worker: each layer's zip is fetched from the
control plane's CodeService and cached like function code (code_cache.py),
then all of them are merged into one tar for /opt, later layers overwriting
earlier ones as on AWS, and copied into the container before its runtime
starts (put_archive, never a bind mount, so a remote daemon works)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence

from lambdafleet.agent.v1 import agent_pb2 as apb

from .code_cache import CodeCache

OPT = "/opt"


def merge_tars(tars: Sequence[bytes]) -> bytes:
    """One tar holding what unpacking `tars` in order leaves: a path of a
    later tar replaces the same path of an earlier one (a file a later layer
    puts where an earlier one had a folder replaces the folder too, as
    unpacking does). Empty when there is nothing to copy."""
    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    for data in tars:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar.getmembers():
                name = info.name.rstrip("/")
                if info.isfile():
                    extracted = tar.extractfile(info)
                    content = extracted.read() if extracted is not None else b""
                    # A file over a folder: the folder's contents go with it.
                    for other in [m for m in members if m.startswith(name + "/")]:
                        del members[other]
                    members.pop(name, None)  # re-inserted last: written after its folder
                    members[name] = (info, content)
                elif name not in members or members[name][1] is not None:
                    members.pop(name, None)
                    members[name] = (info, None)
    if not members:
        return b""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        # Folders before what they hold, whatever order the layers gave.
        for name in sorted(members, key=lambda n: (n.count("/"), n)):
            info, body = members[name]
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


async def opt_tar(code: CodeCache, spec: apb.FunctionSpec) -> bytes:
    """The tar of /opt for `spec`'s layers, in their order."""
    if not spec.layers:
        return b""
    tars = [await code.tar(layer.code_sha256) for layer in spec.layers]
    return merge_tars(tars)
