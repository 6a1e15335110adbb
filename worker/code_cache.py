"""Function code on the worker: fetched from the control plane's CodeService
in chunks, verified against CodeSha256, cached on disk by hash, and turned
into the tar archive that Docker's put_archive copies into /var/task."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import tarfile
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import structlog

from lambdafleet.functions.v1 import functions_pb2 as pb
from lambdafleet.functions.v1 import functions_pb2_grpc

log = structlog.get_logger(__name__)

# Tar archives kept in memory for the next cold start of the same code.
MEMORY_ENTRIES = 16


class CodeIntegrityError(Exception):
    pass


class CodeCache:
    def __init__(self, root: Path, stub: functions_pb2_grpc.CodeServiceStub) -> None:
        self.root = root
        self.stub = stub
        root.mkdir(parents=True, exist_ok=True)
        self._tars: OrderedDict[str, bytes] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def _path(self, sha: str) -> Path:
        return self.root / f"{base64.b64decode(sha).hex()}.zip"

    async def tar(self, sha: str) -> bytes:
        cached = self._tars.get(sha)
        if cached is not None:
            self._tars.move_to_end(sha)
            return cached
        lock = self._locks.setdefault(sha, asyncio.Lock())
        async with lock:
            if sha in self._tars:
                return self._tars[sha]
            path = self._path(sha)
            if not path.exists():
                await self._download(sha, path)
            data = await asyncio.to_thread(zip_to_tar, path.read_bytes())
            self._tars[sha] = data
            while len(self._tars) > MEMORY_ENTRIES:
                self._tars.popitem(last=False)
            return data

    async def _download(self, sha: str, path: Path) -> None:
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                async for part in self.stub.DownloadCode(pb.DownloadCodeRequest(code_sha256=sha)):
                    digest.update(part.chunk)
                    f.write(part.chunk)
            if base64.b64encode(digest.digest()).decode() != sha:
                raise CodeIntegrityError(f"code {sha} arrived corrupted")
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        log.info("code.fetched", code_sha256=sha, bytes=path.stat().st_size)


def zip_to_tar(data: bytes) -> bytes:
    """A tar of the zip's files, readable by the sandbox user, executable
    where the zip said so (a custom runtime's bootstrap)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, tarfile.open(fileobj=out, mode="w") as tar:
        for info in archive.infolist():
            name = info.filename.lstrip("/")
            if not name or ".." in Path(name).parts:
                continue
            mode = (info.external_attr >> 16) & 0o777
            entry = tarfile.TarInfo(name.rstrip("/"))
            entry.mtime = 0
            if info.is_dir():
                entry.type = tarfile.DIRTYPE
                entry.mode = 0o755
                tar.addfile(entry)
                continue
            entry.mode = 0o755 if mode & 0o111 else 0o644
            content = archive.read(info)
            entry.size = len(content)
            tar.addfile(entry, io.BytesIO(content))
    return out.getvalue()
