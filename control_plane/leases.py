"""Concurrency leases: whether an invocation may run now, and on which pool.

Every in-flight invocation holds one lease, taken before it is placed and
returned when it ends, however it ends. Leases come from pools, tried in
AWS's order:

1. the provisioned pool of the invoked qualifier (alias or version), when a
   provisioned concurrency config exists for it; a version invoked directly
   also draws on the pools of the aliases pointing at it, whose
   environments are that version's (recorded
   test_lambda_provisioned_concurrency_moves_with_alias);
2. a function with reserved concurrency R: its own pool of R minus what its
   provisioned configs hold (provisioned concurrency is carved out of the
   reservation); such a function never draws from the account;
3. otherwise the account's unreserved pool: the limit minus every
   reservation minus the provisioned concurrency of functions without one.

Over the limit the invocation is throttled at once, with the Reason AWS
gives: ReservedFunctionConcurrentInvocationLimitExceeded for a function with
a reservation (0 throttles everything), ConcurrentInvocationLimitExceeded for
the account's pool.

Pure: no I/O. The scheduler reads the limits from the store and keeps one
`Leases` for the control plane.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

RESERVED_EXCEEDED = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_EXCEEDED = "ConcurrentInvocationLimitExceeded"

# A pool: ("provisioned", account, function, qualifier), ("reserved",
# account, function) or ("unreserved", account).
PoolKey = tuple[Hashable, ...]


@dataclass(frozen=True)
class Limits:
    """What one account (in one region) may run at once, as configured."""

    # The account's concurrency (LAMBDA_LIMITS_CONCURRENT_EXECUTIONS).
    limit: int
    # Reserved concurrency by function name, for functions that have one.
    reservations: Mapping[str, int] = field(default_factory=dict)
    # Provisioned concurrency by function name, then qualifier.
    provisioned: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # The version each provisioned qualifier runs, by function name, then
    # qualifier (an alias's target; a version's is itself).
    versions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def provisioned_total(self, function: str) -> int:
        return sum(self.provisioned.get(function, {}).values())

    def provisioned_pools(self, function: str, qualifier: str) -> list[str]:
        """The qualifiers whose provisioned pools may serve an invocation of
        `function:qualifier`, in the order tried: its own, then (for a
        version) those of the aliases pointing at it, by name."""
        configured = self.provisioned.get(function, {})
        pools = [qualifier] if configured.get(qualifier, 0) > 0 else []
        targets = self.versions.get(function, {})
        pools += sorted(
            q
            for q, n in configured.items()
            if n > 0 and q != qualifier and targets.get(q) == qualifier
        )
        return pools

    def unreserved(self) -> int:
        """The account's pool left to functions without a reservation."""
        taken = sum(self.reservations.values())
        taken += sum(
            self.provisioned_total(fn) for fn in self.provisioned if fn not in self.reservations
        )
        return max(0, self.limit - taken)


@dataclass(frozen=True)
class Lease:
    pool: PoolKey


class Throttled(Exception):
    """No pool has room: AWS's TooManyRequestsException with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def choose(
    limits: Limits,
    held: Mapping[PoolKey, int],
    account: Hashable,
    function: str,
    qualifier: str,
) -> PoolKey:
    """The pool an invocation of `function:qualifier` takes its lease from,
    given the leases `held` now; raises Throttled when none has room."""
    key: PoolKey
    for pool in limits.provisioned_pools(function, qualifier):
        key = ("provisioned", account, function, pool)
        if held.get(key, 0) < limits.provisioned[function][pool]:
            return key
    # Spill over to on-demand concurrency, as AWS does.
    if function in limits.reservations:
        room = limits.reservations[function] - limits.provisioned_total(function)
        key = ("reserved", account, function)
        if held.get(key, 0) < room:
            return key
        raise Throttled(RESERVED_EXCEEDED)
    key = ("unreserved", account)
    if held.get(key, 0) < limits.unreserved():
        return key
    raise Throttled(ACCOUNT_EXCEEDED)


class Leases:
    """The leases held now, by pool. One instance per control plane; all
    calls come from its event loop, so no locking is needed."""

    def __init__(self) -> None:
        self.held: Counter[PoolKey] = Counter()

    def acquire(self, limits: Limits, account: Hashable, function: str, qualifier: str) -> Lease:
        pool = choose(limits, self.held, account, function, qualifier)
        self.held[pool] += 1
        return Lease(pool)

    def release(self, lease: Lease) -> None:
        self.held[lease.pool] -= 1
        if self.held[lease.pool] <= 0:
            del self.held[lease.pool]

    def in_use(self, pool: PoolKey) -> int:
        return self.held.get(pool, 0)
