"""Containers on the worker's own Docker daemon: the only code that touches
Docker besides image preparation. docker-py is blocking, so every call runs
in a thread and the event loop never waits on the daemon."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import structlog

from .docker_flags import DockerFlags, tmp_mount
from .isolation import ensure_network, privileges

log = structlog.get_logger(__name__)

LABEL_WORKER = "lambdafleet.worker"
LABEL_FUNCTION = "lambdafleet.function"
LABEL_VERSION = "lambdafleet.version"
LABEL_ENVIRONMENT = "lambdafleet.environment"
# On pre-started containers (worker/prestart.py): their bucket, runtime:memory.
LABEL_PRESTART = "lambdafleet.prestart"
# The worker process that created the container (worker/fencing.py).
LABEL_OWNER = "lambdafleet.owner"
# How long a worker that stops waits for the container creations in flight.
CREATIONS_WAIT_S = 120.0


class ContainersClosed(RuntimeError):
    """The worker is stopping: no container is created any more."""


# The user AWS runs functions as (sbx_user1051).
SANDBOX_USER = "993:990"
# Processes and threads one container may run.
PIDS_LIMIT = 1024

# on_output(container_id, stream, chunk, unix time received): what a
# container wrote to "stdout" or "stderr".
OnOutput = Callable[[str, str, bytes, float], None]

# Where a local daemon's container keeps its peak memory, by cgroup layout
# (v2 then v1; systemd then cgroupfs driver). A remote daemon's are not here.
CGROUP_PEAK_FILES = (
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.peak",
    "/sys/fs/cgroup/docker/{id}/memory.peak",
    "/sys/fs/cgroup/memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/memory/docker/{id}/memory.max_usage_in_bytes",
)
# Without them, the Docker stats API: at most this often per container.
STATS_INTERVAL_S = 2.0


class Containers:
    # Every container's main process is our launcher (worker/launcher.py).
    restarts_runtimes = True

    def __init__(
        self,
        client: docker.DockerClient,
        worker_id: str,
        network: str | None,
        stream_client: docker.DockerClient | None = None,
        flags: DockerFlags | None = None,
        remove_stopped: bool = True,
        owner: str = "",
    ) -> None:
        self.client = client
        self.worker_id = worker_id
        # This worker process's owner label (worker/fencing.py).
        self.owner = owner
        # LAMBDA_DOCKER_FLAGS (docker_flags.py): its --network wins. None:
        # the default bridge until use_function_network picks lambdafleet's.
        self.flags = flags or DockerFlags()
        self.network = self.flags.network or network
        # LAMBDA_REMOVE_CONTAINERS=0: a stopped environment's container is
        # only stopped (remove_all still removes it, by its labels).
        self.remove_stopped = remove_stopped
        self._events: Any = None
        # Output streams stay open for a container's life, idle for hours:
        # they need a client without a read timeout.
        self.stream_client = stream_client or client
        self._on_output: OnOutput | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Per container: its cgroup peak-memory file (None: not visible
        # here), or the last stats reading (time, MB).
        self._peak_files: dict[str, Path | None] = {}
        self._stats: dict[str, tuple[float, int]] = {}
        self._stats_running: set[str] = set()
        # Attach streams opened at creation, not yet followed.
        self._attached: dict[str, Any] = {}
        # Per container, the worker's end of its stdin: the container ends
        # when it closes, the worker's death included (the stdin fence,
        # worker/launcher.py).
        self._fences: dict[str, Any] = {}
        # Creations in flight (their threads), and whether the worker is
        # stopping: it waits for them, so none lands after its last sweep.
        self._creations = threading.Condition()
        self._in_flight = 0
        self._closing = False

    def use_function_network(self) -> None:
        """Unless the user named a network, put function containers on the
        daemon's function network, where they cannot reach each other
        (isolation.py), making it when missing. Blocking."""
        if self.network is None:
            self.network = ensure_network(self.client)

    def bridge_gateway(self) -> str:
        """Where a container on this daemon reaches the daemon's host."""
        name = self.network or "bridge"
        net = self.client.networks.get(name)
        for cfg in net.attrs.get("IPAM", {}).get("Config") or []:
            if cfg.get("Gateway"):
                return str(cfg["Gateway"])
            if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
                # Some daemons omit the gateway; Docker gives it the subnet's
                # first host address.
                return str(next(ipaddress.ip_network(cfg["Subnet"]).hosts()))
        return "172.17.0.1"

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
        flags = self.flags
        # The flags' variables and hosts first: the function's (and the
        # reserved ones) win, as they do over the image's.
        kwargs = {"mem_limit": f"{memory_mb}m", **flags.create_kwargs()}
        if working_dir:
            kwargs["working_dir"] = working_dir
        # A fork bomb in a function stops at this, not at the host's limit
        # (LAMBDA_DOCKER_FLAGS' --pids-limit may set another).
        kwargs.setdefault("pids_limit", PIDS_LIMIT)
        # LAMBDA_DOCKER_FLAGS' -v, and hot reloading's folder (host folder ->
        # container path, read-only; it must exist on the daemon's host).
        volumes = [
            *kwargs.pop("volumes", []),
            *(f"{host}:{path}:ro" for host, path in (read_only_mounts or {}).items()),
        ]
        if volumes:
            kwargs["volumes"] = volumes

        user = user or SANDBOX_USER
        # No capabilities (but what a root waiter needs to drop root), and
        # no setuid binary gains any (isolation.py).
        kwargs.update(privileges(user))

        def run() -> str:
            with self._creations:
                if self._closing:
                    raise ContainersClosed("the worker is stopping")
                self._in_flight += 1
            try:
                return create()
            finally:
                with self._creations:
                    self._in_flight -= 1
                    self._creations.notify_all()

        def create() -> str:
            container = self.client.containers.create(
                image,
                command=command or None,
                entrypoint=entrypoint,
                name=name,
                environment={**flags.environment, **environment},
                labels={
                    **flags.labels,
                    LABEL_WORKER: self.worker_id,
                    **({LABEL_OWNER: self.owner} if self.owner else {}),
                    **labels,
                },
                extra_hosts={**flags.extra_hosts, **extra_hosts},
                user=user,
                network=self.network,
                tmpfs=tmp_mount(tmp_mb, SANDBOX_USER),
                # An open stdin that Docker closes once the worker's attach
                # to it ends (StdinOnce, which docker-py sets only for a
                # container created attached): the stdin fence.
                stdin_open=True,
                detach=False,
                **kwargs,
            )
            try:
                self._fences[container.id] = self.stream_client.api.attach_socket(
                    container.id, params={"stdin": 1, "stream": 1}
                )
                # Copied, never bind-mounted, so a remote daemon works too.
                if code_tar:
                    container.put_archive("/var/task", code_tar)
                if opt_tar:  # the layers, merged (layers.py)
                    container.put_archive("/opt", opt_tar)
                # Attached before it starts: no line of its output is missed.
                output = self._attach(container.id)
                container.start()
            except BaseException:
                _sever(self._fences.pop(container.id, None))
                container.remove(force=True)
                raise
            if output is not None:
                self._attached[container.id] = output
            self._peak_files[container.id] = _peak_file(container.id)
            return str(container.id)

        creation = asyncio.get_running_loop().run_in_executor(None, run)
        try:
            # Shielded: a cancelled caller does not stop the thread, and
            # what the thread creates must then go.
            return await asyncio.shield(creation)
        except asyncio.CancelledError:
            creation.add_done_callback(self._remove_unwanted)
            raise

    def _remove_unwanted(self, creation: asyncio.Future[str]) -> None:
        """A container whose creator gave up while it was being made."""
        if creation.cancelled() or creation.exception() is not None:
            return
        container_id = creation.result()
        task = asyncio.get_running_loop().create_task(self.remove(container_id))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- output and memory ----------------------------------------------------

    def watch_output(self, on_output: OnOutput) -> None:
        """Call on_output on the loop with everything containers created from
        now on write. One thread per container follows its attach stream
        (docker-py blocks); a thread ends with its container."""
        self._on_output = on_output
        self._loop = asyncio.get_running_loop()

    def _attach(self, container_id: str) -> Iterator[tuple[bytes | None, bytes | None]] | None:
        if self._on_output is None:
            return None
        stream: Iterator[tuple[bytes | None, bytes | None]] = self.stream_client.api.attach(
            container_id, stdout=True, stderr=True, stream=True, logs=False, demux=True
        )
        return stream

    def follow_output(self, container_id: str) -> None:
        """Start delivering the container's output (attached at creation).
        Called once the pool knows whose the container is, so no early line
        arrives for a container it cannot place; until then the daemon holds
        the output back."""
        output = self._attached.pop(container_id, None)
        loop, on_output = self._loop, self._on_output
        if output is None or loop is None or on_output is None:
            return

        def follow() -> None:
            try:
                for out, err in output:
                    now = time.time()
                    if out:
                        loop.call_soon_threadsafe(on_output, container_id, "stdout", out, now)
                    if err:
                        loop.call_soon_threadsafe(on_output, container_id, "stderr", err, now)
            except Exception as exc:  # the container went, or the loop closed
                log.debug("containers.output_closed", container=container_id[:12], error=repr(exc))
            finally:
                output.close()

        threading.Thread(target=follow, name=f"output-{container_id[:12]}", daemon=True).start()

    async def peak_memory_mb(self, container_id: str) -> int | None:
        """The container's peak memory so far: its cgroup's file when the
        daemon is local (a read of a few microseconds), else the Docker stats
        API, read in a thread at most every STATS_INTERVAL_S and answered
        from the last reading meanwhile."""
        path = self._peak_files.get(container_id)
        if path is not None:
            try:
                return int(path.read_text()) // (1024 * 1024)
            except (OSError, ValueError):
                self._peak_files[container_id] = None
        last = self._stats.get(container_id)
        if (last is None or time.monotonic() - last[0] > STATS_INTERVAL_S) and (
            container_id not in self._stats_running
        ):
            self._stats_running.add(container_id)
            try:
                reading = await asyncio.to_thread(self._stats_mb, container_id)
            finally:
                self._stats_running.discard(container_id)
            if reading is not None:
                peak = max(reading, last[1] if last is not None else 0)
                self._stats[container_id] = (time.monotonic(), peak)
                return peak
        return last[1] if last is not None else None

    def _stats_mb(self, container_id: str) -> int | None:
        try:
            stats = self.client.api.stats(container_id, stream=False, one_shot=True)
        except Exception:
            return None
        memory = stats.get("memory_stats") or {}
        # cgroup v1 reports the peak; v2 only the current usage.
        used = memory.get("max_usage") or memory.get("usage")
        return int(used) // (1024 * 1024) if used else None

    def forget(self, container_id: str) -> None:
        _sever(self._fences.pop(container_id, None))
        self._peak_files.pop(container_id, None)
        self._stats.pop(container_id, None)
        output = self._attached.pop(container_id, None)
        if output is not None:
            output.close()

    async def put_archive(self, container_id: str, path: str, tar: bytes) -> None:
        """Copy files into a running container (binding a pre-started one)."""

        def run() -> None:
            if not self.client.api.put_archive(container_id, path, tar):
                raise RuntimeError(f"copying into {path} of {container_id[:12]} failed")

        await asyncio.to_thread(run)

    async def rename(self, container_id: str, name: str) -> None:
        await asyncio.to_thread(self.client.api.rename, container_id, name)

    async def signal(self, container_id: str, signal: str) -> None:
        """Signal the container's main process (the daemon delivers it, so a
        remote daemon works and no exec is needed)."""
        await asyncio.to_thread(self.client.api.kill, container_id, signal)

    async def remove(self, container_id: str) -> None:
        self.forget(container_id)

        def run() -> None:
            try:
                if self.remove_stopped:
                    self.client.api.remove_container(container_id, force=True)
                else:
                    self.client.api.kill(container_id)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                # Already being removed (the daemon finishes it), or, kept,
                # already stopped.
                if "already in progress" not in str(exc) and "is not running" not in str(exc):
                    raise

        await asyncio.to_thread(run)

    def remove_all_sync(self) -> int:
        """Remove every container labelled with this worker's id: those of this
        run and the orphans of a previous run that was killed."""
        return self.remove_where_sync(lambda labels: labels.get(LABEL_WORKER) == self.worker_id)

    def remove_where_sync(self, leftover: Callable[[dict[str, str]], bool]) -> int:
        """Remove every lambdafleet container whose labels `leftover` names
        (this worker's own included)."""
        for output in list(self._attached.values()):
            output.close()
        self._attached.clear()
        found = self.client.containers.list(all=True, filters={"label": LABEL_WORKER}, sparse=True)
        removed = 0
        for container in found:
            if not leftover(dict(container.attrs.get("Labels") or {})):
                continue
            _sever(self._fences.pop(container.id, None))
            try:
                self.client.api.remove_container(container.id, force=True)
                removed += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise
        return removed

    async def remove_all(self) -> int:
        return await asyncio.to_thread(self.remove_all_sync)

    async def remove_leftovers(self, leftover: Callable[[dict[str, str]], bool]) -> int:
        return await asyncio.to_thread(self.remove_where_sync, leftover)

    async def shutdown(self) -> int:
        """The worker stops: no creation starts any more, those in flight
        finish, then every container of this worker goes, so none is
        created after the sweep. How many were removed."""

        def run() -> int:
            with self._creations:
                self._closing = True
                self._creations.wait_for(lambda: self._in_flight == 0, CREATIONS_WAIT_S)
            return self.remove_all_sync()

        return await asyncio.to_thread(run)

    def sever(self) -> None:
        """Close the worker's end of every container's stdin, as the
        kernel does when the worker dies: the containers end (a test hook
        for crashes, see Worker.abort)."""
        for container_id in list(self._fences):
            _sever(self._fences.pop(container_id, None))

    def watch_exits(self, on_exit: Callable[[str, int], None]) -> None:
        """Call on_exit(container_id, exit_code) on the loop for every container
        of this worker that dies. One thread follows the daemon's event stream,
        instead of one blocking wait per container."""
        loop = asyncio.get_running_loop()
        events = self.client.events(
            decode=True,
            filters={
                "type": "container",
                "event": "die",
                "label": f"{LABEL_WORKER}={self.worker_id}",
            },
        )
        self._events = events

        def follow() -> None:
            try:
                for event in events:
                    cid = event.get("id") or event.get("Actor", {}).get("ID", "")
                    code = int(event.get("Actor", {}).get("Attributes", {}).get("exitCode", "0"))
                    loop.call_soon_threadsafe(on_exit, cid, code)
            except Exception as exc:  # the stream closes on shutdown
                log.debug("containers.events_closed", error=repr(exc))

        threading.Thread(target=follow, name="docker-events", daemon=True).start()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        self.sever()


def _sever(fence: Any) -> None:
    """Close a container's stdin attach: shut down the connection itself
    (docker-py's SocketIO wrapper leaves it open while its response lives)."""
    if fence is None:
        return
    sock = getattr(fence, "_sock", None) or fence
    try:
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    except OSError:
        pass
    fence.close()


def _peak_file(container_id: str) -> Path | None:
    for pattern in CGROUP_PEAK_FILES:
        path = Path(pattern.format(id=container_id))
        if os.access(path, os.R_OK):
            return path
    return None
