"""The worker's provisioned environments: started ahead of time, as many as
the control plane's latest ProvisionAssignment says, per function version.

They are ordinary pool environments marked `provisioned`: they start with
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency and run the
function's init before any invocation, serve only invocations holding a
provisioned lease, and are never reaped by the keep-alive. One that dies
after it was ready (crash, timeout reset) is replaced; one whose init
fails is reported and not retried until the assignment changes, as AWS
leaves such a config FAILED.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.environments import environment_key

from .environment import Environment, EnvironmentStopped, Status
from .pool import Pool

log = structlog.get_logger(__name__)

# AWS's StatusReason for a provisioned config whose function fails its init
# (recorded test_provisioned_concurrency_init_failure).
INIT_FAILURE = "FUNCTION_ERROR_INIT_FAILURE"


class Provisioned:
    def __init__(self, pool: Pool, report: Callable[[apb.ProvisionReport], None]) -> None:
        self.pool = pool
        self._report = report
        self.targets: dict[str, apb.ProvisionTarget] = {}
        # Keys whose environments cannot start, with the reason.
        self.failed: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Starts under way per key (their environments count as coming).
        self._pending: Counter[str] = Counter()
        pool.on_discard = self._on_discard

    def mine(self, key: str | None = None) -> list[Environment]:
        """Provisioned environments that have started, of one key or all."""
        return [
            e
            for e in self.pool.environments
            if e.provisioned
            and e.status in (Status.READY, Status.INVOKING)
            and (key is None or e.key == key)
        ]

    def apply(self, assignment: apb.ProvisionAssignment) -> None:
        """Make the environments match the assignment."""
        self.targets = {environment_key(t.function): t for t in assignment.targets}
        self.failed = {k: v for k, v in self.failed.items() if k in self.targets}
        self._converge()

    def _converge(self) -> None:
        for env in self.mine():
            if env.key not in self.targets:
                self._release(env)
        for key, target in self.targets.items():
            have = self.mine(key)
            # Idle ones go first. Starts under way finish, and are released
            # then if still too many.
            have.sort(key=lambda e: e.current is None, reverse=True)
            for env in have[: max(0, len(have) - target.count)]:
                self._release(env)
            if key in self.failed:
                continue
            for _ in range(target.count - len(have) - self._pending[key]):
                self._pending[key] += 1
                task = asyncio.create_task(self._start(target.function))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self.report()

    def _release(self, env: Environment) -> None:
        """No longer provisioned: an idle one stops now; a busy one finishes
        its invocation as an on-demand environment, which the keep-alive
        reaps later."""
        env.provisioned = False
        if env.status is Status.READY and env.current is None:
            task = asyncio.create_task(self.pool.discard(env, "provisioned concurrency removed"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start(self, spec: apb.FunctionSpec) -> None:
        key = environment_key(spec)
        try:
            await self.pool.start(spec, provisioned=True)
        except EnvironmentStopped as exc:
            log.warning("provisioned.init_failed", function=spec.function_name, error=str(exc))
            self.failed[key] = INIT_FAILURE
        except Exception as exc:
            log.warning("provisioned.start_failed", function=spec.function_name, error=repr(exc))
            self.failed[key] = f"Could not start an environment: {exc}"
        finally:
            self._pending[key] -= 1
            if self._pending[key] <= 0:
                del self._pending[key]
        # Started (the runtime ran the function's init and asks for work), or
        # not: either way, converge again (which releases it if unwanted now).
        self._converge()

    def _on_discard(self, env: Environment) -> None:
        # Only one that had been ready is replaced: a start that failed is
        # handled (and not retried) by _start.
        started = env.started
        if env.provisioned and started.done() and not started.cancelled():
            if started.exception() is None:
                asyncio.get_running_loop().call_soon(self._converge)

    def report(self) -> None:
        environments = []
        for key in sorted(self.targets):
            ready = [e for e in self.mine(key) if e.status in (Status.READY, Status.INVOKING)]
            environments.append(
                apb.ProvisionedEnvironments(
                    environment_key=key, ready=len(ready), error=self.failed.get(key, "")
                )
            )
        self._report(apb.ProvisionReport(environments=environments))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
