"""Pure decision code, tested directly: no servers, no Docker."""

from __future__ import annotations

import asyncio
import json

import pytest
from cluster import zip_bytes
from lambdafleet.control_plane import lifecycle, validation
from lambdafleet.control_plane.placement import WorkerSnapshot, place
from lambdafleet.control_plane.workers import WorkerGone, WorkerRegistry, WorkerSession
from lambdafleet.worker.environment import Environment, EnvironmentStopped, Invocation, Status

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError


def worker(
    wid: str,
    *,
    in_flight: int = 0,
    capacity: int = 4,
    memory: int = 4096,
    busy: int = 0,
    idle: dict[str, int] | None = None,
    arch: str = "x86_64",
    ready: frozenset[str] = frozenset(),
) -> WorkerSnapshot:
    return WorkerSnapshot(
        wid, capacity, memory, in_flight, busy, frozenset({arch}), idle or {}, ready_runtimes=ready
    )


PY = frozenset({"python3.11"})


class TestPlacement:
    def test_warm_environment_wins_over_free_memory(self) -> None:
        workers = [worker("a", memory=8192), worker("b", memory=2048, idle={"k": 1})]
        assert place(workers, "k", 128, "x86_64") == "b"

    def test_most_free_memory_otherwise(self) -> None:
        workers = [worker("a", memory=4096, busy=3000), worker("b", memory=4096, busy=100)]
        assert place(workers, "k", 128, "x86_64") == "b"

    def test_never_beyond_capacity(self) -> None:
        workers = [worker("a", in_flight=4, capacity=4, idle={"k": 1})]
        assert place(workers, "k", 128, "x86_64") is None

    def test_architecture_and_memory_must_fit(self) -> None:
        workers = [worker("arm", arch="arm64"), worker("small", memory=256, busy=200)]
        assert place(workers, "k", 128, "x86_64") is None
        assert place(workers, "k", 128, "arm64") == "arm"

    def test_deterministic_tie_break(self) -> None:
        workers = [worker("a"), worker("b")]
        assert place(workers, "k", 128, "x86_64") == place(
            list(reversed(workers)), "k", 128, "x86_64"
        )

    def test_runtime_goes_to_a_worker_with_its_image_ready(self) -> None:
        # The joining worker has the most free memory, but no image yet.
        workers = [worker("old", busy=3000, ready=PY), worker("new")]
        assert place(workers, "k", 128, "x86_64", runtime="python3.11") == "old"
        # Its readiness for another runtime does not count.
        workers = [worker("old", busy=3000, ready=PY), worker("new", ready=frozenset({"x"}))]
        assert place(workers, "k", 128, "x86_64", runtime="python3.11") == "old"

    def test_worker_without_the_image_is_passed_over_even_when_the_ready_are_full(
        self,
    ) -> None:
        workers = [worker("old", in_flight=4, capacity=4, ready=PY), worker("new")]
        assert place(workers, "k", 128, "x86_64", runtime="python3.11") is None
        workers.append(worker("second", ready=PY))
        assert place(workers, "k", 128, "x86_64", runtime="python3.11") == "second"

    def test_no_worker_ready_then_any_worker_makes_the_image(self) -> None:
        workers = [worker("a", busy=3000), worker("b", ready=frozenset({"nodejs20.x"}))]
        assert place(workers, "k", 128, "x86_64", runtime="python3.11") == "b"

    def test_readiness_on_another_architecture_excludes_nobody(self) -> None:
        workers = [worker("arm", arch="arm64", ready=PY), worker("x86")]
        assert place(workers, "k", 128, "x86_64", runtime="python3.11") == "x86"

    def test_image_function_ignores_runtime_readiness(self) -> None:
        workers = [worker("old", busy=3000, ready=PY), worker("new")]
        assert place(workers, "k", 128, "x86_64", runtime="") == "new"


class TestLifecycle:
    def test_created_then_active(self) -> None:
        c = lifecycle.created(api.FunctionConfiguration(function_name="f"))
        assert (c.state, c.state_reason_code) == ("Pending", "Creating")
        assert not c.HasField("last_update_status")
        a = lifecycle.activated(c)
        assert a.state == "Active" and not a.HasField("state_reason_code")
        assert a.last_update_status == "Successful"
        assert a.revision_id != c.revision_id

    def test_a_runtime_image_being_built_is_the_pending_reason(self) -> None:
        c = lifecycle.created(api.FunctionConfiguration(function_name="f", runtime="python3.13"))
        building = lifecycle.image_in_preparation(c, "w1", "debootstrap trixie started")
        assert building is not None
        assert building.state == "Pending" and building.state_reason_code == "Creating"
        assert building.state_reason.startswith(
            "The runtime image for python3.13 is being built on worker w1"
        )
        assert building.state_reason.endswith(": debootstrap trixie started")
        # Not a change of the caller's: activation still recognises it.
        assert building.revision_id == c.revision_id
        assert lifecycle.image_in_preparation(lifecycle.activated(c), "w1", "late") is None
        assert not lifecycle.activated(building).HasField("state_reason")

    def test_pending_function_is_not_invocable(self) -> None:
        c = lifecycle.created(api.FunctionConfiguration(function_name="f"))
        with pytest.raises(LambdaError, match="following state: Pending"):
            lifecycle.check_invocable(c)
        lifecycle.check_invocable(lifecycle.activated(c))

    def test_update_in_progress_refuses_a_second_update(self) -> None:
        c = lifecycle.activated(lifecycle.created(api.FunctionConfiguration(function_arn="a")))
        u = lifecycle.update_started(c)
        assert u.last_update_status == "InProgress" and u.state == "Active"
        lifecycle.check_invocable(u)
        with pytest.raises(LambdaError, match="An update is in progress for resource: a"):
            lifecycle.check_updatable(u)
        lifecycle.check_updatable(lifecycle.activated(u))

    def test_failed_keeps_reason(self) -> None:
        f = lifecycle.failed(
            lifecycle.created(api.FunctionConfiguration()), "no image", "InternalError"
        )
        assert f.state == "Failed" and f.state_reason == "no image"
        assert f.last_update_status == "Failed"

    def test_timestamp_format(self) -> None:
        import re

        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", lifecycle.now_aws())


class TestCreateValidation:
    def test_good(self) -> None:
        validation.check_zip_function("python3.11", "app.handler")
        validation.check_zip(zip_bytes({"app.py": "x=1"}))

    @pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04garbage"])
    def test_not_zip_bytes(self, data: bytes) -> None:
        with pytest.raises(LambdaError, match="Could not unzip uploaded file"):
            validation.check_zip(data)

    def test_corrupt_member(self) -> None:
        data = bytearray(zip_bytes({"a.py": "x" * 100}))
        data[40] ^= 0xFF
        with pytest.raises(LambdaError, match="Could not unzip"):
            validation.check_zip(bytes(data))

    def test_missing_handler_or_runtime(self) -> None:
        for runtime, handler in (("python3.11", ""), ("", "a.b")):
            with pytest.raises(LambdaError, match="Runtime and Handler are mandatory"):
                validation.check_zip_function(runtime, handler)

    def test_zipped_size_limit(self) -> None:
        with pytest.raises(LambdaError, match="Zipped size must be smaller") as err:
            validation.check_zip(b"0" * (validation.MAX_ZIPPED_BYTES + 1))
        assert err.value.code == "RequestEntityTooLargeException"


def spec() -> apb.FunctionSpec:
    return apb.FunctionSpec(function_arn="arn", function_name="f", version="$LATEST", timeout=3)


class TestEnvironment:
    def test_event_waits_for_the_runtime_then_answers(self) -> None:
        async def run() -> None:
            env = Environment(spec(), "k")
            waiter = env.next()  # runtime polls first
            # Still its starter's, not idle: no other invocation may take it
            # before the starter's is handed over (test_fleet_faults.py).
            assert env.status is Status.STARTING and env.started.done()
            inv = Invocation("id-1", b"{}", 0, "arn", "")
            env.invoke(inv)
            assert (await waiter).request_id == "id-1"
            assert not env.respond("other-id", b"x")
            assert env.respond("id-1", b'"ok"')
            assert (await inv.answer).payload == b'"ok"' and env.status is Status.READY

        asyncio.run(run())

    def test_a_provisioned_environment_is_idle_once_started(self) -> None:
        async def run() -> None:
            env = Environment(spec(), "k")
            env.provisioned = True
            env.next()
            assert env.status is Status.READY and env.started.done()

        asyncio.run(run())

    def test_event_queued_until_next(self) -> None:
        async def run() -> None:
            env = Environment(spec(), "k")
            env.status = Status.READY
            inv = Invocation("id-2", b"{}", 0, "arn", "")
            env.invoke(inv)
            assert (await env.next()).request_id == "id-2"
            env.fail("id-2", json.dumps({"errorMessage": "m", "errorType": "T"}).encode(), "T")
            answer = await inv.answer
            assert answer.function_error == "Unhandled"
            assert json.loads(answer.payload)["errorType"] == "T"

        asyncio.run(run())

    def test_stop_fails_the_invocation_in_flight(self) -> None:
        async def run() -> None:
            env = Environment(spec(), "k")
            env.next()
            inv = Invocation("id-3", b"{}", 0, "arn", "")
            env.invoke(inv)
            env.stop("exit status 1")
            with pytest.raises(EnvironmentStopped, match="exit status 1"):
                await inv.answer

        asyncio.run(run())

    def test_init_error_before_first_poll(self) -> None:
        async def run() -> None:
            env = Environment(spec(), "k")
            env.init_error(b'{"errorMessage": "bad", "errorType": "Runtime.ImportModuleError"}', "")
            with pytest.raises(EnvironmentStopped) as err:
                await env.started
            assert err.value.answer is not None and err.value.answer.function_error == "Unhandled"

        asyncio.run(run())


class TestWorkerRegistry:
    def test_expired_worker_fails_its_invocations(self) -> None:
        async def run() -> None:
            registry = WorkerRegistry(ttl_ms=1000)
            session = WorkerSession(apb.Register(worker_id="w", capacity=2, memory_mb=1024), 1000)
            registry.add(session)
            task = asyncio.create_task(
                session.invoke(apb.InvokeAssignment(invocation_id="i", function=spec()), "k")
            )
            await asyncio.sleep(0)
            assert session.in_flight == 1
            assert registry.expire(now=session.deadline + 1) == [session]
            with pytest.raises(WorkerGone):
                await task
            assert registry.live() == []

        asyncio.run(run())

    def test_prepare_progress_reaches_who_asked(self) -> None:
        async def run() -> None:
            session = WorkerSession(apb.Register(worker_id="w", capacity=2), 1000)
            heard: list[tuple[str, str]] = []
            task = asyncio.create_task(
                session.prepare("python3.13", on_progress=lambda *a: heard.append(a))
            )
            await asyncio.sleep(0)
            sent = session.outbox.get_nowait()
            assert sent is not None
            prepare_id = sent.prepare.prepare_id
            session.on_prepare_progress(apb.PrepareProgress(prepare_id=prepare_id, step="s1"))
            session.on_prepare_progress(apb.PrepareProgress(prepare_id="other", step="x"))
            session.on_prepare_result(apb.PrepareResult(prepare_id=prepare_id, ok=True))
            assert (await task).ok
            assert heard == [("w", "s1")]
            # After the result, nobody is listening any more.
            session.on_prepare_progress(apb.PrepareProgress(prepare_id=prepare_id, step="s2"))
            assert heard == [("w", "s1")]

        asyncio.run(run())

    def test_reconnect_replaces_the_old_session(self) -> None:
        async def run() -> None:
            registry = WorkerRegistry(ttl_ms=1000)
            old = WorkerSession(apb.Register(worker_id="w"), 1000)
            new = WorkerSession(apb.Register(worker_id="w"), 1000)
            registry.add(old)
            registry.add(new)
            assert old.closed and registry.live() == [new]
            registry.remove(old, "late close of the old stream")
            assert registry.live() == [new]

        asyncio.run(run())

    def test_a_heartbeat_sets_what_status_shows_and_what_the_pool_holds(self) -> None:
        async def run() -> None:
            session = WorkerSession(apb.Register(worker_id="w", capacity=4, memory_mb=4096), 1000)
            env = apb.EnvironmentStatus(environment_id="e", function_arn="arn", memory_mb=128)
            session.on_heartbeat(
                apb.Heartbeat(environments=[env], prestarted=2, prestarted_memory_mb=256)
            )
            assert session.environments == [env] and session.prestarted == 2
            # Memory held by pre-started containers is not free for placement.
            assert session.snapshot().free_memory_mb == 4096 - 256
            session.on_heartbeat(apb.Heartbeat())
            assert session.environments == [] and session.snapshot().free_memory_mb == 4096

        asyncio.run(run())

    def test_a_snapshot_is_kept_until_the_session_changes(self) -> None:
        async def run() -> None:
            session = WorkerSession(apb.Register(worker_id="w", capacity=2, memory_mb=1024), 1000)
            first = session.snapshot()
            assert session.snapshot() is first
            task = asyncio.create_task(
                session.invoke(apb.InvokeAssignment(invocation_id="i", function=spec()), "k")
            )
            await asyncio.sleep(0)
            busy = session.snapshot()
            assert busy is not first and busy.in_flight == 1
            session.on_invoke_result(
                apb.InvokeResult(invocation_id="i", status=apb.INVOKE_STATUS_SUCCESS)
            )
            await task
            done = session.snapshot()
            assert done.in_flight == 0 and done.idle == {"k": 1}
            session.on_heartbeat(apb.Heartbeat(prestarted_memory_mb=512))
            assert session.snapshot().free_memory_mb == 1024 - 512
            session.on_provision_report(
                apb.ProvisionReport(
                    environments=[apb.ProvisionedEnvironments(environment_key="p", ready=1)]
                )
            )
            assert session.snapshot().provisioned_idle == {"p": 1}

        asyncio.run(run())
