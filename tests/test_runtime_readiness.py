"""A worker takes a runtime's work only once it can run it: a real control
plane and gateway (processes) with simulated workers (fake sandboxes, in this
process), whose fake images take a while to become ready, as a real worker
builds its runtime image on its own daemon.

A worker that joins a fleet is told the runtimes in use and prepares them
without a call; until its image is ready, the control plane places that
runtime's invocations on the workers that have it. When no worker has it
ready, a call still runs: one worker makes the image while the call waits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
from cluster import Process, create_fleet_functions, fleet_status, free_port, wait_healthy
from lambdafleet.worker.agent import Worker
from lambdafleet.worker.backends import FakeBackend, FakeConfig

from lambdafleet.agent.v1 import agent_pb2 as apb

RUNTIME = "python3.11"  # what create_fleet_functions creates
# Long enough that the calls made right after the join are all placed (and,
# before the rule, would have reached the joining worker) before it is ready.
IMAGE_MS = 4000


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(gRPC address, gateway endpoint)."""
    address = f"127.0.0.1:{free_port()}"
    port = free_port()
    processes = [
        Process(
            ["control-plane", "--listen", address, "--data-dir", str(tmp_path / "cp")],
            tmp_path / "cp.log",
        ).start(),
        Process(
            ["gateway", "--control-plane", address, "--port", str(port)],
            tmp_path / "gw.log",
        ).start(),
    ]
    try:
        yield address, f"http://127.0.0.1:{port}"
    finally:
        for process in reversed(processes):
            process.stop()


class Arrivals:
    """The assignments a worker received, each with whether the runtime's
    image was ready on it at that moment."""

    def __init__(self, worker: Worker) -> None:
        self.ready_at_arrival: list[bool] = []
        original = worker.pool.invoke

        async def recording(
            assignment: apb.InvokeAssignment, on_chunk: Any = None
        ) -> apb.InvokeResult:
            self.ready_at_arrival.append(RUNTIME in worker.images.ready_runtimes())
            return await original(assignment, on_chunk)

        worker.pool.invoke = recording  # type: ignore[method-assign]


async def start_worker(address: str, worker_id: str, config: FakeConfig, tmp: Path) -> Worker:
    worker = Worker(
        control_plane=address,
        worker_id=worker_id,
        capacity=8,
        cache_dir=tmp / f"cache-{worker_id}",
        backend=FakeBackend(config),
    )
    await worker.start()
    await asyncio.wait_for(worker.registered.wait(), 30)
    return worker


async def invoke_many(endpoint: str, name: str, count: int) -> list[int]:
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=count)

    async def one(n: int) -> int:
        response = await http.fetch(
            f"{endpoint}/2015-03-31/functions/{name}/invocations",
            method="POST",
            body=json.dumps({"n": n}),
            raise_error=False,
            request_timeout=60,
        )
        return int(response.code)

    try:
        return await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        http.close()


async def until(condition: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.1)


def status_ready(endpoint: str, worker_id: str) -> bool:
    for worker in fleet_status(endpoint)["workers"]:
        if worker["worker_id"] == worker_id:
            return RUNTIME in worker["ready_runtimes"]
    return False


async def joining_worker(address: str, endpoint: str, tmp: Path) -> None:
    # "a" has the image at once; "b" sorts after it, so every tie of free
    # memory would go to the joining worker.
    ready = await start_worker(address, "a-ready", FakeConfig(run_ms=1000), tmp)
    joining: Worker | None = None
    try:
        await asyncio.to_thread(wait_healthy, endpoint, 30, 1)
        (name,) = await asyncio.to_thread(create_fleet_functions, endpoint, "ready", 1)

        joining = await start_worker(
            address, "b-joining", FakeConfig(run_ms=1000, image_ms=IMAGE_MS), tmp
        )
        arrivals = Arrivals(joining)
        joined = time.monotonic()
        await asyncio.to_thread(wait_healthy, endpoint, 30, 2)
        # Calls right after the join: none waits for the joining worker's
        # image; the ready worker's 8 slots take them.
        codes = await invoke_many(endpoint, name, 8)
        assert codes == [200] * 8, codes
        assert all(arrivals.ready_at_arrival), arrivals.ready_at_arrival
        if time.monotonic() - joined < IMAGE_MS / 1000:
            assert arrivals.ready_at_arrival == [], arrivals.ready_at_arrival

        # Told the runtimes in use, it made the image without a call, and
        # said so to the control plane.
        await until(lambda: status_ready(endpoint, "b-joining"), 30, "b-joining ready")
        assert RUNTIME in joining.images.ready_runtimes()
        # Now it takes work: more calls than the ready worker has slots.
        codes = await invoke_many(endpoint, name, 16)
        assert codes == [200] * 16, codes
        assert arrivals.ready_at_arrival, "the joining worker got no work once ready"
        assert all(arrivals.ready_at_arrival), arrivals.ready_at_arrival
    finally:
        if joining is not None:
            await joining.stop()
        await ready.stop()


def test_a_joining_worker_gets_work_once_its_image_is_ready(
    control_plane: tuple[str, str], tmp_path: Path
) -> None:
    address, endpoint = control_plane
    asyncio.run(joining_worker(address, endpoint, tmp_path))


async def no_worker_ready(address: str, endpoint: str, tmp: Path) -> None:
    first = await start_worker(address, "first", FakeConfig(), tmp)
    try:
        await asyncio.to_thread(wait_healthy, endpoint, 30, 1)
        (name,) = await asyncio.to_thread(create_fleet_functions, endpoint, "fresh", 1)
    finally:
        await first.stop()
    # The only worker now has no image of the function's runtime yet.
    fresh = await start_worker(address, "fresh", FakeConfig(image_ms=IMAGE_MS), tmp)
    try:
        arrivals = Arrivals(fresh)
        await until(
            lambda: [w["worker_id"] for w in fleet_status(endpoint)["workers"]] == ["fresh"],
            30,
            "only the fresh worker live",
        )
        assert RUNTIME not in fresh.images.ready_runtimes()
        codes = await invoke_many(endpoint, name, 2)
        assert codes == [200, 200], codes
        # Placed at once on the worker making the image; they waited for it
        # there, not for a worker to become ready.
        assert arrivals.ready_at_arrival == [False, False], arrivals.ready_at_arrival
    finally:
        await fresh.stop()


def test_a_call_runs_when_no_worker_has_its_image_yet(
    control_plane: tuple[str, str], tmp_path: Path
) -> None:
    address, endpoint = control_plane
    asyncio.run(no_worker_ready(address, endpoint, tmp_path))
