"""What keeps function containers apart, decided without Docker: the
privileges a container gets and which network the worker puts them on."""

from __future__ import annotations

from typing import Any

import pytest
from lambdafleet.worker.isolation import (
    FUNCTION_NETWORK,
    ICC_OPTION,
    LABEL_NETWORK,
    network_problem,
    pick_network,
    privileges,
    runs_as_root,
)


@pytest.mark.parametrize(
    ("user", "root"), [("993:990", False), ("0:0", True), ("0", True), ("root", True),
                       ("1000", False), ("10:0", False)]
)  # fmt: skip
def test_runs_as_root(user: str, root: bool) -> None:
    assert runs_as_root(user) is root


def test_the_sandbox_user_gets_no_capability_and_no_new_privileges() -> None:
    assert privileges("993:990") == {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}


def test_a_root_waiter_keeps_only_what_it_needs_to_become_the_sandbox_user() -> None:
    assert privileges("0:0") == {
        "cap_drop": ["ALL"],
        "cap_add": ["SETGID", "SETUID"],
        "security_opt": ["no-new-privileges"],
    }


def network(**attrs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Name": FUNCTION_NETWORK,
        "Id": "a" * 64,
        "Created": "2026-01-01T00:00:00.000000000Z",
        "Driver": "bridge",
        "Options": {ICC_OPTION: "false"},
        "Labels": {LABEL_NETWORK: "functions"},
    }
    return {**base, **attrs}


def test_our_network_is_fit() -> None:
    assert network_problem(network()) is None


@pytest.mark.parametrize(
    ("attrs", "says"),
    [
        ({"Labels": {}}, "lambdafleet did not make it"),
        ({"Options": {}}, "reach each other"),
        ({"Options": {ICC_OPTION: "true"}}, "reach each other"),
        ({"Driver": "overlay"}, "reach each other"),
    ],
)
def test_a_network_that_does_not_isolate_is_refused(attrs: dict[str, Any], says: str) -> None:
    problem = network_problem(network(**attrs))
    assert problem is not None and says in problem
    assert "LAMBDA_DOCKER_NETWORK" in problem or "docker network rm" in problem


def test_every_worker_picks_the_same_network_of_the_name() -> None:
    older = network(Id="b" * 64, Created="2026-01-01T00:00:00Z")
    newer = network(Id="a" * 64, Created="2026-01-02T00:00:00Z")
    # The daemon's name filter matches substrings.
    other = network(Name=FUNCTION_NETWORK + "-x", Created="2025-01-01T00:00:00Z")
    assert pick_network([newer, other, older]) == older
    assert pick_network([older, newer]) == older
    assert pick_network([other]) is None
    assert pick_network([]) is None
