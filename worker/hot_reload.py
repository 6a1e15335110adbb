"""Hot reloading: watch the host folders that hot-reloading functions mount
at /var/task, and report a folder once it has been quiet for QUIET_S after
its last change (an editor's save or a build writes several files).

File events come from watchdog (inotify on Linux). Where they do not arrive
(a remote Docker daemon's host is not watched here at all; network and
some virtualised filesystems deliver no inotify events) set
LAMBDAFLEET_HOT_RELOAD_POLL_MS: the folders are then scanned that often.
An observer that cannot start (e.g. the inotify watch limit) falls back to
polling by itself.

The pool decides what a change means (worker/pool.py restarts the runtimes
of the folder's environments); this module only watches.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

log = structlog.get_logger(__name__)

POLL_ENV = "LAMBDAFLEET_HOT_RELOAD_POLL_MS"
QUIET_S = 0.5
FALLBACK_POLL_S = 0.2
# Reads (opened, closed without writing) are not changes: the runtime's own
# imports would otherwise reload it forever.
CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed"})


def poll_interval(raw: str | None) -> float | None:
    """Seconds between scans, or None for file events."""
    try:
        ms = float(raw) if raw else 0.0
    except ValueError:
        ms = 0.0
    return ms / 1000 if ms > 0 else None


class _Handler(FileSystemEventHandler):
    def __init__(self, notify: Callable[[], None]) -> None:
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in CHANGES:
            self.notify()


class HotReload:
    def __init__(
        self,
        on_change: Callable[[str], None],
        poll_s: float | None = None,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.on_change = on_change
        self.poll_s = poll_s
        self.quiet_s = quiet_s
        self._observer: Any = None
        self._watches: dict[str, tuple[int, Any]] = {}  # path -> (users, watch)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_env(cls, on_change: Callable[[str], None]) -> HotReload:
        return cls(on_change, poll_interval(os.environ.get(POLL_ENV)))

    def _start_observer(self) -> Any:
        if self.poll_s is not None:
            observer: Any = PollingObserver(timeout=self.poll_s)
        else:
            observer = Observer()
        try:
            observer.start()
        except OSError as exc:
            log.warning("hot_reload.events_unavailable", error=str(exc))
            observer = PollingObserver(timeout=FALLBACK_POLL_S)
            observer.start()
        return observer

    def watch(self, path: str) -> None:
        """Watch `path` for one more environment."""
        users, watch = self._watches.get(path, (0, None))
        if watch is None:
            self._loop = asyncio.get_running_loop()
            if self._observer is None:
                self._observer = self._start_observer()
            loop = self._loop

            def notify() -> None:  # on the observer's thread
                loop.call_soon_threadsafe(self._changed, path)

            try:
                watch = self._observer.schedule(_Handler(notify), path, recursive=True)
            except OSError as exc:
                log.warning("hot_reload.unwatchable", path=path, error=str(exc))
                return
            log.info("hot_reload.watching", path=path, poll_s=self.poll_s)
        self._watches[path] = (users + 1, watch)

    def unwatch(self, path: str) -> None:
        users, watch = self._watches.get(path, (0, None))
        if watch is None:
            return
        if users > 1:
            self._watches[path] = (users - 1, watch)
            return
        del self._watches[path]
        timer = self._timers.pop(path, None)
        if timer is not None:
            timer.cancel()
        try:
            self._observer.unschedule(watch)
        except (KeyError, OSError):
            pass

    def _changed(self, path: str) -> None:
        if path not in self._watches or self._loop is None:
            return
        timer = self._timers.pop(path, None)
        if timer is not None:
            timer.cancel()
        self._timers[path] = self._loop.call_later(self.quiet_s, self._fire, path)

    def _fire(self, path: str) -> None:
        self._timers.pop(path, None)
        if path in self._watches:
            log.info("hot_reload.changed", path=path)
            self.on_change(path)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._watches.clear()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
