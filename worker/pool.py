"""The environments of one worker: reuse a warm one of the same function
version, otherwise start a container; one invocation per environment at a
time; idle environments stop after the keep-alive."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.environments import environment_key

from . import invocation_log
from . import launch as launching
from .backends import Images, Sandboxes
from .code_cache import CodeCache
from .containers import LABEL_ENVIRONMENT, LABEL_FUNCTION, LABEL_VERSION
from .environment import Answer, Environment, EnvironmentStopped, Invocation, Status
from .environment_log import Outcome
from .hot_reload import HotReload
from .image_recipes import execution_env
from .prestart import Prestart, Prestarted, bucket_for
from .runtime_auth import authenticate

log = structlog.get_logger(__name__)

# A caller who asked for the log's tail is answered once the runtime's output
# has been quiet this long after its answer (Docker delivers output on its own
# path, often a moment after the answer), and in any case after LOG_SETTLE_MAX_S.
# On a loaded machine the thread reading a container's output may wait its
# turn for the interpreter: 50 ms of quiet covers that (LAMBDAFLEET_LOG_QUIET_MS).
LOG_QUIET_S = 0.05
LOG_SETTLE_MAX_S = 0.5
# How long extensions may take over SHUTDOWN before the container goes
# (Lambda gives 500 ms to 2 s, depending on the extensions registered).
SHUTDOWN_GRACE_S = 2.0


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def exit_reason(exit_code: int) -> str:
    """How AWS words a runtime's exit, whether before its first poll or
    mid-invocation (recorded: test_lambda_runtime_wrapper_not_found,
    test_lambda_runtime_exit, test_lambda_handler_exit)."""
    if exit_code == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: exit status {exit_code}"


def exit_error(request_id: str, reason: str) -> bytes:
    """The invocation's error document when its environment ended under it."""
    if not reason.startswith("Runtime exited"):
        reason = f"Runtime exited with error: {reason}"
    return _error("Runtime.ExitError", f"RequestId: {request_id} Error: {reason}")


class Pool:
    def __init__(
        self,
        *,
        containers: Sandboxes,
        images: Images,
        code: CodeCache,
        runtime_api_host: str,
        runtime_api_port: int,
        capacity: int,
        keepalive_s: float,
        startup_timeout_s: float,
        max_concurrent_starts: int = 4,
    ) -> None:
        self.containers = containers
        self.images = images
        self.code = code
        self.runtime_api_host = runtime_api_host
        self.runtime_api_port = runtime_api_port
        self.capacity = capacity
        self.keepalive_s = keepalive_s
        self.startup_timeout_s = startup_timeout_s
        # By route (worker/runtime_auth.py): a digest of the environment's
        # Runtime API credential.
        self.by_host: dict[str, Environment] = {}
        self.by_container: dict[str, Environment] = {}
        # Environments started but not yet holding a container id.
        self._starting = 0
        # Told of every environment stopped (the provisioned ones are
        # replaced: worker/provisioned.py).
        self.on_discard: Callable[[Environment], None] | None = None
        # A burst of cold invocations creates at most this many containers
        # at once; the rest wait their turn in arrival order (asyncio's
        # semaphore is FIFO), so a burst neither hangs the daemon nor starves.
        self._start_slots = asyncio.Semaphore(max(1, max_concurrent_starts))
        # Pre-started containers that matching cold starts take (set by the agent).
        self.prestart: Prestart | None = None
        # Told when an environment starts or stops (the agent then sends a
        # heartbeat, so the control plane's view of this worker is current).
        self.on_change: Callable[[], None] = lambda: None
        # Where environments' log lines go (the agent's log shipper), and
        # LAMBDA_TRUNCATE_STDOUT.
        self.emit_log: Callable[[apb.LogLine], None] = lambda line: None
        self.truncate_at = invocation_log.DEFAULT_TRUNCATE
        self.log_quiet_s = LOG_QUIET_S
        self.log_settle_max_s = LOG_SETTLE_MAX_S
        # END/REPORT written once an invocation's output has gone quiet.
        self._closing: set[asyncio.Task[None]] = set()
        # Folders of hot-reloading functions (worker/hot_reload.py).
        self.hot_reload = HotReload.from_env(self._folder_changed)
        self._restarts: set[asyncio.Task[None]] = set()
        # Retired environments being stopped once their invocation ended.
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def start_slots(self) -> asyncio.Semaphore:
        return self._start_slots

    def room(self) -> int:
        """Environments that could still start before the capacity is reached."""
        pooled = len(self.prestart.idle) if self.prestart is not None else 0
        return max(0, self.capacity - len(self.by_host) - self._starting - pooled)

    def lookup(self, host_header: str) -> Environment | None:
        """The environment whose credential a Runtime API request presents."""
        return authenticate(host_header, self.by_host, lambda env: env.credential)

    @property
    def environments(self) -> list[Environment]:
        return list(self.by_host.values())

    # -- invocation -----------------------------------------------------------

    async def invoke(
        self,
        assignment: apb.InvokeAssignment,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> apb.InvokeResult:
        """Run one invocation; `on_chunk` gets a streamed response's chunks
        as the runtime writes them (the result's payload is then only what
        was not streamed)."""
        spec = assignment.function
        result = apb.InvokeResult(invocation_id=assignment.invocation_id)
        env = self._take_idle(environment_key(spec), assignment.provisioned)
        if env is None:
            # One restarting its runtime (hot reload, or after a timeout)
            # serves sooner than a new one, and keeps its /tmp.
            env = await self._take_reloaded(environment_key(spec), assignment.provisioned)
        if env is None:
            try:
                env = await self._start(spec)
            except EnvironmentStopped as exc:
                # The runtime died or failed to initialise: AWS answers such
                # an invocation as a function error.
                answer = exc.answer or Answer(
                    exit_error(assignment.request_id or assignment.invocation_id, str(exc)),
                    "Unhandled",
                )
                result.status = apb.INVOKE_STATUS_FUNCTION_ERROR
                result.payload = answer.payload
                result.function_error = answer.function_error
                result.cold_start = True
                return result
            except Exception as exc:
                log.warning("environment.start_failed", error=repr(exc))
                result.status = apb.INVOKE_STATUS_SERVICE_ERROR
                result.error_message = f"Could not start an environment: {exc}"
                return result
        result.cold_start = env.cold
        env.cold = False
        invocation = Invocation(
            # The AWS request id: what the caller's answer carries, and the
            # same on every retry of an asynchronous event. The invocation id
            # stays unique per attempt for correlating results.
            request_id=assignment.request_id or assignment.invocation_id,
            payload=assignment.payload,
            # The timeout runs from the hand-off to the runtime, not from when
            # the request arrived: AWS does not count init against it.
            deadline_unix_ms=int((time.time() + spec.timeout) * 1000),
            # Sent by the control plane; an older one sent only the spec.
            invoked_function_arn=assignment.invoked_function_arn or spec.function_arn,
            client_context=assignment.client_context,
            on_chunk=on_chunk,
        )
        request_id = invocation.request_id
        env.log.begin(request_id, env.init_ms if result.cold_start else None)
        env.invoke(invocation)
        handed = invocation.handed_at
        try:
            answer = await asyncio.wait_for(asyncio.shield(invocation.answer), spec.timeout)
        except TimeoutError:
            # Its outcome is written before any await: the environment is
            # reset below and may serve the next invocation, whose START
            # closes this log.
            env.log.answered(request_id, Outcome(_since_ms(handed), "timeout"))
            answer = Answer(
                _error(
                    "Sandbox.Timedout",
                    f"RequestId: {invocation.request_id} Error: Task timed out after "
                    f"{spec.timeout:.2f} seconds",
                ),
                "Unhandled",
            )
            env.log.note(
                f"{datetime.now(UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')}"
                f" {request_id} Task timed out after {spec.timeout:.2f} seconds"
            )
            await self._read_memory(env)
            await self._reset_after_timeout(env, invocation)
        except EnvironmentStopped as exc:
            answer = exc.answer or Answer(exit_error(invocation.request_id, str(exc)), "Unhandled")
            env.log.answered(request_id, Outcome(_since_ms(handed), "error", "Runtime.ExitError"))
            await self.discard(env, str(exc))
        if answer.reset:
            await self.discard(env, "its runtime was refused its answer")
        ran_s = time.monotonic() - handed
        result.runtime_us = int(ran_s * 1e6)
        if result.cold_start and env.init_ms:
            result.init_us = int(env.init_ms * 1000)
        # (An answer's outcome was written by the environment as it came in.)
        if assignment.log_tail:
            # Only this caller waits for the output to arrive (and for the
            # extensions, whose output is the invocation's too).
            await self._until_finished(env, invocation)
            await self._settle(env)
            await self._read_memory(env)
            result.log_tail = env.log.tail(request_id)
            self._stop_if_retired(env)
        else:
            self._close_later(env, invocation)
        result.payload = answer.payload
        if answer.function_error:
            result.status = apb.INVOKE_STATUS_FUNCTION_ERROR
            result.function_error = answer.function_error
        else:
            result.status = apb.INVOKE_STATUS_SUCCESS
        return result

    # -- logs -------------------------------------------------------------------

    def on_container_output(self, container_id: str, stream: str, chunk: bytes, at: float) -> None:
        """Output of a container: its environment's, once it has one (a
        pre-started container's counts from its bind)."""
        env = self.by_container.get(container_id)
        if env is not None:
            env.log.output(stream, chunk, at)

    async def _settle(self, env: Environment) -> None:
        """Wait until the environment's output has been quiet for
        log_quiet_s since the answer, at most log_settle_max_s."""
        answered = time.monotonic()
        deadline = answered + self.log_settle_max_s
        while True:
            now = time.monotonic()
            wait = max(env.log.last_output, answered) + self.log_quiet_s - now
            if wait <= 0 or now >= deadline:
                return
            await asyncio.sleep(min(wait, deadline - now))

    async def _read_memory(self, env: Environment) -> None:
        if not env.container_id:
            return
        try:
            peak = await self.containers.peak_memory_mb(env.container_id)
        except Exception as exc:
            log.debug("environment.memory_unread", environment=env.id, error=repr(exc))
            return
        if peak is not None:
            env.log.peak_mb = max(peak, env.log.peak_mb or 0)

    async def _until_finished(self, env: Environment, invocation: Invocation) -> None:
        """Until the extensions are done with the invocation too; those
        still busy at its deadline time it out, as on Lambda."""
        if invocation.finished.done():
            return
        left = invocation.deadline_unix_ms / 1000 - time.time()
        try:
            await asyncio.wait_for(asyncio.shield(invocation.finished), max(left, 0.0))
        except TimeoutError:
            await self.discard(env, "extensions timed out", shutdown_reason="timeout")

    def _close_later(self, env: Environment, invocation: Invocation) -> None:
        """END and REPORT once the invocation ended and the output is in,
        off the invocation's path (or sooner, if the next invocation begins
        first)."""
        request_id = invocation.request_id

        async def close() -> None:
            await self._until_finished(env, invocation)
            await self._settle(env)
            if env.log.open_request_id == request_id:
                await self._read_memory(env)
                env.log.close(request_id)
            self._stop_if_retired(env)

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _take_idle(self, key: str, provisioned: bool = False) -> Environment | None:
        """An idle environment of `key`: for an invocation holding a
        provisioned lease a provisioned one first; provisioned environments
        serve no other invocation (their count is the lease pool's)."""
        best: Environment | None = None
        for env in self.by_host.values():
            if env.key == key and _idle(env) and not env.retired:
                if env.provisioned and not provisioned:
                    continue
                rank = (env.provisioned, env.last_used)
                if best is None or rank > (best.provisioned, best.last_used):
                    best = env
        if best is not None:
            # Claimed now, before any await, so no one else takes it.
            best.status = Status.INVOKING
        return best

    async def _make_room(self) -> None:
        """Stop the least recently used idle environment when full."""
        while len(self.by_host) + self._starting >= self.capacity:
            idle = [
                e
                for e in self.by_host.values()
                if e.status is Status.READY and e.current is None and not e.provisioned
            ]
            if not idle:
                return  # the control plane never places beyond capacity
            await self.discard(
                min(idle, key=lambda e: e.last_used), "evicted for capacity", "spindown"
            )

    async def start(self, spec: apb.FunctionSpec, provisioned: bool) -> Environment:
        """Start an environment ahead of any invocation (provisioned
        concurrency): it is up and its init has run when this returns."""
        return await self._start(spec, provisioned)

    async def _start(self, spec: apb.FunctionSpec, provisioned: bool = False) -> Environment:
        await self._make_room()
        self._starting += 1
        try:
            launch = await launching.gather(self.images, self.code, spec)
        except BaseException:
            self._starting -= 1
            raise
        image = launch.image
        pre: Prestarted | None = None
        if self.prestart is not None and not launch.user_image and not spec.hot_reload_path:
            # (A mount can only be made at creation: no pre-started container.)
            bucket = bucket_for(spec, image)
            pre = self.prestart.take(bucket)
            if not provisioned:
                # A cold start of this bucket: the pool learns what is popular.
                self.prestart.cold_start(bucket)
        env = Environment(
            spec,
            environment_key(spec),
            pre.id if pre is not None else "",
            pre.credential if pre is not None else None,
        )
        env.log.emit = self.emit_log
        env.log.truncate_at = self.truncate_at
        env.provisioned = provisioned
        # Its init runs before any invocation: none of them is a cold start.
        env.cold = not provisioned
        self.by_host[env.route] = env
        if spec.hot_reload_path:
            self.hot_reload.watch(spec.hot_reload_path)
        started = time.monotonic()
        try:
            # Init Duration counts from here: container creation (not the
            # wait for a start slot) or a pre-started container's bind.
            init_from = time.monotonic()
            if pre is not None:
                await self._bind(env, pre, launch)
            else:
                async with self._start_slots:
                    init_from = time.monotonic()
                    env.container_id = await self.containers.create_and_start(
                        image=image,
                        command=launch.command,
                        entrypoint=launch.entrypoint,
                        working_dir=launch.working_dir,
                        tmp_mb=launch.tmp_mb,
                        opt_tar=launch.opt_tar,
                        name=_container_name(self.containers.worker_id, spec.function_name, env.id),
                        environment=self._environment(spec, env),
                        labels={
                            LABEL_FUNCTION: spec.function_arn,
                            LABEL_VERSION: spec.version,
                            LABEL_ENVIRONMENT: env.id,
                        },
                        extra_hosts={env.hostname: self.runtime_api_host},
                        memory_mb=spec.memory_size,
                        code_tar=launch.code_tar,
                        read_only_mounts=(
                            {spec.hot_reload_path: "/var/task"} if spec.hot_reload_path else None
                        ),
                    )
                self.by_container[env.container_id] = env
                self.containers.follow_output(env.container_id)
            await asyncio.wait_for(asyncio.shield(env.started), self.startup_timeout_s)
            env.init_ms = (time.monotonic() - init_from) * 1000
        except BaseException as exc:
            await self.discard(env, f"start failed: {exc!r}")
            if isinstance(exc, TimeoutError):
                raise RuntimeError(
                    f"the runtime did not start within {self.startup_timeout_s:.0f} s"
                ) from exc
            raise
        finally:
            self._starting -= 1
        self.on_change()
        log.info(
            "environment.started",
            environment=env.id,
            function=spec.function_name,
            prestarted=pre is not None,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return env

    async def _bind(self, env: Environment, pre: Prestarted, launch: launching.Launch) -> None:
        """Make a pre-started container this environment: the code lands in
        /var/task and the layers in /opt first (unpacked by the waiting
        process itself where it can, else copied in by Docker), then the
        waiting process gets the variables and execs the runtime
        (worker/prestart.py)."""
        env.container_id = pre.container_id
        # Registered before any await, so an exit of the container is the
        # environment's from now on, and discard removes it.
        self.by_container[env.container_id] = env
        self.containers.follow_output(env.container_id)
        archives = [("/var/task", launch.code_tar)]
        if launch.opt_tar:
            archives.append(("/opt", launch.opt_tar))
        if not pre.unpacks:
            for path, tar in archives:
                await self.containers.put_archive(pre.container_id, path, tar)
            archives = []
        pre.bind(env.spec.handler, self._environment(env.spec, env), archives)
        # Labels cannot change, but the name can: `docker ps` then names the
        # function as for any other environment (the status API says which
        # function each container runs). While the runtime starts, not before.
        name = _container_name(self.containers.worker_id, env.spec.function_name, env.id)
        try:
            await self.containers.rename(pre.container_id, name)
        except Exception as exc:
            log.warning("environment.rename_failed", environment=env.id, error=repr(exc))

    def _environment(self, spec: apb.FunctionSpec, env: Environment) -> dict[str, str]:
        variables = dict(spec.environment)
        # Reserved variables win over the function's own, as on AWS.
        variables.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"{env.hostname}:{self.runtime_api_port}",
                # An image function's comes from its CMD (lambda-entrypoint.sh).
                "_HANDLER": spec.handler or (list(spec.image_config.command) or [""])[0],
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_INITIALIZATION_TYPE": (
                    "provisioned-concurrency" if env.provisioned else "on-demand"
                ),
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": env.log.log_stream,
                "LAMBDA_TASK_ROOT": "/var/task",
                "LAMBDA_RUNTIME_DIR": "/var/runtime",
                "TZ": ":UTC",
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_SESSION_TOKEN": "test",
            }
        )
        runtime_env = execution_env(spec.runtime)
        if runtime_env is not None:
            variables["AWS_EXECUTION_ENV"] = runtime_env
        else:
            # AWS sets none for OS-only runtimes: not even the function may.
            variables.pop("AWS_EXECUTION_ENV", None)
        return variables

    # -- lifecycle ---------------------------------------------------------------

    async def discard(self, env: Environment, reason: str, shutdown_reason: str = "") -> None:
        """Stop `env` and remove its container; with a shutdown_reason
        (spindown, timeout) its extensions first get SHUTDOWN."""
        if shutdown_reason and env.status is not Status.STOPPED:
            await env.shut_down(shutdown_reason, SHUTDOWN_GRACE_S)
        env.stop(reason)
        if env.spec.hot_reload_path and env.route in self.by_host:
            self.hot_reload.unwatch(env.spec.hot_reload_path)
        self.by_host.pop(env.route, None)
        if env.container_id:
            self.by_container.pop(env.container_id, None)
            try:
                await self.containers.remove(env.container_id)
            except Exception as exc:
                log.warning("environment.remove_failed", environment=env.id, error=repr(exc))
        log.info("environment.stopped", environment=env.id, reason=reason)
        self.on_change()
        if self.on_discard is not None:
            self.on_discard(env)

    def on_container_exit(self, container_id: str, exit_code: int) -> None:
        env = self.by_container.get(container_id)
        if env is None and self.prestart is not None:
            self.prestart.on_exit(container_id)
        if env is None or env.status is Status.STOPPED:
            return
        asyncio.get_running_loop().create_task(self.discard(env, exit_reason(exit_code)))

    async def reap_idle(self) -> None:
        now = time.monotonic()
        for env in list(self.by_host.values()):
            if not _idle(env):
                continue
            if env.retired:
                await self.discard(env, "retired", "spindown")
            elif not env.provisioned and now - env.last_used > self.keepalive_s:
                # (A provisioned one is kept until its config goes.)
                await self.discard(env, "keep-alive expired", "spindown")

    # -- retirement --------------------------------------------------------------

    async def retire(self, retirement: apb.RetireEnvironments) -> int:
        """The control plane will place nothing more on these environments
        (their function was deleted or updated): they take no more work,
        the idle ones stop now, the busy ones once their invocation ends,
        instead of holding their memory until the keep-alive. How many
        environments it retired."""
        retired = [env for env in self.by_host.values() if retires(retirement, env)]
        for env in retired:
            env.retired = True
        log.info(
            "environments.retired",
            function=retirement.function_arn,
            version=retirement.version or "*",
            count=len(retired),
        )
        await asyncio.gather(
            *(self.discard(env, "retired", "spindown") for env in retired if _idle(env)),
            return_exceptions=True,
        )
        return len(retired)

    def _stop_if_retired(self, env: Environment) -> None:
        """A retired environment whose invocation ended goes (off the
        caller's path); one still busy is left to the reaper."""
        if not (env.retired and _idle(env)):
            return
        task = asyncio.get_running_loop().create_task(self.discard(env, "retired", "spindown"))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def flush_logs(self) -> None:
        """Let every pending END/REPORT be written (draining), and the
        retired environments those invocations ran in stop."""
        await asyncio.gather(*self._closing, return_exceptions=True)
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self.hot_reload.close()
        for task in [*self._restarts, *self._retiring]:
            task.cancel()
        # Extensions hear SHUTDOWN while the containers still run.
        await asyncio.gather(
            *(env.shut_down("spindown", SHUTDOWN_GRACE_S) for env in self.by_host.values()),
            return_exceptions=True,
        )
        for env in list(self.by_host.values()):
            # What is still open is written as it stands.
            env.log.close(env.log.open_request_id)
            env.stop("worker stopping")
        self.by_host.clear()
        self.by_container.clear()

    # -- hot reloading -------------------------------------------------------------

    def _folder_changed(self, path: str) -> None:
        for env in list(self.by_host.values()):
            if env.spec.hot_reload_path == path:
                task = asyncio.get_running_loop().create_task(self._restart_runtime(env))
                self._restarts.add(task)
                task.add_done_callback(self._restarts.discard)

    async def _take_reloaded(self, key: str, provisioned: bool) -> Environment | None:
        """An environment of `key` whose runtime is restarting serves once
        its new runtime is up (a fraction of a cold start): wait for it."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline and any(
            e.key == key and e.reloading and e.status is not Status.STOPPED
            for e in self.by_host.values()
        ):
            await asyncio.sleep(0.02)
            env = self._take_idle(key, provisioned)
            if env is not None:
                return env
        return None

    async def _reset_after_timeout(self, env: Environment, invocation: Invocation) -> None:
        """After a timeout AWS runs init again in the same environment: the
        runtime process restarts, /tmp stays (recorded:
        test_lambda_invoke_timed_out_environment_reuse). Where the runtime
        cannot be restarted in place (a user image with its own entrypoint,
        or a backend without our launcher) the environment is replaced."""
        if not self.containers.restarts_runtimes or env.spec.package_type == "Image":
            await self.discard(env, "timed out")
            return
        env.abandon(invocation)
        await self._restart_runtime(env)

    async def _restart_runtime(self, env: Environment) -> None:
        """Restart the runtime process, not the container (warm /tmp stays),
        once the environment is idle: the launcher restarts it on SIGHUP."""
        while not env.restart_runtime():
            if env.status is Status.STOPPED:
                return
            await asyncio.sleep(0.05)
        try:
            await self.containers.signal(env.container_id, "SIGHUP")
            log.info("environment.runtime_restarted", environment=env.id)
        except Exception as exc:
            log.warning("environment.restart_failed", environment=env.id, error=repr(exc))
            await self.discard(env, f"runtime restart failed: {exc!r}")


def retires(retirement: apb.RetireEnvironments, env: Environment) -> bool:
    """Whether `retirement` names `env`: of its function (and version, if
    one is named) but not of the key kept. Provisioned environments follow
    their ProvisionAssignment instead."""
    spec = env.spec
    return (
        not env.provisioned
        and env.status is not Status.STOPPED
        and spec.function_arn == retirement.function_arn
        and (not retirement.version or spec.version == retirement.version)
        and env.key != retirement.keep_key
    )


def _idle(env: Environment) -> bool:
    return env.status is Status.READY and env.current is None


def _since_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _container_name(worker_id: str, function_name: str, env_id: str) -> str:
    raw = f"lambdafleet-{worker_id}-{function_name[:40]}-{env_id[:8]}"
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)
