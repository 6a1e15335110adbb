"""Fencing: nothing a worker started may run on once the worker is gone.

Three rules, each kept here as a pure decision with the facts it needs
passed in:

- A worker that has not heard from its control plane for longer than its
  heartbeat TTL has been declared dead there, and the callers of its
  invocations were answered with an error: it stops what still runs for
  them (`lost_control_plane`).
- A container belongs to one worker process, named in its owner label
  (`owner_marker`): the host's boot, the process's PID namespace, its pid
  and start time, and the worker's instance id. A worker starting on the
  same daemon removes what a process that is provably gone left there,
  whatever its worker id was (`is_leftover`). What it cannot judge (a
  process on another host or in another PID namespace, which may be
  alive) it leaves, unless the worker id is its own: the control plane
  lets only one live process hold an id.
- A process killed outright runs nothing: that half lives in the
  containers (worker/launcher.py, the stdin fence), which end when the
  worker's attach connection to their stdin does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass

# The worker instances alive in this process: workers of one process (tests,
# `lambdafleet up --workers N`) share its pid, so the pid alone cannot tell
# an aborted one from a live one.
LIVE_INSTANCES: set[str] = set()


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process on which kernel: a pid is unique only within its PID
    namespace and boot, and is reused, so the start time comes with it."""

    boot_id: str
    pid_namespace: str
    pid: int
    start_time: int


@dataclass(frozen=True)
class Owner:
    process: ProcessIdentity
    instance_id: str


def owner_marker(owner: Owner) -> str:
    p = owner.process
    return f"{p.boot_id}/{p.pid_namespace}/{p.pid}/{p.start_time}/{owner.instance_id}"


def parse_marker(marker: str) -> Owner | None:
    parts = marker.split("/")
    if len(parts) != 5:
        return None
    boot_id, namespace, pid, start_time, instance_id = parts
    try:
        identity = ProcessIdentity(boot_id, namespace, int(pid), int(start_time))
    except ValueError:
        return None
    return Owner(identity, instance_id)


def owner_alive(
    owner: Owner,
    here: ProcessIdentity,
    start_time_of: Callable[[int], int | None],
    live_instances: Collection[str],
) -> bool | None:
    """Whether the owning worker lives: True, False, or None when this
    process cannot tell (another boot, host or PID namespace)."""
    there = owner.process
    if (there.boot_id, there.pid_namespace) != (here.boot_id, here.pid_namespace):
        return None
    if there.pid == here.pid and there.start_time == here.start_time:
        # This very process: the worker lives while its instance does.
        return owner.instance_id in live_instances
    return start_time_of(there.pid) == there.start_time


def is_leftover(
    labels: dict[str, str],
    *,
    worker_label: str,
    owner_label: str,
    worker_id: str,
    here: ProcessIdentity | None,
    start_time_of: Callable[[int], int | None],
    live_instances: Collection[str],
) -> bool:
    """Whether a worker starting as `worker_id` removes the container with
    `labels`: its own id's (a previous run of the id, refused to anyone
    while it lives), or a provably dead process's."""
    if labels.get(worker_label) == worker_id:
        return True
    owner = parse_marker(labels.get(owner_label, ""))
    if owner is None or here is None:
        return False
    return owner_alive(owner, here, start_time_of, live_instances) is False


def lost_control_plane(heard_at: float | None, ttl_s: float | None, now: float) -> bool:
    """Whether the control plane has declared this worker dead: nothing
    heard from it for longer than the heartbeat TTL it set."""
    if heard_at is None or ttl_s is None:
        return False
    return now - heard_at > ttl_s


# -- this process, as the kernel knows it (Linux; elsewhere: None) -----------


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when
    there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def current_process() -> ProcessIdentity | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot_id = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    pid = os.getpid()
    start_time = process_start_time(pid)
    if start_time is None:
        return None
    # `pid:[4026531836]` -> the namespace's inode.
    return ProcessIdentity(boot_id, namespace.strip("pid:[]"), pid, start_time)
