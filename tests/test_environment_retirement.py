"""Environments no invocation will use again go at once: DeleteFunction
stops the function's environments, and an update of $LATEST retires the
old ones once idle instead of leaving them, and their memory, to the
keep-alive (issue 18). The control plane tells the workers
(RetireEnvironments); the workers remove the containers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from cluster import ROLE, containers, environments, zip_bytes
from conftest import UpCluster
from lambdafleet.worker.backends import FakeBackend, FakeConfig, FakeImages
from lambdafleet.worker.environment import Environment, Status
from lambdafleet.worker.pool import Pool, retires

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.environments import environment_key

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"

# -- the worker's decision and its pool ---------------------------------------------


def spec(arn: str = ARN, version: str = "$LATEST", revision: str = "r1") -> apb.FunctionSpec:
    return apb.FunctionSpec(
        function_arn=arn,
        function_name=arn.rsplit(":", 1)[1],
        version=version,
        revision_id=revision,
        runtime="python3.11",
        handler="app.handler",
        memory_size=128,
        timeout=5,
        code_sha256="sha",
    )


def test_what_a_retirement_names() -> None:
    async def run() -> None:
        old = Environment(spec(), environment_key(spec()))
        new = Environment(spec(revision="r2"), environment_key(spec(revision="r2")))
        version = Environment(spec(version="1"), environment_key(spec(version="1")))
        other = Environment(spec(arn=f"{ARN}x"), environment_key(spec(arn=f"{ARN}x")))
        provisioned = Environment(spec(), environment_key(spec()))
        provisioned.provisioned = True
        update = apb.RetireEnvironments(
            function_arn=ARN, version="$LATEST", keep_key=environment_key(spec(revision="r2"))
        )
        assert [retires(update, e) for e in (old, new, version, other, provisioned)] == [
            True,
            False,
            False,
            False,
            False,
        ]
        deleted = apb.RetireEnvironments(function_arn=ARN)
        assert [retires(deleted, e) for e in (old, new, version, other)] == [
            True,
            True,
            True,
            False,
        ]
        version_deleted = apb.RetireEnvironments(function_arn=ARN, version="1")
        assert [retires(version_deleted, e) for e in (old, version)] == [False, True]

    asyncio.run(run())


class NoCode:
    async def tar(self, sha: str) -> bytes:
        return b""


def test_the_pool_stops_idle_ones_now_and_busy_ones_once_done() -> None:
    async def run() -> None:
        pool: Pool
        backend = FakeBackend(FakeConfig())
        sandboxes = backend.sandboxes("w1", lambda h: pool.lookup(h))
        pool = Pool(
            containers=sandboxes,
            images=FakeImages(),
            code=NoCode(),  # type: ignore[arg-type]
            runtime_api_host="127.0.0.1",
            runtime_api_port=0,
            capacity=4,
            keepalive_s=600,
            startup_timeout_s=5,
        )
        slow = spec()
        slow.environment["LAMBDAFLEET_FAKE_RUN_MS"] = "300"

        def invoke(rid: str) -> asyncio.Task[apb.InvokeResult]:
            assignment = apb.InvokeAssignment(invocation_id=rid, request_id=rid, function=slow)
            return asyncio.create_task(pool.invoke(assignment))

        await asyncio.gather(invoke("a"), invoke("b"))
        running = invoke("c")
        await asyncio.sleep(0.05)
        assert {e.status for e in pool.environments} == {Status.READY, Status.INVOKING}
        busy = next(e for e in pool.environments if e.status is Status.INVOKING)
        idle = next(e for e in pool.environments if e is not busy)

        assert await pool.retire(apb.RetireEnvironments(function_arn=ARN)) == 2
        assert idle.status is Status.STOPPED and busy.status is Status.INVOKING
        assert idle.container_id not in sandboxes._tasks
        # The busy one finishes its invocation, takes no other, then goes.
        assert (await running).status == apb.INVOKE_STATUS_SUCCESS
        later = await invoke("d")
        assert later.cold_start and later.status == apb.INVOKE_STATUS_SUCCESS
        await pool.flush_logs()
        assert busy.status is Status.STOPPED
        assert busy.container_id not in sandboxes._tasks
        assert len(pool.environments) == 1 and not pool.environments[0].retired
        await pool.close()

    asyncio.run(run())


# -- real: the control plane tells a worker on Docker ---------------------------------

VERSIONED = """
def handler(event, context):
    return {"code": "CODE"}
"""


def create(client: Any, code: str) -> str:
    name = f"retire-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": VERSIONED.replace("CODE", code)})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return name


def invoke(client: Any, name: str) -> Any:
    response = client.invoke(FunctionName=name, Payload=b"{}")
    return json.loads(response["Payload"].read())


def on_daemon(container_id: str) -> bool:
    return container_id in {c["id"] for c in containers(label="lambdafleet.worker")}


def wait_gone(container_id: str, timeout: float) -> float:
    started = time.monotonic()
    while on_daemon(container_id) and time.monotonic() - started < timeout:
        time.sleep(0.2)
    assert not on_daemon(container_id), f"container {container_id[:12]} still there"
    return time.monotonic() - started


def test_delete_function_removes_its_containers(cluster: UpCluster, client: Any) -> None:
    name = create(client, "one")
    assert invoke(client, name) == {"code": "one"}
    (env,) = environments(cluster.endpoint, name)
    assert on_daemon(env["container_id"])
    client.delete_function(FunctionName=name)
    wait_gone(env["container_id"], timeout=10)


def test_an_update_retires_the_old_environment(cluster: UpCluster, client: Any) -> None:
    name = create(client, "old")
    assert invoke(client, name) == {"code": "old"}
    (old,) = environments(cluster.endpoint, name)
    client.update_function_code(
        FunctionName=name,
        ZipFile=zip_bytes({"app.py": VERSIONED.replace("CODE", "new")}),
    )
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    wait_gone(old["container_id"], timeout=10)
    assert invoke(client, name) == {"code": "new"}
    assert invoke(client, name) == {"code": "new"}
    client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"MODE": "1"}}
    )
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    (newer,) = [e for e in environments(cluster.endpoint, name)]
    wait_gone(newer["container_id"], timeout=10)
    assert invoke(client, name) == {"code": "new"}
