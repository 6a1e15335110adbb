"""Concurrency leases, tested directly: no servers, no Docker."""

from __future__ import annotations

import pytest
from lambdafleet.control_plane.leases import (
    ACCOUNT_EXCEEDED,
    RESERVED_EXCEEDED,
    Leases,
    Limits,
    Throttled,
    choose,
)

A = ("000000000000", "us-east-1")
B = ("111111111111", "us-east-1")


def take(leases: Leases, limits: Limits, n: int, function: str = "f", q: str = "$LATEST") -> None:
    for _ in range(n):
        leases.acquire(limits, A, function, q)


def reason(leases: Leases, limits: Limits, function: str = "f", q: str = "$LATEST") -> str:
    with pytest.raises(Throttled) as info:
        leases.acquire(limits, A, function, q)
    return info.value.reason


def test_unreserved_functions_share_the_account_limit() -> None:
    leases, limits = Leases(), Limits(limit=3)
    take(leases, limits, 2, "f")
    take(leases, limits, 1, "g")
    assert reason(leases, limits, "h") == ACCOUNT_EXCEEDED


def test_reserved_zero_throttles_everything() -> None:
    limits = Limits(limit=1000, reservations={"f": 0})
    assert reason(Leases(), limits) == RESERVED_EXCEEDED


def test_reservation_is_the_functions_own_limit() -> None:
    leases, limits = Leases(), Limits(limit=1000, reservations={"f": 2})
    take(leases, limits, 2)
    assert reason(leases, limits) == RESERVED_EXCEEDED
    # Others are not affected by f's leases.
    take(leases, limits, 5, "g")


def test_reserved_function_does_not_draw_from_the_account_pool() -> None:
    # 10 in all, 4 reserved by f: the rest share 6, even while f runs 4.
    leases, limits = Leases(), Limits(limit=10, reservations={"f": 4})
    take(leases, limits, 4, "f")
    take(leases, limits, 6, "g")
    assert reason(leases, limits, "g") == ACCOUNT_EXCEEDED
    assert reason(leases, limits, "f") == RESERVED_EXCEEDED


def test_release_gives_the_lease_back() -> None:
    leases, limits = Leases(), Limits(limit=1000, reservations={"f": 1})
    lease = leases.acquire(limits, A, "f", "$LATEST")
    assert reason(leases, limits) == RESERVED_EXCEEDED
    leases.release(lease)
    assert leases.in_use(lease.pool) == 0
    leases.acquire(limits, A, "f", "$LATEST")


def test_accounts_are_separate() -> None:
    leases, limits = Leases(), Limits(limit=1)
    leases.acquire(limits, A, "f", "$LATEST")
    leases.acquire(limits, B, "f", "$LATEST")


def test_provisioned_first_then_spills_over_to_the_reservation() -> None:
    limits = Limits(limit=1000, reservations={"f": 3}, provisioned={"f": {"1": 2}})
    leases = Leases()
    first = leases.acquire(limits, A, "f", "1")
    second = leases.acquire(limits, A, "f", "1")
    assert first.pool == second.pool == ("provisioned", A, "f", "1")
    # The reservation keeps 3 - 2 for on-demand invocations of any version.
    third = leases.acquire(limits, A, "f", "1")
    assert third.pool == ("reserved", A, "f")
    assert reason(leases, limits, "f", "1") == RESERVED_EXCEEDED
    assert reason(leases, limits, "f", "$LATEST") == RESERVED_EXCEEDED


def test_provisioned_filling_the_reservation_blocks_other_versions() -> None:
    # Recorded test_lambda_concurrency_block: reserved 1, version 1
    # provisioned 1: $LATEST is throttled, version 1 runs.
    limits = Limits(limit=1000, reservations={"f": 1}, provisioned={"f": {"1": 1}})
    leases = Leases()
    assert reason(leases, limits, "f", "$LATEST") == RESERVED_EXCEEDED
    leases.acquire(limits, A, "f", "1")


def test_provisioned_without_reservation_is_taken_from_the_account() -> None:
    limits = Limits(limit=5, provisioned={"f": {"live": 2}})
    assert limits.unreserved() == 3
    leases = Leases()
    take(leases, limits, 2, "f", "live")
    take(leases, limits, 3, "g")
    assert reason(leases, limits, "g") == ACCOUNT_EXCEEDED
    # f's alias spills over to the (full) account pool.
    assert reason(leases, limits, "f", "live") == ACCOUNT_EXCEEDED


def test_provisioned_inside_a_reservation_does_not_shrink_the_account_pool() -> None:
    limits = Limits(limit=10, reservations={"f": 4}, provisioned={"f": {"1": 3}})
    assert limits.unreserved() == 6


def test_a_lowered_reservation_applies_to_the_next_invocation() -> None:
    leases = Leases()
    take(leases, Limits(limit=1000, reservations={"f": 3}), 2)
    assert reason(leases, Limits(limit=1000, reservations={"f": 2})) == RESERVED_EXCEEDED


def test_choose_is_a_function_of_what_is_held() -> None:
    limits = Limits(limit=2)
    assert choose(limits, {}, A, "f", "$LATEST") == ("unreserved", A)
    with pytest.raises(Throttled):
        choose(limits, {("unreserved", A): 2}, A, "f", "$LATEST")


def test_a_version_invoked_directly_draws_on_the_aliases_pointing_at_it() -> None:
    """As on AWS (recorded test_lambda_provisioned_concurrency_moves_with_alias):
    an alias's provisioned environments are its version's, so the version
    invoked by number runs in them too; another version does not."""
    limits = Limits(
        limit=1000,
        provisioned={"f": {"live": 1, "canary": 1}},
        versions={"f": {"live": "2", "canary": "3"}},
    )
    assert limits.provisioned_pools("f", "2") == ["live"]
    assert limits.provisioned_pools("f", "live") == ["live"]
    assert limits.provisioned_pools("f", "1") == []
    assert choose(limits, {}, A, "f", "2") == ("provisioned", A, "f", "live")
    assert choose(limits, {}, A, "f", "1") == ("unreserved", A)
    # The alias and the version share the alias's one environment: whichever
    # comes second spills over to on-demand concurrency.
    leases = Leases()
    assert leases.acquire(limits, A, "f", "2").pool == ("provisioned", A, "f", "live")
    assert leases.acquire(limits, A, "f", "live").pool == ("unreserved", A)


def test_a_version_tries_its_own_pool_before_an_alias_pointing_at_it() -> None:
    limits = Limits(
        limit=1000,
        provisioned={"f": {"2": 1, "b": 1, "a": 1}},
        versions={"f": {"2": "2", "b": "2", "a": "2"}},
    )
    assert limits.provisioned_pools("f", "2") == ["2", "a", "b"]
    held = {("provisioned", A, "f", "2"): 1}
    assert choose(limits, held, A, "f", "2") == ("provisioned", A, "f", "a")
