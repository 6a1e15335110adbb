#!/usr/bin/env bash
# A worker beside its own Docker daemon, in one container: start dockerd, wait
# until it answers, then run `lambdafleet worker` against it. The arguments are
# the worker's flags (its configuration comes from LAMBDAFLEET_* variables).
#
# One daemon per container is what lets `docker-compose up --scale worker=N`
# give every worker a daemon of its own. Function containers on that daemon
# reach the worker at the gateway of the daemon's bridge, which is this
# container's own network namespace: the worker's default advertise address.
#
# The container needs Docker-in-Docker's rights (see compose.yaml): all
# capabilities but SYS_MODULE and SYS_RESOURCE, no seccomp or AppArmor
# profile, /sys/fs/cgroup read-write, and /var/lib/docker on a tmpfs (compose.yaml)
# or a volume.
set -euo pipefail

say() { echo "worker-entrypoint: $*" >&2; }

# The daemon's containers get their cgroups in the host's /sys/fs/cgroup
# (mounted in), where the worker also reads their peak memory. DOCKERD_ARGS
# adds flags, e.g. --bip for another bridge subnet.
DOCKERD_LOG=/var/log/dockerd.log
# This script is the container's first process: no daemon of an earlier run
# of this container is alive, but a killed one (the container restarted after
# a crash) leaves its pid files in the container's own layer. dockerd refuses
# to start over a pid file whose pid is taken again, which in a fresh PID
# namespace is likely (it numbers from 1 again).
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
say "starting dockerd (log: $DOCKERD_LOG)"
dockerd --host=unix:///var/run/docker.sock ${DOCKERD_ARGS:-} >"$DOCKERD_LOG" 2>&1 &
dockerd_pid=$!

stop_dockerd() {
    if kill -0 "$dockerd_pid" 2>/dev/null; then
        kill -TERM "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
    fi
}

# Answering takes 7-17 s on a cold start.
for second in $(seq 1 90); do
    if docker version >/dev/null 2>&1; then
        say "dockerd answers after ${second} s ($(docker version --format '{{.Server.Version}}'))"
        break
    fi
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
        say "dockerd exited; the end of its log:"
        tail -30 "$DOCKERD_LOG" >&2
        exit 1
    fi
    sleep 1
done
if ! docker version >/dev/null 2>&1; then
    say "dockerd did not answer within 90 s; the end of its log:"
    tail -30 "$DOCKERD_LOG" >&2
    stop_dockerd
    exit 1
fi

# pip inside a container may not reach the package index (TLS intercepted):
# with a wheelhouse in the image, the worker's own `pip download` of the
# runtime interface client and boto3 (for the python runtime images it
# builds) finds the wheels there instead.
if ls /wheels/runtime/*.whl >/dev/null 2>&1; then
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels/runtime
fi

# One daemon per container, its storage a tmpfs: the daemon's ID (part of a
# worker's default id) is new after every restart of the container, while the
# container's host name stays. So the host name is the id here, and a worker
# restarted in its container registers again under the id it had.
export LAMBDAFLEET_WORKER_ID="${LAMBDAFLEET_WORKER_ID:-$(hostname)}"

# The worker stays a child so that on SIGTERM it removes its containers while
# the daemon still runs; the daemon stops after it.
lambdafleet worker "$@" &
worker_pid=$!
trap 'kill -TERM "$worker_pid" 2>/dev/null || true' TERM INT
status=0
wait "$worker_pid" || status=$?
# `wait` returns early when a trapped signal arrives: wait for the real exit.
while kill -0 "$worker_pid" 2>/dev/null; do
    wait "$worker_pid" || status=$?
done
say "worker exited with status $status; stopping dockerd"
stop_dockerd
exit "$status"
