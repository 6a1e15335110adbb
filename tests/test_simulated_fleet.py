"""A real control plane and gateway (their own processes) with 50 simulated
workers (fake sandboxes, in this process, each over its own gRPC session):
5,000 invocations, synchronous and Event, and every one accounted for.

The oracle is the fake backend's record of every run: which worker ran what,
with which outcome, and the most invocations a worker ran at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import tornado.httpclient
from cluster import (
    Process,
    create_fleet_functions,
    free_port,
    wait_healthy,
)
from lambdafleet.worker.agent import Worker
from lambdafleet.worker.backends import FakeBackend, FakeConfig

WORKERS = 50
CAPACITY = 4
INVOCATIONS = 5000
# One in ten is an Event.
EVENT_EVERY = 10
CONCURRENCY = 100
FUNCTIONS = 5
CONFIG = FakeConfig(start_ms=20, run_ms=5, error_rate=0.02, crash_rate=0.01, seed=7)


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Info logs of 50 workers would cost more than the invocations."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**saved)


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(gRPC address, gateway endpoint) of separate processes."""
    address = f"127.0.0.1:{free_port()}"
    port = free_port()
    processes = [
        Process(
            ["control-plane", "--listen", address, "--data-dir", str(tmp_path / "cp")],
            tmp_path / "cp.log",
            env={"LAMBDAFLEET_ASYNC_DELAY_SCALE": "0.01"},
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


class Answer:
    def __init__(self, n: int, event: bool, response: tornado.httpclient.HTTPResponse) -> None:
        self.n = n
        self.event = event
        self.code = response.code
        self.request_id = response.headers.get("x-amzn-RequestId", "")
        self.function_error = response.headers.get("X-Amz-Function-Error", "")
        self.body = response.body


async def run_fleet(address: str, endpoint: str, tmp_path: Path) -> None:
    backend = FakeBackend(CONFIG)
    workers = [
        Worker(
            control_plane=address,
            worker_id=f"sim-{i}",
            capacity=CAPACITY,
            cache_dir=tmp_path / f"cache-{i}",
            backend=backend,
        )
        for i in range(WORKERS)
    ]
    await asyncio.gather(*(w.start() for w in workers))
    try:
        await asyncio.wait_for(asyncio.gather(*(w.registered.wait() for w in workers)), 30)
        await asyncio.to_thread(wait_healthy, endpoint, 30, WORKERS)
        names = await asyncio.to_thread(create_fleet_functions, endpoint, "sim", FUNCTIONS)
        answers = await invoke_all(endpoint, names)
        await check(backend, answers)
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


async def invoke_all(endpoint: str, names: list[str]) -> list[Answer]:
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=CONCURRENCY)
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int) -> Answer:
        event = n % EVENT_EVERY == 0
        name = names[n % len(names)]
        async with slots:
            response = await http.fetch(
                f"{endpoint}/2015-03-31/functions/{name}/invocations",
                method="POST",
                body=json.dumps({"n": n}),
                headers={"X-Amz-Invocation-Type": "Event" if event else "RequestResponse"},
                raise_error=False,
                request_timeout=60,
            )
        return Answer(n, event, response)

    try:
        return await asyncio.gather(*(one(n) for n in range(INVOCATIONS)))
    finally:
        http.close()


async def check(backend: FakeBackend, answers: list[Answer]) -> None:
    """Every caller got its answer; every event ran; the spread held."""
    records = backend.records
    bad = [(a.n, a.code, a.body[:200]) for a in answers if a.code != (202 if a.event else 200)]
    assert not bad, bad[:5]
    runs_by_request: dict[str, list[str]] = {}
    for run in records.runs:
        runs_by_request.setdefault(run.request_id, []).append(run.outcome)
    for a in answers:
        if a.event:
            continue
        # A synchronous invocation runs exactly once, and its caller gets
        # what that run did: the payload echoed, or AWS's function error.
        outcomes = runs_by_request.get(a.request_id)
        assert outcomes is not None and len(outcomes) == 1, (a.n, outcomes)
        if outcomes[0] == "success":
            assert not a.function_error and json.loads(a.body) == {"n": a.n}
        else:
            assert a.function_error == "Unhandled", (a.n, outcomes, a.body)
    events = [a for a in answers if a.event]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ran = {r.request_id for r in records.runs}
        missing = [a.n for a in events if a.request_id not in ran]
        if not missing:
            break
        # Events that failed are retried (after 0.6 s and 1.2 s here).
        await asyncio.sleep(0.2)
    assert not missing, f"{len(missing)} events never ran: {missing[:10]}"
    per_worker = Counter(r.worker_id for r in records.runs)
    assert len(per_worker) > WORKERS // 2, per_worker
    assert max(records.max_in_flight.values()) <= CAPACITY, records.max_in_flight


def test_fifty_simulated_workers_account_for_every_invocation(
    control_plane: tuple[str, str], tmp_path: Path, quiet_logs: None
) -> None:
    address, endpoint = control_plane
    started = time.monotonic()
    asyncio.run(run_fleet(address, endpoint, tmp_path))
    assert time.monotonic() - started < 120
