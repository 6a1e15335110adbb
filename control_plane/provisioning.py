"""Provisioned concurrency, for real: environments started ahead of time.

For every provisioned concurrency config, the reconciler keeps N
environments of the function version it names started on live workers,
and moves the config's status along with what the workers report:
IN_PROGRESS until all N have initialised, then READY; FAILED when the
function's init fails. Each worker is sent its whole set of provisioned
environments (declarative, so a config deleted, a worker reconnecting or a
target moved all come down to sending a new set); a worker that dies loses
its share, which is placed on the others at the next pass.

An alias moved to another version moves its environments make-before-break,
as AWS does (recorded test_lambda_provisioned_concurrency_moves_with_alias:
IN_PROGRESS with the old environments still counted): the old version's
environments stay until the new version's are ready.

The decisions (`assign`, `progress`) are pure; `Provisioner` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb
from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.environments import environment_key
from lambdafleet.errors import LambdaError

from . import lifecycle
from .api.concurrency import FAILED, IN_PROGRESS, READY, set_progress
from .api.kinds import PROVISIONED
from .api.resolve import resolve
from .scheduler import function_spec, hot_reload_folder
from .store import ResourceStore, Scope
from .workers import WorkerRegistry, WorkerSession

log = structlog.get_logger(__name__)

# How often the reconciler looks at the configs and the workers' reports.
INTERVAL_S = 0.25

# Environments per environment key.
Counts = Mapping[str, int]


# --------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    """A live worker, as far as provisioning is concerned."""

    worker_id: str
    # How many environments it may hold at once.
    capacity: int


def assign(
    wanted: Counts, workers: Sequence[Room], current: Mapping[str, Counts]
) -> dict[str, dict[str, int]]:
    """Which worker keeps how many environments of each key.

    Environments already assigned to a live worker stay there (moving a
    started environment would only cost a cold start); a key wanted less is
    trimmed from the worker holding the most of it; what is missing goes,
    one environment at a time, to the worker with the most room left, so
    that a function's environments spread over workers. What fits nowhere
    stays unassigned until room appears.
    """
    live = {w.worker_id: w for w in workers}
    out: dict[str, dict[str, int]] = {w: {} for w in live}
    for worker_id, counts in current.items():
        if worker_id not in live:
            continue  # a dead worker's environments are gone with it
        for key, n in counts.items():
            if wanted.get(key, 0) > 0 and n > 0:
                out[worker_id][key] = n
    for key in sorted(wanted):
        holders = sorted(out, key=lambda w: (-out[w].get(key, 0), w))
        excess = sum(out[w].get(key, 0) for w in out) - wanted[key]
        for worker_id in holders:
            if excess <= 0:
                break
            drop = min(excess, out[worker_id].get(key, 0))
            out[worker_id][key] -= drop
            excess -= drop
            if out[worker_id][key] == 0:
                del out[worker_id][key]
    for key in sorted(wanted):
        missing = wanted[key] - sum(out[w].get(key, 0) for w in out)
        for _ in range(missing):
            roomy = [w for w in out if sum(out[w].values()) < live[w].capacity]
            if not roomy:
                break
            best = max(
                roomy,
                key=lambda w: (
                    live[w].capacity - sum(out[w].values()),
                    -out[w].get(key, 0),
                    w,
                ),
            )
            out[best][key] = out[best].get(key, 0) + 1
    return {w: counts for w, counts in out.items() if counts}


@dataclass(frozen=True)
class Progress:
    status: str
    # Allocated and available: AWS's two counts are equal here.
    available: int
    reason: str = ""


def progress(requested: int, ready: int, error: str, previous_ready: int = 0) -> Progress:
    """A config's status from the ready environments of its version.

    `previous_ready` counts the environments of the version an alias moved
    away from, which still serve until the new ones are ready."""
    if error:
        return Progress(FAILED, 0, error)
    if ready >= requested:
        return Progress(READY, requested)
    return Progress(IN_PROGRESS, min(requested, max(ready, previous_ready)))


# --------------------------------------------------------------------------
# The reconciler (I/O)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scope: Scope
    name: str
    qualifier: str
    config: api.GetProvisionedConcurrencyConfigResponse
    spec: apb.FunctionSpec | None  # None while the version is not Active

    @property
    def key(self) -> str:
        return environment_key(self.spec) if self.spec is not None else ""


class Provisioner:
    def __init__(self, store: ResourceStore, registry: WorkerRegistry) -> None:
        self.store = store
        self.registry = registry
        # Worker id -> environments per key assigned to it.
        self._assigned: dict[str, dict[str, int]] = {}
        # Config -> the spec of its environments last time (to see moves),
        # and the spec of the version it moved away from, while moving.
        self._last: dict[tuple[Scope, str], apb.FunctionSpec] = {}
        self._moving: dict[tuple[Scope, str], apb.FunctionSpec] = {}
        # What each session was last sent (per session object: a worker
        # that reconnects gets its set again).
        self._sent: dict[int, list[apb.ProvisionTarget]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="provisioner")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                self.reconcile()
            except Exception:  # a bad pass must not end provisioning
                log.exception("provisioning.pass_failed")
            await asyncio.sleep(INTERVAL_S)

    def _targets(self) -> list[_Target]:
        out = []
        for scope, rid, config in self.store.everywhere(
            PROVISIONED, api.GetProvisionedConcurrencyConfigResponse
        ):
            name, qualifier = rid.rsplit(":", 1)
            try:
                version = resolve(self.store, scope, name, qualifier).configuration
            except LambdaError:
                continue  # its version or alias is going away with it
            active = not (lifecycle.is_pending(version) or lifecycle.is_updating(version))
            spec = (
                function_spec(scope, version, hot_reload_folder(self.store, scope, version))
                if active
                else None
            )
            out.append(_Target(scope, name, qualifier, config, spec))
        return out

    def reconcile(self) -> None:
        """One pass: assign environments, send changed sets, update statuses."""
        targets = self._targets()
        specs: dict[str, apb.FunctionSpec] = {}
        wanted: dict[str, int] = {}
        seen = set()
        for t in targets:
            ident = (t.scope, f"{t.name}:{t.qualifier}")
            seen.add(ident)
            if t.spec is None:
                continue
            last = self._last.get(ident)
            if last is not None and environment_key(last) != t.key:
                self._moving[ident] = last  # the alias moved: keep the old ones for now
            self._last[ident] = t.spec
            count = t.config.requested_provisioned_concurrent_executions
            specs[t.key] = t.spec
            wanted[t.key] = wanted.get(t.key, 0) + count
            old = self._moving.get(ident)
            if old is not None:
                specs[environment_key(old)] = old
                wanted[environment_key(old)] = wanted.get(environment_key(old), 0) + count
        for ident in set(self._last) - seen:
            self._last.pop(ident, None)
            self._moving.pop(ident, None)

        sessions = self.registry.accepting()
        rooms = [Room(s.worker_id, s.capacity) for s in sessions]
        self._assigned = assign(wanted, rooms, self._assigned)
        for session in sessions:
            self._send(session, self._assigned.get(session.worker_id, {}), specs)
        live_ids = {id(s) for s in sessions}
        for sid in set(self._sent) - live_ids:
            del self._sent[sid]

        ready, errors = self._reports(sessions)
        for t in targets:
            ident = (t.scope, f"{t.name}:{t.qualifier}")
            if t.spec is None:
                continue
            old = self._moving.get(ident)
            previous = ready.get(environment_key(old), 0) if old is not None else 0
            requested = t.config.requested_provisioned_concurrent_executions
            now = progress(requested, ready.get(t.key, 0), errors.get(t.key, ""), previous)
            if now.status != IN_PROGRESS:
                self._moving.pop(ident, None)  # the new version's are ready: drop the old
            if (now.status, now.available, now.reason) != (
                t.config.status,
                t.config.available_provisioned_concurrent_executions,
                t.config.status_reason,
            ):
                set_progress(
                    self.store, t.scope, t.name, t.qualifier, now.status, now.available, now.reason
                )
                log.info(
                    "provisioning.status",
                    function=t.name,
                    qualifier=t.qualifier,
                    status=now.status,
                    available=now.available,
                )

    def _send(
        self, session: WorkerSession, counts: Counts, specs: Mapping[str, apb.FunctionSpec]
    ) -> None:
        targets = [
            apb.ProvisionTarget(function=specs[key], count=n)
            for key, n in sorted(counts.items())
            if key in specs
        ]
        if self._sent.get(id(session)) == targets:
            return
        self._sent[id(session)] = targets
        session.provision(targets)

    @staticmethod
    def _reports(sessions: Sequence[WorkerSession]) -> tuple[dict[str, int], dict[str, str]]:
        """Ready environments and errors per key, over the live workers."""
        ready: dict[str, int] = {}
        errors: dict[str, str] = {}
        for session in sessions:
            for key, report in session.provisioned.items():
                ready[key] = ready.get(key, 0) + report.ready
                if report.error:
                    errors[key] = report.error
        return ready, errors
