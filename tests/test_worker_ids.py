"""Worker ids (issue 18): the default is unique per Docker daemon, so two
workers on one host, each with its own daemon, both register; a second
live process given the id of a live worker is refused (it exits saying so)
while the first keeps working; a worker restarted after its process died
gets its id back."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
from cluster import Process, free_port
from lambdafleet.control_plane.server import ControlPlane
from lambdafleet.control_plane.workers import Claim, WorkerRegistry, WorkerSession, claim
from lambdafleet.worker.agent import Worker
from lambdafleet.worker.backends import FakeBackend
from lambdafleet.worker.worker_id import default_worker_id

from lambdafleet.agent.v1 import agent_pb2 as apb

# -- decisions -------------------------------------------------------------------------


def test_the_default_id_is_the_host_and_its_daemon() -> None:
    one = default_worker_id("host", "6a1f2b3c-4d5e-6f70-8192-a3b4c5d6e7f8")
    two = default_worker_id("host", "0b9c8d7e-6f50-4132-a1b2-c3d4e5f6a7b8")
    assert one == "host-6a1f2b3c4d5e"
    assert one != two
    assert default_worker_id("host", "6a1f2b3c-4d5e-6f70-8192-a3b4c5d6e7f8") == one  # restart
    # Older daemons: ABCD:EFGH:... (letters and digits kept).
    assert default_worker_id("h", "ABCD:EFGH:IJKL:MNOP") == "h-abcdefghijkl"
    assert default_worker_id("h", "") == "h"


def session(worker_id: str = "w", instance_id: str = "i1") -> WorkerSession:
    return WorkerSession(apb.Register(worker_id=worker_id, instance_id=instance_id), 1000)


def test_who_takes_an_id() -> None:
    holder = session()
    holder.last_seen, holder.deadline = 100.0, 101.0  # heard from at 100, TTL 1 s
    assert claim(None, "i2", 100.5, 100.5) is Claim.TAKE
    # Not known yet: the holder said nothing since, and its TTL runs.
    assert claim(holder, "i2", 100.5, 100.9) is Claim.WAIT
    # The same process reconnecting (its old stream not seen broken yet).
    assert claim(holder, "i1", 100.5, 100.5) is Claim.TAKE
    # The holder silent past its TTL (a dead host, a hung process).
    assert claim(holder, "i2", 100.5, 101.1) is Claim.TAKE
    # A heartbeat after the newcomer came: a live process holds it.
    holder.last_seen, holder.deadline = 100.7, 101.7
    assert claim(holder, "i2", 100.5, 100.8) is Claim.REFUSE
    holder.close()
    assert claim(holder, "i2", 100.5, 100.5) is Claim.TAKE


def test_the_registry_refuses_a_live_holders_id() -> None:
    async def run() -> None:
        registry = WorkerRegistry(ttl_ms=1000)
        first = session(instance_id="a")
        assert await registry.admit(first)

        async def heartbeats() -> None:
            while True:
                await asyncio.sleep(0.1)
                first.touch()

        beating = asyncio.create_task(heartbeats())
        assert not await registry.admit(session(instance_id="b"))
        assert registry.get("w") is first and not first.closed
        beating.cancel()
        # Silent from now on: the next one takes the id once the TTL ran out.
        third = session(instance_id="c")
        assert await registry.admit(third)
        assert registry.get("w") is third and first.closed

    asyncio.run(run())


# -- in process: a control plane and fake workers ------------------------------------------


def test_a_second_live_worker_is_refused_and_a_restarted_one_is_not(tmp_path: Path) -> None:
    async def run() -> None:
        cp = ControlPlane(tmp_path / "cp", "127.0.0.1:0", heartbeat_ttl_ms=1500)
        await cp.start()
        address = f"127.0.0.1:{cp.port}"
        backend = FakeBackend()
        started: list[Worker] = []

        async def worker() -> Worker:
            w = Worker(
                control_plane=address,
                worker_id="same",
                cache_dir=tmp_path / f"cache-{len(started)}",
                backend=backend,
            )
            started.append(w)
            await w.start()
            return w

        try:
            first = await worker()
            await asyncio.wait_for(first.registered.wait(), 10)
            held = cp.registry.get("same")
            second = await worker()
            await asyncio.wait_for(second.refused.wait(), 10)
            assert "'same'" in second.refusal and "--worker-id" in second.refusal
            assert not second.registered.is_set()
            # The first keeps its session, heartbeating.
            await asyncio.sleep(1.0)
            assert cp.registry.get("same") is held and held is not None and not held.closed
            assert first.registered.is_set()

            # Its process dies: a restart with the same id is accepted.
            await first.abort()
            third = await worker()
            await asyncio.wait_for(third.registered.wait(), 10)
            # Frozen with its stream open: a restart waits out its TTL, no more.
            third.hang()
            fourth = await worker()
            await asyncio.wait_for(fourth.registered.wait(), 10)
            assert not fourth.refused.is_set()
        finally:
            await asyncio.gather(*(w.stop() for w in started), return_exceptions=True)
            await cp.stop()

    asyncio.run(run())


# -- processes, as a user starts them -------------------------------------------------------


def test_the_second_worker_process_exits_naming_the_id(tmp_path: Path) -> None:
    cp_address = f"127.0.0.1:{free_port()}"
    cp = Process(
        ["control-plane", "--listen", cp_address, "--data-dir", str(tmp_path / "cp")],
        tmp_path / "cp.log",
    ).start()
    args = ["worker", "--backend", "fake", "--worker-id", "twin", "--control-plane", cp_address]
    first = Process(args, tmp_path / "first.log").start()
    try:
        wait_for_event(first, "worker.registered")
        second = subprocess.run(
            [sys.executable, "-m", "lambdafleet.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stderr
        assert "worker id 'twin' is in use" in second.stderr
        assert "--worker-id" in second.stderr
        assert first.proc is not None and first.proc.poll() is None
        assert '"worker.replaced"' not in cp.output()
    finally:
        first.stop()
        cp.stop()


def wait_for_event(process: Process, event: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.output().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == event:
                found: dict[str, object] = json.loads(line)
                return found
        assert process.proc is not None and process.proc.poll() is None, process.output()
        time.sleep(0.2)
    raise AssertionError(f"no {event} within {timeout} s: {process.output()[-2000:]}")


def test_by_default_a_worker_is_named_after_its_host_and_daemon(
    docker_daemon: None, tmp_path: Path
) -> None:
    client = docker.from_env()
    try:
        daemon_id = str(client.info()["ID"])
    finally:
        client.close()
    cp_address = f"127.0.0.1:{free_port()}"
    cp = Process(
        ["control-plane", "--listen", cp_address, "--data-dir", str(tmp_path / "cp")],
        tmp_path / "cp.log",
    ).start()
    worker = Process(
        ["worker", "--control-plane", cp_address, "--cache-dir", str(tmp_path / "cache")],
        tmp_path / "worker.log",
        env={"LAMBDAFLEET_PRESTART": "0"},
    ).start()
    try:
        registered = wait_for_event(worker, "worker.registered")
        assert registered["worker_id"] == default_worker_id(socket.gethostname(), daemon_id)
    finally:
        assert worker.stop(signal.SIGTERM) == 0
        cp.stop()


@pytest.fixture(autouse=True)
def _no_worker_id_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDAFLEET_WORKER_ID", raising=False)
