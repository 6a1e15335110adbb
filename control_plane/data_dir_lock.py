"""One control plane per data dir: an OS lock on a file in it, held for the
process's life.

Two control planes on one store would each take part of the writes (the
SQLite file survives that, the state does not). `flock` is released by the
kernel when its holder dies, SIGKILL included, so a lock left by a dead
process never blocks a restart; the file itself stays (unlinking it would
let a third process lock a new file while a second holds the old one).
The holder writes who it is into the file, so a refused process can say.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "control-plane.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a data dir: what a refused control plane names."""

    pid: int
    host: str
    started: str

    def encode(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "started": self.started}) + "\n"

    @classmethod
    def decode(cls, text: str) -> Holder | None:
        """The holder written in a lock file; None when it is not (yet) there:
        the holder writes it just after taking the lock."""
        try:
            raw = json.loads(text)
            return cls(pid=int(raw["pid"]), host=str(raw["host"]), started=str(raw["started"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"


class DataDirInUseError(Exception):
    """Another live process holds the data dir's lock."""

    def __init__(self, data_dir: Path, holder: Holder | None) -> None:
        who = holder.describe() if holder is not None else "holder unknown"
        super().__init__(
            f"data dir {data_dir} is in use by another control plane ({who}); "
            "stop it or choose another with --data-dir"
        )
        self.holder = holder


def this_process() -> Holder:
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return Holder(pid=os.getpid(), host=socket.gethostname(), started=started)


class DataDirLock:
    """The lock of one data dir; `acquire` raises DataDirInUseError when a
    live process holds it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: the holder's record must survive a
        # refused process opening the file.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.decode(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            os.close(fd)
            raise DataDirInUseError(self.data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, this_process().encode().encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Cleared so that, once no one holds the lock, the file names no one.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)
