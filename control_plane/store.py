"""Durable state of the control plane: resources in SQLite, code by hash.

Every resource (a function, a version, an alias, a layer version, a mapping...)
is one row holding a serialized protobuf message: typed, and able to gain
fields without a schema migration. Rows are keyed by account, region, kind and
id; a row that belongs to a function names it, so deleting the function takes
everything of it along in one transaction.

Code packages live in a content-addressed folder keyed by the hex SHA-256 (the
CodeSha256 AWS shows is the same digest in base64), written to a temporary
file and renamed so a crash never leaves a half-written package under its name.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    function TEXT,
    value BLOB NOT NULL,
    PRIMARY KEY (account_id, region, kind, id)
);
CREATE INDEX IF NOT EXISTS resources_by_function
    ON resources (account_id, region, function);
"""


@dataclass(frozen=True)
class Scope:
    """Where a resource lives: AWS isolates accounts and regions."""

    account_id: str
    region: str


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


class ResourceStore:
    """SQLite-backed resources. Calls are short and local, so they run on the
    event loop directly, which also makes each handler's read-modify-write
    atomic with respect to the others (no await between them); WAL keeps
    readers from blocking the writer."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0
        # Writes so far, per kind (and in all): what a cache of something
        # derived from the rows compares to know it is still right.
        self._writes: dict[str, int] = {}
        self._all_writes = 0

    def generation(self, *kinds: str) -> tuple[int, ...]:
        """Changes whenever a resource of one of these kinds may have been
        written (deleting a function's resources counts for every kind)."""
        return (self._all_writes, *(self._writes.get(kind, 0) for kind in kinds))

    def _wrote(self, kind: str) -> None:
        self._writes[kind] = self._writes.get(kind, 0) + 1

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (nests)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def get(self, scope: Scope, kind: str, rid: str, message_type: type[M]) -> M | None:
        row = self._db.execute(
            "SELECT value FROM resources WHERE account_id=? AND region=? AND kind=? AND id=?",
            (scope.account_id, scope.region, kind, rid),
        ).fetchone()
        return None if row is None else message_type.FromString(row[0])

    def exists(self, scope: Scope, kind: str, rid: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM resources WHERE account_id=? AND region=? AND kind=? AND id=?",
            (scope.account_id, scope.region, kind, rid),
        ).fetchone()
        return row is not None

    def insert(
        self, scope: Scope, kind: str, rid: str, value: Message, function: str | None = None
    ) -> bool:
        """Store a new resource; False when the id is taken."""
        self._wrote(kind)
        try:
            self._db.execute(
                "INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?)",
                (scope.account_id, scope.region, kind, rid, function, value.SerializeToString()),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def put(
        self, scope: Scope, kind: str, rid: str, value: Message, function: str | None = None
    ) -> None:
        """Store a resource, replacing any with the same id."""
        self._wrote(kind)
        self._db.execute(
            "INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?, ?)",
            (scope.account_id, scope.region, kind, rid, function, value.SerializeToString()),
        )

    def delete(self, scope: Scope, kind: str, rid: str) -> bool:
        self._wrote(kind)
        cur = self._db.execute(
            "DELETE FROM resources WHERE account_id=? AND region=? AND kind=? AND id=?",
            (scope.account_id, scope.region, kind, rid),
        )
        return cur.rowcount > 0

    def delete_function(self, scope: Scope, name: str) -> int:
        """Delete every resource that belongs to function `name`."""
        self._all_writes += 1
        cur = self._db.execute(
            "DELETE FROM resources WHERE account_id=? AND region=? AND function=?",
            (scope.account_id, scope.region, name),
        )
        return cur.rowcount

    def items(
        self,
        scope: Scope,
        kind: str,
        message_type: type[M],
        *,
        prefix: str = "",
        after: str = "",
        limit: int | None = None,
        function: str | None = None,
    ) -> list[tuple[str, M]]:
        """(id, value) of one kind in id order: ids starting with `prefix`,
        greater than `after`, at most `limit`, of `function` when given."""
        sql = (
            "SELECT id, value FROM resources WHERE account_id=? AND region=? AND kind=? "
            "AND id>? AND substr(id, 1, ?)=?"
        )
        args: list[object] = [scope.account_id, scope.region, kind, after, len(prefix), prefix]
        if function is not None:
            sql += " AND function=?"
            args.append(function)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(r[0], message_type.FromString(r[1])) for r in self._db.execute(sql, args)]

    def count_everywhere(self, kind: str) -> int:
        """How many resources of a kind exist in every account and region."""
        row = self._db.execute("SELECT count(*) FROM resources WHERE kind=?", (kind,)).fetchone()
        return int(row[0])

    def count_by_function(self, kind: str) -> dict[tuple[Scope, str], int]:
        """How many resources of a kind each function owns, everywhere."""
        rows = self._db.execute(
            "SELECT account_id, region, function, count(*) FROM resources "
            "WHERE kind=? AND function IS NOT NULL GROUP BY account_id, region, function",
            (kind,),
        ).fetchall()
        return {(Scope(r[0], r[1]), r[2]): int(r[3]) for r in rows}

    def everywhere(self, kind: str, message_type: type[M]) -> list[tuple[Scope, str, M]]:
        """Every resource of a kind in every account and region."""
        rows = self._db.execute(
            "SELECT account_id, region, id, value FROM resources WHERE kind=?", (kind,)
        ).fetchall()
        return [(Scope(r[0], r[1]), r[2], message_type.FromString(r[3])) for r in rows]
