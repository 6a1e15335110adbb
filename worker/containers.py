"""Containers on the worker's own Docker daemon: the only code that touches
Docker besides image preparation. docker-py is blocking, so every call runs
in a thread and the event loop never waits on the daemon."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import structlog

log = structlog.get_logger(__name__)

LABEL_WORKER = "lambdafleet.worker"
LABEL_FUNCTION = "lambdafleet.function"
LABEL_VERSION = "lambdafleet.version"
LABEL_ENVIRONMENT = "lambdafleet.environment"
# On pre-started containers (worker/prestart.py): their bucket, runtime:memory.
LABEL_PRESTART = "lambdafleet.prestart"

# The user AWS runs functions as (sbx_user1051).
SANDBOX_USER = "993:990"


class Containers:
    def __init__(self, client: docker.DockerClient, worker_id: str, network: str | None) -> None:
        self.client = client
        self.worker_id = worker_id
        self.network = network
        self._events: Any = None

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
    ) -> str:
        def run() -> str:
            container = self.client.containers.create(
                image,
                command=command,
                entrypoint=entrypoint,
                name=name,
                environment=environment,
                labels={LABEL_WORKER: self.worker_id, **labels},
                extra_hosts=extra_hosts,
                mem_limit=f"{memory_mb}m",
                user=SANDBOX_USER,
                network=self.network,
                detach=True,
            )
            try:
                # Copied, never bind-mounted, so a remote daemon works too.
                if code_tar:
                    container.put_archive("/var/task", code_tar)
                container.start()
            except BaseException:
                container.remove(force=True)
                raise
            return str(container.id)

        return await asyncio.to_thread(run)

    async def put_archive(self, container_id: str, path: str, tar: bytes) -> None:
        """Copy files into a running container (binding a pre-started one)."""

        def run() -> None:
            if not self.client.api.put_archive(container_id, path, tar):
                raise RuntimeError(f"copying into {path} of {container_id[:12]} failed")

        await asyncio.to_thread(run)

    async def rename(self, container_id: str, name: str) -> None:
        await asyncio.to_thread(self.client.api.rename, container_id, name)

    async def remove(self, container_id: str) -> None:
        def run() -> None:
            try:
                self.client.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                # Already being removed: the daemon finishes it.
                if "already in progress" not in str(exc):
                    raise

        await asyncio.to_thread(run)

    def remove_all_sync(self) -> int:
        """Remove every container labelled with this worker's id: those of this
        run and the orphans of a previous run that was killed."""
        containers = self.client.containers.list(
            all=True, filters={"label": f"{LABEL_WORKER}={self.worker_id}"}
        )
        for container in containers:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        return len(containers)

    async def remove_all(self) -> int:
        return await asyncio.to_thread(self.remove_all_sync)

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
