"""What keeps a function container away from everything but the worker and
the outside world: the network it joins and the privileges it runs with.

The network. By default function containers join `lambdafleet-functions`,
a bridge network with inter-container communication disabled
(com.docker.network.bridge.enable_icc=false): a container on it reaches the
outside (NAT) and the daemon's host (the worker's Runtime API at the bridge
gateway) but no other container on it, and Docker's isolation rules keep it
from the containers of every other bridge network, the default one included.
One such network per daemon, shared by every worker on it: with no traffic
between its containers a network per worker would isolate no better, and it
would spend the daemon's few address pools (some 30 networks) on workers
that come and go. Workers make it when it is missing and never remove it.
LAMBDA_DOCKER_NETWORK (or --network in LAMBDA_DOCKER_FLAGS) picks a network
of the user's instead, whose own rules then apply.

The privileges. Every capability is dropped and no-new-privileges is set,
so no setuid or file-capability binary (lambdafleet's images have none, an
official AWS image's may) gains anything. A container that starts as root
is a pre-started Python container (worker/prestart.py), whose waiter unpacks
the function's code as root and then becomes the sandbox user: it keeps
SETUID and SETGID (setgroups, setgid, setuid) and nothing else; the code's
files are root's, so it needs neither CHOWN nor DAC_OVERRIDE. After that
switch its process has no capability left. A runtime, its extensions and the
launcher run as the sandbox user, for whom Docker's default capabilities
were never effective: they need none.

Pure, but for `ensure_network`, the one Docker call, kept here beside the
decision of what the network must be.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

FUNCTION_NETWORK = "lambdafleet-functions"
# Marks the network lambdafleet made (and a foreign one of the same name).
LABEL_NETWORK = "lambdafleet.network"
NETWORK_LABELS = {LABEL_NETWORK: "functions"}
ICC_OPTION = "com.docker.network.bridge.enable_icc"
NETWORK_OPTIONS = {ICC_OPTION: "false"}

# What the root waiter of a pre-started container needs to become the
# sandbox user (see the module docstring).
ROOT_CAPABILITIES = ("SETGID", "SETUID")


class NetworkError(RuntimeError):
    pass


def runs_as_root(user: str) -> bool:
    """Whether a container started as `user` (docker's USER[:GROUP]) is root."""
    return user.partition(":")[0] in ("0", "root")


def privileges(user: str) -> dict[str, Any]:
    """docker-py create() arguments that bound a container started as `user`."""
    kwargs: dict[str, Any] = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
    if runs_as_root(user):
        kwargs["cap_add"] = list(ROOT_CAPABILITIES)
    return kwargs


def network_problem(attrs: dict[str, Any]) -> str | None:
    """Why a network found under FUNCTION_NETWORK's name cannot hold
    function containers, or None."""
    labels = attrs.get("Labels") or {}
    if labels.get(LABEL_NETWORK) != NETWORK_LABELS[LABEL_NETWORK]:
        return (
            f"Docker network {FUNCTION_NETWORK!r} exists but lambdafleet did not make it "
            f"(no label {LABEL_NETWORK}=functions): remove it, or name a network of "
            "your own in LAMBDA_DOCKER_NETWORK"
        )
    options = attrs.get("Options") or {}
    if attrs.get("Driver") != "bridge" or options.get(ICC_OPTION) != "false":
        return (
            f"Docker network {FUNCTION_NETWORK!r} lets its containers reach each other "
            f"(driver {attrs.get('Driver')!r}, {ICC_OPTION}={options.get(ICC_OPTION)!r}): "
            "remove it (`docker network rm lambdafleet-functions`) and start again"
        )
    return None


def pick_network(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The one of the networks named FUNCTION_NETWORK that every worker
    picks: two workers starting at once may each have made one (the
    daemon's duplicate check is best-effort), and all must use the same."""
    named = [n for n in found if n.get("Name") == FUNCTION_NETWORK]
    if not named:
        return None
    return min(named, key=lambda n: (str(n.get("Created", "")), str(n.get("Id", ""))))


def ensure_network(client: docker.DockerClient) -> str:
    """The id of the daemon's function network, made when missing. Blocking."""
    for _ in range(3):
        # The name filter matches substrings: pick_network keeps exact names.
        chosen = pick_network(client.api.networks(names=[FUNCTION_NETWORK]))
        if chosen is not None:
            problem = network_problem(chosen)
            if problem is not None:
                raise NetworkError(problem)
            return str(chosen["Id"])
        try:
            client.api.create_network(
                FUNCTION_NETWORK,
                driver="bridge",
                options=NETWORK_OPTIONS,
                labels=NETWORK_LABELS,
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another worker made it just now
                raise
        # Listed again rather than taken from the answer: every worker then
        # picks the same one, should the daemon have made two.
    raise NetworkError(f"could not make or find Docker network {FUNCTION_NETWORK!r}")
