"""The Extensions API (2020-01-01) lifecycle of one environment, without I/O.

External extensions are processes from /opt/extensions (worker/launcher.py
starts them). Each registers for INVOKE and/or SHUTDOWN, then calls
`event/next`; every such call says "done with what I had" and waits for the
next event. As on Lambda:

- init completes once the runtime asked for its first invocation and every
  extension the launcher announced registered and called `event/next`;
- an invocation ends (the environment is free again, REPORT is written) once
  the runtime answered and every extension subscribed to INVOKE called
  `event/next` after receiving it; the caller has its answer before that;
- on shutdown, extensions subscribed to SHUTDOWN get it, and the shutdown is
  complete when each called `event/next` again (or exited).

`ExtensionsState` takes these stimuli and returns instructions; the
environment (worker/environment.py) holds the waiting requests and carries
the instructions out.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

INVOKE = "INVOKE"
SHUTDOWN = "SHUTDOWN"
EVENTS = frozenset({INVOKE, SHUTDOWN})


class Phase(enum.Enum):
    REGISTERED = "registered"  # registered, its init not finished
    WAITING = "waiting"  # in event/next with nothing in hand
    BUSY = "busy"  # handed an event, has not called event/next since
    EXITED = "exited"  # reported init/exit error: no longer waited for


@dataclass
class Extension:
    id: str
    name: str
    events: frozenset[str]
    phase: Phase = Phase.REGISTERED
    outbox: deque[dict[str, Any]] = field(default_factory=deque)
    error_type: str = ""


@dataclass(frozen=True)
class InitComplete:
    """The runtime and every extension finished init."""


@dataclass(frozen=True)
class InvocationComplete:
    request_id: str


@dataclass(frozen=True)
class ShutdownComplete:
    """Every extension subscribed to SHUTDOWN is done with it."""


@dataclass(frozen=True)
class Deliver:
    """An event waits in the extension's outbox."""

    extension_id: str


Instruction = InitComplete | InvocationComplete | ShutdownComplete | Deliver


class ExtensionError(Exception):
    """A request AWS refuses: the HTTP status and errorType it answers."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass
class ExtensionsState:
    # How many extensions the launcher started: init waits for them all.
    expected: int = 0
    extensions: dict[str, Extension] = field(default_factory=dict)
    runtime_ready: bool = False
    init_done: bool = False
    # The invocation in progress, and whether the runtime answered it.
    request_id: str | None = None
    runtime_answered: bool = False
    shutting_down: bool = False
    shutdown_done: bool = False

    # -- stimuli ----------------------------------------------------------------

    def announce(self, count: int) -> list[Instruction]:
        self.expected = max(self.expected, count)
        return []

    def register(self, extension_id: str, name: str, events: list[str]) -> Extension:
        if self.init_done:
            raise ExtensionError(
                403, "Extension.RegistrationForbidden", "Extensions register during Init only"
            )
        if not name:
            raise ExtensionError(
                400, "Extension.InvalidExtensionName", "Lambda-Extension-Name is required"
            )
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ExtensionError(
                400, "Extension.InvalidEventType", f"Unknown event types: {', '.join(unknown)}"
            )
        if any(e.name == name for e in self.extensions.values()):
            raise ExtensionError(
                409, "Extension.AlreadyRegistered", f"Extension {name} is already registered"
            )
        ext = Extension(extension_id, name, frozenset(events))
        self.extensions[extension_id] = ext
        return ext

    def runtime_next(self) -> list[Instruction]:
        self.runtime_ready = True
        return self._check()

    def extension_next(self, extension_id: str) -> list[Instruction]:
        ext = self._get(extension_id)
        if ext.phase is not Phase.EXITED:
            ext.phase = Phase.WAITING
        out = self._check()
        if ext.outbox:
            out.append(Deliver(extension_id))
        return out

    def take(self, extension_id: str) -> dict[str, Any] | None:
        """The next event for a waiting extension, which then holds it."""
        ext = self._get(extension_id)
        if not ext.outbox:
            return None
        ext.phase = Phase.BUSY
        return ext.outbox.popleft()

    def invoke(self, request_id: str, event: dict[str, Any]) -> list[Instruction]:
        self.request_id, self.runtime_answered = request_id, False
        return self._send(INVOKE, event)

    def answered(self, request_id: str) -> list[Instruction]:
        if request_id != self.request_id:
            return []
        self.runtime_answered = True
        return self._check()

    def shutdown(self, event: dict[str, Any]) -> list[Instruction]:
        if self.shutting_down:
            return []
        self.shutting_down = True
        return [*self._send(SHUTDOWN, event), *self._check()]

    def failed(self, extension_id: str, error_type: str) -> list[Instruction]:
        """init/error or exit/error: the extension is no longer waited for."""
        ext = self._get(extension_id)
        ext.phase, ext.error_type = Phase.EXITED, error_type
        ext.outbox.clear()
        return self._check()

    # -- queries ------------------------------------------------------------------

    def subscribed(self, event: str) -> list[Extension]:
        return [e for e in self.extensions.values() if event in e.events]

    # -- internals ------------------------------------------------------------------

    def _get(self, extension_id: str) -> Extension:
        ext = self.extensions.get(extension_id)
        if ext is None:
            raise ExtensionError(403, "Extension.UnknownExtensionIdentifier", "Unknown extension")
        return ext

    def _send(self, kind: str, event: dict[str, Any]) -> list[Instruction]:
        out: list[Instruction] = []
        for ext in self.subscribed(kind):
            if ext.phase is not Phase.EXITED:
                ext.outbox.append(event)
                out.append(Deliver(ext.id))
        return out

    def _settled(self, event: str) -> bool:
        return all(
            e.phase is Phase.EXITED or (e.phase is Phase.WAITING and not e.outbox)
            for e in self.subscribed(event)
        )

    def _check(self) -> list[Instruction]:
        out: list[Instruction] = []
        if not self.init_done and self.runtime_ready:
            registered = len(self.extensions) >= self.expected
            exts = self.extensions.values()
            if registered and all(e.phase is not Phase.REGISTERED for e in exts):
                self.init_done = True
                out.append(InitComplete())
        if self.request_id is not None and self.runtime_answered and self._settled(INVOKE):
            out.append(InvocationComplete(self.request_id))
            self.request_id, self.runtime_answered = None, False
        if self.shutting_down and not self.shutdown_done and self._settled(SHUTDOWN):
            self.shutdown_done = True
            out.append(ShutdownComplete())
        return out
