"""The provisioning reconciler's decisions, without servers: where provisioned
environments go, and what a config's status says."""

from __future__ import annotations

from control_plane.placement import WorkerSnapshot, place
from control_plane.provisioning import Progress, Room, assign, progress


def rooms(*spec: tuple[str, int]) -> list[Room]:
    return [Room(worker_id, capacity) for worker_id, capacity in spec]


def test_new_environments_spread_over_the_workers() -> None:
    out = assign({"f:1": 4}, rooms(("a", 10), ("b", 10)), {})
    assert out == {"a": {"f:1": 2}, "b": {"f:1": 2}}


def test_environments_go_where_room_is() -> None:
    out = assign({"f:1": 3}, rooms(("a", 1), ("b", 10)), {"a": {"g:1": 1}})
    assert out == {"b": {"f:1": 3}}


def test_started_environments_stay_where_they_are() -> None:
    current = {"a": {"f:1": 3}}
    assert assign({"f:1": 3}, rooms(("a", 10), ("b", 10)), current) == current


def test_more_wanted_adds_without_moving() -> None:
    out = assign({"f:1": 4}, rooms(("a", 10), ("b", 10)), {"a": {"f:1": 3}})
    assert out == {"a": {"f:1": 3}, "b": {"f:1": 1}}


def test_fewer_wanted_trims_the_biggest_holder() -> None:
    out = assign({"f:1": 2}, rooms(("a", 10), ("b", 10)), {"a": {"f:1": 3}, "b": {"f:1": 1}})
    assert out == {"a": {"f:1": 1}, "b": {"f:1": 1}}


def test_a_config_deleted_stops_its_environments() -> None:
    out = assign({}, rooms(("a", 10)), {"a": {"f:1": 3}})
    assert out == {}


def test_a_dead_worker_is_replaced_elsewhere() -> None:
    current = {"a": {"f:1": 2}, "dead": {"f:1": 2}}
    out = assign({"f:1": 4}, rooms(("a", 10), ("b", 10)), current)
    assert out == {"a": {"f:1": 2}, "b": {"f:1": 2}}


def test_what_fits_nowhere_waits() -> None:
    out = assign({"f:1": 5}, rooms(("a", 2), ("b", 1)), {})
    assert sum(n for counts in out.values() for n in counts.values()) == 3


def test_an_alias_move_keeps_old_and_new_until_the_new_are_ready() -> None:
    # The reconciler wants both keys while moving; the old stay put.
    out = assign({"f:1": 1, "f:2": 1}, rooms(("a", 10)), {"a": {"f:1": 1}})
    assert out == {"a": {"f:1": 1, "f:2": 1}}
    # Once the new are ready only the new key is wanted: the old goes.
    assert assign({"f:2": 1}, rooms(("a", 10)), out) == {"a": {"f:2": 1}}


def test_status_in_progress_until_all_are_ready() -> None:
    assert progress(5, 0, "") == Progress("IN_PROGRESS", 0)
    assert progress(5, 3, "") == Progress("IN_PROGRESS", 3)
    assert progress(5, 5, "") == Progress("READY", 5)


def test_status_failed_on_init_failure() -> None:
    # Recorded test_provisioned_concurrency_init_failure.
    failed = progress(1, 0, "FUNCTION_ERROR_INIT_FAILURE")
    assert failed == Progress("FAILED", 0, "FUNCTION_ERROR_INIT_FAILURE")


def test_status_while_an_alias_moves_counts_the_old_environments() -> None:
    # Recorded test_lambda_provisioned_concurrency_moves_with_alias:
    # IN_PROGRESS with Allocated and Available 1 right after the move.
    assert progress(1, 0, "", previous_ready=1) == Progress("IN_PROGRESS", 1)


def snapshot(worker_id: str, **kwargs: object) -> WorkerSnapshot:
    base: dict[str, object] = {
        "capacity": 10,
        "memory_mb": 4096,
        "in_flight": 0,
        "busy_memory_mb": 0,
        "architectures": frozenset({"x86_64"}),
    }
    base.update(kwargs)
    return WorkerSnapshot(worker_id, **base)  # type: ignore[arg-type]


def test_a_provisioned_invocation_goes_to_an_idle_provisioned_environment() -> None:
    workers = [
        snapshot("roomy", memory_mb=8192, idle={"f:1": 1}),
        snapshot("provisioned", provisioned_idle={"f:1": 1}),
    ]
    assert place(workers, "f:1", 128, "x86_64", provisioned=True) == "provisioned"
    # Without a provisioned lease they are not its to use.
    assert place(workers, "f:1", 128, "x86_64") == "roomy"
