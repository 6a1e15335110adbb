"""The worker's pool on the fake sandbox backend, without a control plane:
the start cap under a burst, warm reuse, errors and crashes."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from lambdafleet.worker.backends import FakeBackend, FakeConfig, FakeImages, outcome
from lambdafleet.worker.pool import Pool

from lambdafleet.agent.v1 import agent_pb2 as apb


class NoCode:
    async def tar(self, sha: str) -> bytes:
        return b""


def make_pool(config: FakeConfig, capacity: int = 64, max_starts: int = 4) -> tuple[Pool, Any]:
    backend = FakeBackend(config)
    pool: Pool
    sandboxes = backend.sandboxes("w1", lambda h: pool.lookup(h))
    pool = Pool(
        containers=sandboxes,
        images=FakeImages(),
        code=NoCode(),  # type: ignore[arg-type]
        runtime_api_host="127.0.0.1",
        runtime_api_port=0,
        capacity=capacity,
        keepalive_s=600,
        startup_timeout_s=5,
        max_concurrent_starts=max_starts,
    )
    sandboxes.watch_exits(pool.on_container_exit)
    return pool, backend.records


def assignment(n: int, name: str = "f") -> apb.InvokeAssignment:
    return apb.InvokeAssignment(
        invocation_id=f"inv-{n}",
        request_id=f"req-{n}",
        payload=json.dumps({"n": n}).encode(),
        function=apb.FunctionSpec(
            function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
            function_name=name,
            version="$LATEST",
            revision_id="r1",
            runtime="python3.11",
            handler="app.handler",
            memory_size=128,
            timeout=5,
            code_sha256="sha",
        ),
    )


def test_a_burst_starts_one_environment_each_at_most_four_at_once() -> None:
    async def run() -> None:
        pool, records = make_pool(FakeConfig(start_ms=100, run_ms=500))
        results = await asyncio.gather(*(pool.invoke(assignment(n)) for n in range(12)))
        assert [r.status for r in results] == [apb.INVOKE_STATUS_SUCCESS] * 12
        assert [json.loads(r.payload) for r in results] == [{"n": n} for n in range(12)]
        assert all(r.cold_start for r in results)
        assert records.started == 12
        assert records.max_starting == {"w1": 4}
        assert records.max_in_flight == {"w1": 12}
        # Warm now: the next invocation reuses an environment.
        again = await pool.invoke(assignment(99))
        assert not again.cold_start and records.started == 12
        await pool.close()

    asyncio.run(run())


def test_errors_and_crashes_are_function_errors() -> None:
    async def run() -> None:
        pool, records = make_pool(FakeConfig(error_rate=0.3, crash_rate=0.2, seed=3))
        results = [await pool.invoke(assignment(n)) for n in range(40)]
        fates = [r.outcome for r in records.runs]
        assert {"success", "error", "crash"} <= set(fates)
        for result, fate in zip(results, fates, strict=True):
            if fate == "success":
                assert result.status == apb.INVOKE_STATUS_SUCCESS
            else:
                assert result.status == apb.INVOKE_STATUS_FUNCTION_ERROR
                assert result.function_error == "Unhandled"
                error_type = json.loads(result.payload)["errorType"]
                assert error_type == ("FakeError" if fate == "error" else "Runtime.ExitError")
        # A crashed sandbox is gone; the next invocation starts another.
        assert records.started == 1 + fates[:-1].count("crash")
        await pool.close()

    asyncio.run(run())


def test_outcomes_are_deterministic_for_a_seed() -> None:
    config = FakeConfig(error_rate=0.1, crash_rate=0.1)
    a, b = random.Random(1), random.Random(1)
    assert [outcome(a, config) for _ in range(100)] == [outcome(b, config) for _ in range(100)]
