"""AgentService: the control plane's end of each worker's session stream."""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import grpc
import structlog

from lambdafleet import batching
from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.agent.v1 import agent_pb2_grpc

from .function_logs import FunctionLogs
from .workers import WorkerRegistry, WorkerSession

log = structlog.get_logger(__name__)

# grpc ships no types: a servicer context is untyped to mypy.
Context: TypeAlias = Any


class AgentService(agent_pb2_grpc.AgentServiceServicer):  # type: ignore[misc]
    def __init__(self, registry: WorkerRegistry, logs: FunctionLogs | None = None) -> None:
        self.registry = registry
        self.logs = logs if logs is not None else FunctionLogs()

    # Reads and writes through the context (two tasks), so it returns nothing
    # instead of being a response generator as the generated stub declares.
    async def Connect(  # type: ignore[override]
        self, request_iterator: Any, context: Context
    ) -> None:
        first = await context.read()
        if first is grpc.aio.EOF or not first.HasField("register"):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "first message must register")
        session = WorkerSession(first.register, self.registry.ttl_ms, ready=False)
        if not await self.registry.admit(session):
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"worker id {session.worker_id!r} is in use by another live worker process",
            )
        await context.write(
            apb.ConnectResponse(
                registered=apb.Registered(heartbeat_ttl_ms=session.heartbeat_ttl_ms())
            )
        )
        reader = asyncio.create_task(self._read(context, session))
        reason = "stream closed"
        try:
            ended = False
            while not ended and (message := await session.outbox.get()) is not None:
                batch, ended = batching.take_batch(
                    session.outbox, message, apb.ConnectResponse.ByteSize
                )
                if len(batch) > 1:
                    message = apb.ConnectResponse(batch=apb.ConnectResponseBatch(messages=batch))
                await context.write(message)
        except (asyncio.CancelledError, grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            reason = f"stream broken: {type(exc).__name__}"
        finally:
            reader.cancel()
            self.registry.remove(session, reason)

    async def _read(self, context: Context, session: WorkerSession) -> None:
        try:
            while True:
                message = await context.read()
                if message is grpc.aio.EOF:
                    break
                if message.WhichOneof("message") == "batch":
                    for item in message.batch.messages:
                        self._dispatch(item, session)
                else:
                    self._dispatch(message, session)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass
        finally:
            # Ending the writer ends the RPC, which removes the session.
            session.close()

    def _dispatch(self, message: apb.ConnectRequest, session: WorkerSession) -> None:
        kind = message.WhichOneof("message")
        if kind == "heartbeat":
            if session.on_heartbeat(message.heartbeat):
                self.registry.runtimes_changed(session)
            # The first one says what it runs: from now on it gets work.
            self.registry.ready(session)
            # Through the outbox: only the writer task may write.
            session.outbox.put_nowait(
                apb.ConnectResponse(
                    heartbeat_ack=apb.HeartbeatAck(heartbeat_ttl_ms=session.heartbeat_ttl_ms())
                )
            )
        elif kind == "invoke_result":
            session.touch()
            if not session.on_invoke_result(message.invoke_result):
                self.registry.unclaimed_result(session, message.invoke_result)
        elif kind == "invoke_chunk":
            session.on_invoke_chunk(message.invoke_chunk)
        elif kind == "prepare_result":
            session.on_prepare_result(message.prepare_result)
        elif kind == "prepare_progress":
            session.on_prepare_progress(message.prepare_progress)
        elif kind == "provision_report":
            session.on_provision_report(message.provision_report)
        elif kind == "drain":
            self.registry.drain(session)
        elif kind == "log_batch":
            self.logs.add(message.log_batch.lines)
            if message.log_batch.dropped:
                self.logs.dropped += message.log_batch.dropped
                log.warning(
                    "logs.dropped_by_worker",
                    worker_id=session.worker_id,
                    dropped=message.log_batch.dropped,
                )
