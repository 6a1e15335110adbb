"""What the pool needs from a sandbox backend, and a fake one.

The pool starts and removes sandboxes through `Sandboxes` and resolves images
through `Images`. The Docker implementation (containers.Containers,
images.ImageResolver) is the default. The fake one answers invocations
without Docker: each fake sandbox plays the runtime client, speaking to its
`Environment` exactly as the Runtime API server would, after a configurable
start delay and run time, with seeded error and crash rates. So the pool's
own logic (warm reuse, one invocation per environment, timeouts, keep-alive,
the start cap) runs unchanged, and tests can run a real control plane with
many simulated workers in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .environment import Environment

Progress = Callable[[str], None]
Lookup = Callable[[str], Environment | None]
# on_output(sandbox_id, "stdout" or "stderr", chunk, unix time received).
OnOutput = Callable[[str, str, bytes, float], None]
# What a fake sandbox reports as its peak memory.
FAKE_PEAK_MEMORY_MB = 32

# The exit status a crashed fake sandbox reports, as a SIGKILLed process would.
CRASH_EXIT_CODE = 137
# A function's own environment variable that overrides LAMBDAFLEET_FAKE_RUN_MS.
RUN_MS_VARIABLE = "LAMBDAFLEET_FAKE_RUN_MS"


class Sandboxes(Protocol):
    worker_id: str
    # Whether signal(SIGHUP) restarts a sandbox's runtime in place (our
    # launcher, worker/launcher.py, is its main process).
    restarts_runtimes: bool

    async def create_and_start(
        self,
        *,
        image: str,
        command: list[str],
        name: str,
        environment: dict[str, str],
        labels: dict[str, str],
        extra_hosts: dict[str, str],
        memory_mb: int,
        code_tar: bytes,
        entrypoint: list[str] | None = None,
        tmp_mb: int = 512,
        opt_tar: bytes = b"",
        working_dir: str | None = None,
        read_only_mounts: dict[str, str] | None = None,
        # Who its processes run as; None: the sandbox user AWS runs functions as.
        user: str | None = None,
    ) -> str: ...

    async def put_archive(self, container_id: str, path: str, tar: bytes) -> None: ...

    async def rename(self, container_id: str, name: str) -> None: ...

    async def signal(self, container_id: str, signal: str) -> None: ...

    async def remove(self, container_id: str) -> None: ...

    async def remove_all(self) -> int: ...

    # At a worker's start: remove what a previous worker left (the labels
    # of each of the daemon's lambdafleet containers decide, fencing.py).
    async def remove_leftovers(self, leftover: Callable[[dict[str, str]], bool]) -> int: ...

    # At a worker's stop: no more creations, wait for those in flight, then
    # remove all of this worker's; how many went.
    async def shutdown(self) -> int: ...

    # As a crash would: every sandbox loses its worker (and ends).
    def sever(self) -> None: ...

    def watch_exits(self, on_exit: Callable[[str, int], None]) -> None: ...

    def watch_output(self, on_output: OnOutput) -> None: ...

    def follow_output(self, container_id: str) -> None: ...

    async def peak_memory_mb(self, container_id: str) -> int | None: ...

    def close(self) -> None: ...


class Images(Protocol):
    # Called with each runtime whose image has just become ready.
    on_ready: Callable[[str], None] | None

    async def ensure(self, runtime: str, progress: Progress | None = None) -> str: ...

    async def ensure_image(self, image_uri: str) -> str: ...

    def ready_runtimes(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class FakeConfig:
    start_ms: float = 0.0
    run_ms: float = 0.0
    # Fractions of invocations that fail: a function error (the runtime's
    # /error), or a crash of the sandbox mid-invocation.
    error_rate: float = 0.0
    crash_rate: float = 0.0
    seed: int = 0
    # Memory a fake worker reports, so placement is bound by capacity.
    memory_mb: int = 1024 * 1024
    # Time a fake worker takes to make a runtime's image ready, once per
    # runtime (as a real one builds it on its daemon).
    image_ms: float = 0.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> FakeConfig:
        """LAMBDAFLEET_FAKE_{START_MS,RUN_MS,ERROR_RATE,CRASH_RATE,SEED,MEMORY_MB,IMAGE_MS}."""
        source = os.environ if env is None else env

        def get(name: str, default: float) -> float:
            return float(source.get(f"LAMBDAFLEET_FAKE_{name}", default))

        return cls(
            start_ms=get("START_MS", 0),
            run_ms=get("RUN_MS", 0),
            error_rate=get("ERROR_RATE", 0),
            crash_rate=get("CRASH_RATE", 0),
            seed=int(get("SEED", 0)),
            memory_mb=int(get("MEMORY_MB", cls.memory_mb)),
            image_ms=get("IMAGE_MS", 0),
        )


@dataclass(frozen=True)
class FakeRun:
    """One invocation a fake sandbox ran: what tests count."""

    worker_id: str
    sandbox_id: str
    function_name: str
    request_id: str
    payload: bytes
    outcome: str  # "success", "error" or "crash"


@dataclass
class FakeRecords:
    """Everything fake sandboxes did, shared by the workers of one test."""

    runs: list[FakeRun] = field(default_factory=list)
    started: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    # Request ids running now, per worker.
    running: dict[str, set[str]] = field(default_factory=dict)
    # Sandboxes being created at once per worker, and the most seen.
    starting: dict[str, int] = field(default_factory=dict)
    max_starting: dict[str, int] = field(default_factory=dict)

    def enter(self, counter: dict[str, int], peak: dict[str, int], worker_id: str) -> None:
        counter[worker_id] = counter.get(worker_id, 0) + 1
        peak[worker_id] = max(peak.get(worker_id, 0), counter[worker_id])

    def leave(self, counter: dict[str, int], worker_id: str) -> None:
        counter[worker_id] -= 1


def outcome(rng: random.Random, config: FakeConfig) -> str:
    """The fate of one invocation: pure given the generator's state."""
    draw = rng.random()
    if draw < config.crash_rate:
        return "crash"
    if draw < config.crash_rate + config.error_rate:
        return "error"
    return "success"


class FakeImages:
    """Images of a fake worker: each runtime's is ready `image_ms` after it
    is first asked for, concurrent callers sharing the wait."""

    def __init__(self, config: FakeConfig | None = None) -> None:
        self.image_s = (config or FakeConfig()).image_ms / 1000
        self.on_ready: Callable[[str], None] | None = None
        self._ready: set[str] = set()
        self._making: dict[str, asyncio.Task[None]] = {}

    async def ensure(self, runtime: str, progress: Progress | None = None) -> str:
        if runtime not in self._ready:
            task = self._making.get(runtime)
            if task is None:
                task = self._making[runtime] = asyncio.create_task(self._make(runtime))
            await asyncio.shield(task)
        return f"fake/{runtime}"

    async def _make(self, runtime: str) -> None:
        await asyncio.sleep(self.image_s)
        self._ready.add(runtime)
        del self._making[runtime]
        if self.on_ready is not None:
            self.on_ready(runtime)

    async def ensure_image(self, image_uri: str) -> str:
        return image_uri

    def ready_runtimes(self) -> frozenset[str]:
        return frozenset(self._ready)


class FakeSandboxes:
    """The fake counterpart of containers.Containers for one worker."""

    # Their runtime is a task: a timed-out environment is replaced.
    restarts_runtimes = False

    _ids = itertools.count(1)

    def __init__(
        self, worker_id: str, config: FakeConfig, records: FakeRecords, lookup: Lookup
    ) -> None:
        self.worker_id = worker_id
        self.config = config
        self.records = records
        self.lookup = lookup
        # Seeded per worker: the same test run makes the same decisions.
        self.rng = random.Random(f"{config.seed}:{worker_id}")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._on_exit: Callable[[str, int], None] | None = None
        self._on_output: OnOutput | None = None

    async def create_and_start(
        self,
        *,
        image: str,
        command: list[str],
        name: str,
        environment: dict[str, str],
        labels: dict[str, str],
        extra_hosts: dict[str, str],
        memory_mb: int,
        code_tar: bytes,
        entrypoint: list[str] | None = None,
        tmp_mb: int = 512,
        opt_tar: bytes = b"",
        working_dir: str | None = None,
        read_only_mounts: dict[str, str] | None = None,
        user: str | None = None,
    ) -> str:
        records = self.records
        records.enter(records.starting, records.max_starting, self.worker_id)
        try:
            # The pool maps the environment's hostname to the worker; that
            # name is how a runtime finds its environment.
            (hostname,) = extra_hosts
            sandbox_id = f"fake-{next(self._ids)}"
            # The start delay stands for creating and starting a container,
            # where the pool caps concurrency; the runtime then polls at once.
            await asyncio.sleep(self.config.start_ms / 1000)
        finally:
            records.leave(records.starting, self.worker_id)
        records.started += 1
        self._tasks[sandbox_id] = asyncio.create_task(
            self._runtime(sandbox_id, hostname), name=sandbox_id
        )
        return sandbox_id

    async def _runtime(self, sandbox_id: str, hostname: str) -> None:
        """What a runtime client does: init, then next/respond forever. It
        writes a line at init and one per invocation, as a function's print
        would, so the fleet's log path runs without Docker too."""
        config, records, worker = self.config, self.records, self.worker_id
        self._write(sandbox_id, "stderr", "fake runtime: init\n")
        while True:
            env = self.lookup(hostname)
            if env is None:
                return
            try:
                invocation = await env.next()
            except asyncio.CancelledError:
                # The environment stopped (its waiter is cancelled) or the
                # sandbox is being removed: either way this runtime is done.
                return
            fate = outcome(self.rng, config)
            # A function may set its own run time (a variable of its own),
            # so one fleet can hold both quick and slow functions.
            run_ms = float(env.spec.environment.get(RUN_MS_VARIABLE, config.run_ms))
            self._write(sandbox_id, "stdout", f"fake runtime: handling {invocation.request_id}\n")
            records.enter(records.in_flight, records.max_in_flight, worker)
            running = records.running.setdefault(worker, set())
            running.add(invocation.request_id)
            try:
                await asyncio.sleep(run_ms / 1000)
            finally:
                records.leave(records.in_flight, worker)
                running.discard(invocation.request_id)
            records.runs.append(
                FakeRun(
                    worker,
                    sandbox_id,
                    env.spec.function_name,
                    invocation.request_id,
                    invocation.payload,
                    fate,
                )
            )
            if fate == "crash":
                self._tasks.pop(sandbox_id, None)
                if self._on_exit is not None:
                    self._on_exit(sandbox_id, CRASH_EXIT_CODE)
                return
            if fate == "error":
                body = {"errorType": "FakeError", "errorMessage": "simulated function error"}
                env.fail(invocation.request_id, json.dumps(body).encode(), "FakeError")
            else:
                env.respond(invocation.request_id, invocation.payload)

    def _write(self, sandbox_id: str, stream: str, text: str) -> None:
        if self._on_output is not None:
            self._on_output(sandbox_id, stream, text.encode(), time.time())

    def watch_output(self, on_output: OnOutput) -> None:
        self._on_output = on_output

    def follow_output(self, container_id: str) -> None:
        pass  # a fake sandbox writes straight to on_output

    async def peak_memory_mb(self, container_id: str) -> int | None:
        return FAKE_PEAK_MEMORY_MB

    async def put_archive(self, container_id: str, path: str, tar: bytes) -> None:
        # Fake sandboxes run no code; workers with them keep no pre-started pool.
        pass

    async def rename(self, container_id: str, name: str) -> None:
        pass

    async def signal(self, container_id: str, signal: str) -> None:
        pass

    async def remove(self, container_id: str) -> None:
        task = self._tasks.pop(container_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def remove_all(self) -> int:
        ids = list(self._tasks)
        for sandbox_id in ids:
            await self.remove(sandbox_id)
        return len(ids)

    async def remove_leftovers(self, leftover: Callable[[dict[str, str]], bool]) -> int:
        # Fake sandboxes live in their worker's process: only its own.
        return await self.remove_all()

    async def shutdown(self) -> int:
        return await self.remove_all()

    def sever(self) -> None:
        self.close()

    def watch_exits(self, on_exit: Callable[[str, int], None]) -> None:
        self._on_exit = on_exit

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()


@dataclass
class FakeBackend:
    """The fake backend a Worker is given: its settings and the records its
    sandboxes write, possibly shared by many workers."""

    config: FakeConfig = field(default_factory=FakeConfig)
    records: FakeRecords = field(default_factory=FakeRecords)

    def sandboxes(self, worker_id: str, lookup: Lookup) -> FakeSandboxes:
        return FakeSandboxes(worker_id, self.config, self.records, lookup)
