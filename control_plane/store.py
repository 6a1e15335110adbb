"""Durable state of the control plane: functions in SQLite, code by hash.

Function configurations are stored as serialized FunctionConfiguration
messages: typed, and able to gain fields without a schema migration. Code
packages live in a content-addressed folder keyed by the hex SHA-256 (the
CodeSha256 AWS shows is the same digest in base64), written to a temporary
file and renamed so a crash never leaves a half-written package under its name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lambdafleet.functions.v1 import functions_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    configuration BLOB NOT NULL,
    tags BLOB NOT NULL,
    PRIMARY KEY (account_id, region, name)
);
"""


@dataclass(frozen=True)
class FunctionKey:
    account_id: str
    region: str
    name: str


@dataclass
class StoredFunction:
    key: FunctionKey
    configuration: functions_pb2.FunctionConfiguration
    tags: dict[str, str]


def code_sha256(data: bytes) -> str:
    """AWS's CodeSha256: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _hex_name(sha256_b64: str) -> str:
    try:
        digest = base64.b64decode(sha256_b64, validate=True)
    except ValueError as exc:
        raise KeyError(sha256_b64) from exc
    if len(digest) != 32:
        raise KeyError(sha256_b64)
    return digest.hex()


class CodeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256_b64: str) -> Path:
        return self.root / f"{_hex_name(sha256_b64)}.zip"

    def put(self, data: bytes) -> str:
        sha = code_sha256(data)
        target = self.path(sha)
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return sha

    def exists(self, sha256_b64: str) -> bool:
        try:
            return self.path(sha256_b64).exists()
        except KeyError:
            return False

    def size(self, sha256_b64: str) -> int:
        return self.path(sha256_b64).stat().st_size

    def iter_chunks(self, sha256_b64: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.path(sha256_b64).open("rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def delete_unreferenced(self, referenced: set[str]) -> None:
        keep = {_hex_name(s) for s in referenced}
        for p in self.root.glob("*.zip"):
            if p.stem not in keep:
                p.unlink(missing_ok=True)


class FunctionStore:
    """SQLite-backed functions. Calls are short and local, so they run on the
    event loop directly; WAL keeps readers from blocking the writer."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, key: FunctionKey) -> StoredFunction | None:
        row = self._db.execute(
            "SELECT configuration, tags FROM functions WHERE account_id=? AND region=? AND name=?",
            (key.account_id, key.region, key.name),
        ).fetchone()
        if row is None:
            return None
        return StoredFunction(key, _config(row[0]), _tags(row[1]))

    def insert(self, fn: StoredFunction) -> bool:
        """Store a new function; False when the name is taken."""
        try:
            self._db.execute(
                "INSERT INTO functions VALUES (?, ?, ?, ?, ?)",
                (
                    fn.key.account_id,
                    fn.key.region,
                    fn.key.name,
                    fn.configuration.SerializeToString(),
                    _tags_blob(fn.tags),
                ),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def update(self, fn: StoredFunction) -> None:
        self._db.execute(
            "UPDATE functions SET configuration=?, tags=? "
            "WHERE account_id=? AND region=? AND name=?",
            (
                fn.configuration.SerializeToString(),
                _tags_blob(fn.tags),
                fn.key.account_id,
                fn.key.region,
                fn.key.name,
            ),
        )

    def delete(self, key: FunctionKey) -> bool:
        cur = self._db.execute(
            "DELETE FROM functions WHERE account_id=? AND region=? AND name=?",
            (key.account_id, key.region, key.name),
        )
        return cur.rowcount > 0

    def page(
        self, account_id: str, region: str, after: str = "", limit: int = 50
    ) -> list[StoredFunction]:
        rows = self._db.execute(
            "SELECT name, configuration, tags FROM functions "
            "WHERE account_id=? AND region=? AND name>? ORDER BY name LIMIT ?",
            (account_id, region, after, limit),
        ).fetchall()
        return [
            StoredFunction(FunctionKey(account_id, region, r[0]), _config(r[1]), _tags(r[2]))
            for r in rows
        ]

    def all(self) -> list[StoredFunction]:
        rows = self._db.execute(
            "SELECT account_id, region, name, configuration, tags FROM functions"
        ).fetchall()
        return [
            StoredFunction(FunctionKey(r[0], r[1], r[2]), _config(r[3]), _tags(r[4])) for r in rows
        ]

    def referenced_code(self) -> set[str]:
        return {fn.configuration.code_sha256 for fn in self.all() if fn.configuration.code_sha256}


def _config(blob: bytes) -> functions_pb2.FunctionConfiguration:
    return functions_pb2.FunctionConfiguration.FromString(blob)


def _tags_blob(tags: dict[str, str]) -> bytes:
    # GetFunctionResponse's typed map<string,string> is the tags' wire format.
    return functions_pb2.GetFunctionResponse(tags=tags).SerializeToString()


def _tags(blob: bytes) -> dict[str, str]:
    return dict(functions_pb2.GetFunctionResponse.FromString(blob).tags)
