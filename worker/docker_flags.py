"""LocalStack's settings for function containers, read once at worker start.

LAMBDA_DOCKER_FLAGS: extra `docker run` flags for every function container,
parsed with shlex. Supported (the rest is refused at worker start, so a
typo or an unsupported flag never goes unnoticed):

  -e/--env KEY=VALUE (or KEY: the worker's own value), -v/--volume SRC:DST[:MODE],
  --add-host NAME:IP, --dns IP, --network/--net NAME, -l/--label KEY=VALUE,
  -m/--memory SIZE (replaces MemorySize's limit), --memory-swap SIZE,
  --cpus N, --pids-limit N, --shm-size SIZE, --ulimit NAME=SOFT[:HARD].

--privileged is refused on purpose: a function must not own the worker's
host (and the kernels this runs on refuse it anyway).

LAMBDA_REMOVE_CONTAINERS (default 1): a stopped environment's container is
removed; 0 keeps it, stopped, for debugging. Kept containers keep their
labels, so the worker removes them when it stops or starts again.

Pure: tested directly; containers.py applies the result.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FLAGS_ENV = "LAMBDA_DOCKER_FLAGS"
REMOVE_ENV = "LAMBDA_REMOVE_CONTAINERS"

# Flags that take a value, by every name they go by, mapped to one name.
_VALUED = {
    "-e": "env",
    "--env": "env",
    "-v": "volume",
    "--volume": "volume",
    "--add-host": "add-host",
    "--dns": "dns",
    "--network": "network",
    "--net": "network",
    "-l": "label",
    "--label": "label",
    "-m": "memory",
    "--memory": "memory",
    "--memory-swap": "memory-swap",
    "--cpus": "cpus",
    "--pids-limit": "pids-limit",
    "--shm-size": "shm-size",
    "--ulimit": "ulimit",
}
_REFUSED = {
    "--privileged": "--privileged is not allowed: a function container must not get "
    "every capability and device of the worker's host",
}


class DockerFlagsError(ValueError):
    pass


@dataclass(frozen=True)
class DockerFlags:
    """What LAMBDA_DOCKER_FLAGS adds to a container."""

    environment: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    extra_hosts: dict[str, str] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    network: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # docker-py's create() keyword arguments for the resource limits.
    limits: dict[str, Any] = field(default_factory=dict)

    def create_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of docker-py's containers.create."""
        kwargs: dict[str, Any] = dict(self.limits)
        if self.volumes:
            kwargs["volumes"] = list(self.volumes)
        if self.dns:
            kwargs["dns"] = list(self.dns)
        return kwargs


def _key_value(flag: str, value: str, sep: str = "=") -> tuple[str, str]:
    key, found, rest = value.partition(sep)
    if not key or not found:
        raise DockerFlagsError(f"{FLAGS_ENV}: {flag} expects KEY{sep}VALUE, got {value!r}")
    return key, rest


def parse_flags(raw: str | None, host_env: Mapping[str, str] | None = None) -> DockerFlags:
    """LAMBDA_DOCKER_FLAGS as what it adds; DockerFlagsError names the first
    flag that cannot be honoured."""
    host = os.environ if host_env is None else host_env
    try:
        words = shlex.split(raw or "")
    except ValueError as exc:
        raise DockerFlagsError(f"{FLAGS_ENV}: cannot split {raw!r}: {exc}") from None
    env: dict[str, str] = {}
    volumes: list[str] = []
    hosts: dict[str, str] = {}
    dns: list[str] = []
    labels: dict[str, str] = {}
    limits: dict[str, Any] = {}
    network: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        flag, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if flag in _REFUSED:
            raise DockerFlagsError(f"{FLAGS_ENV}: {_REFUSED[flag]}")
        name = _VALUED.get(flag)
        if name is None:
            raise DockerFlagsError(
                f"{FLAGS_ENV}: {flag!r} is not supported; supported flags: "
                "-e/--env, -v/--volume, --add-host, --dns, --network, -l/--label, "
                "-m/--memory, --memory-swap, --cpus, --pids-limit, --shm-size, --ulimit"
            )
        if eq:
            value = inline
        elif i + 1 < len(words):
            i += 1
            value = words[i]
        else:
            raise DockerFlagsError(f"{FLAGS_ENV}: {flag} needs a value")
        i += 1
        if name == "env":
            if "=" in value:
                key, val = _key_value(flag, value)
                env[key] = val
            elif value in host:  # docker's -e KEY: the value where docker runs
                env[value] = host[value]
        elif name == "volume":
            if ":" not in value:
                raise DockerFlagsError(
                    f"{FLAGS_ENV}: {flag} expects SOURCE:DESTINATION[:MODE], got {value!r}"
                )
            volumes.append(value)
        elif name == "add-host":
            key, val = _key_value(flag, value, ":")
            hosts[key] = val
        elif name == "dns":
            dns.append(value)
        elif name == "network":
            network = value
        elif name == "label":
            key, val = value.partition("=")[::2]
            labels[key] = val
        elif name == "memory":
            limits["mem_limit"] = value
        elif name == "memory-swap":
            limits["memswap_limit"] = value
        elif name == "shm-size":
            limits["shm_size"] = value
        elif name == "cpus":
            try:
                limits["nano_cpus"] = int(float(value) * 1e9)
            except ValueError:
                raise DockerFlagsError(
                    f"{FLAGS_ENV}: --cpus expects a number, got {value!r}"
                ) from None
        elif name == "pids-limit":
            try:
                limits["pids_limit"] = int(value)
            except ValueError:
                raise DockerFlagsError(f"{FLAGS_ENV}: --pids-limit expects an integer") from None
        elif name == "ulimit":
            ulimit, soft_hard = _key_value(flag, value)
            soft, _, hard = soft_hard.partition(":")
            try:
                entry = {"name": ulimit, "soft": int(soft), "hard": int(hard or soft)}
            except ValueError:
                raise DockerFlagsError(
                    f"{FLAGS_ENV}: --ulimit expects NAME=SOFT[:HARD], got {value!r}"
                ) from None
            limits.setdefault("ulimits", []).append(entry)
    return DockerFlags(env, volumes, hosts, dns, network, labels, limits)


def parse_remove(raw: str | None) -> bool:
    """LAMBDA_REMOVE_CONTAINERS: remove a stopped environment's container
    (the default) or keep it stopped."""
    value = (raw or "1").strip().lower()
    if value in ("1", "true", "yes", "on", ""):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise DockerFlagsError(f"{REMOVE_ENV}: expected 1 or 0, got {raw!r}")


def tmp_mount(size_mb: int, uid: str) -> dict[str, str]:
    """/tmp as a tmpfs of EphemeralStorage's size owned by the sandbox user
    (uid:gid): writable by the function, ENOSPC beyond the size. Its pages
    count against the container's memory limit, as tmpfs is memory."""
    user, _, group = uid.partition(":")
    return {"/tmp": f"rw,size={size_mb}m,uid={user},gid={group or user},mode=1777"}


def check_environment(env: Mapping[str, str] | None = None) -> str | None:
    """Why this process's LAMBDA_DOCKER_FLAGS or LAMBDA_REMOVE_CONTAINERS
    cannot be honoured, or None."""
    source = os.environ if env is None else env
    try:
        parse_flags(source.get(FLAGS_ENV), source)
        parse_remove(source.get(REMOVE_ENV))
    except DockerFlagsError as exc:
        return str(exc)
    return None
