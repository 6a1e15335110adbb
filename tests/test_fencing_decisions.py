"""The fencing decisions (worker/fencing.py), without Docker or processes."""

from __future__ import annotations

from lambdafleet.worker import fencing
from lambdafleet.worker.fencing import Owner, ProcessIdentity

HERE = ProcessIdentity("boot-a", "4026531836", 100, 5000)
LABELS = {"worker": "lambdafleet.worker", "owner": "lambdafleet.owner"}


def leftover(
    labels: dict[str, str], started: dict[int, int], live: frozenset[str] = frozenset()
) -> bool:
    return fencing.is_leftover(
        labels,
        worker_label=LABELS["worker"],
        owner_label=LABELS["owner"],
        worker_id="w-2",
        here=HERE,
        start_time_of=started.get,
        live_instances=live,
    )


def marker(process: ProcessIdentity, instance: str = "i-1") -> str:
    return fencing.owner_marker(Owner(process, instance))


def test_the_marker_reads_back() -> None:
    owner = Owner(ProcessIdentity("b", "4026531836", 7, 99), "abc")
    assert fencing.parse_marker(fencing.owner_marker(owner)) == owner
    assert fencing.parse_marker("") is None
    assert fencing.parse_marker("a/b/c/d/e") is None


def test_the_workers_own_id_is_always_a_leftover() -> None:
    assert leftover({"lambdafleet.worker": "w-2"}, {})


def test_a_gone_process_of_another_id_left_its_containers() -> None:
    other = ProcessIdentity("boot-a", "4026531836", 200, 7000)
    labels = {"lambdafleet.worker": "w-1", "lambdafleet.owner": marker(other)}
    assert leftover(labels, {})  # no such process
    assert leftover(labels, {200: 9999})  # its pid reused by another process
    assert not leftover(labels, {200: 7000})  # alive


def test_what_cannot_be_judged_stays() -> None:
    elsewhere = ProcessIdentity("boot-b", "4026531836", 200, 7000)
    other_namespace = ProcessIdentity("boot-a", "4026532000", 200, 7000)
    for process in (elsewhere, other_namespace):
        labels = {"lambdafleet.worker": "w-1", "lambdafleet.owner": marker(process)}
        assert not leftover(labels, {})
    # Made before owners were labelled, by another id.
    assert not leftover({"lambdafleet.worker": "w-1"}, {})


def test_workers_of_this_process_live_while_their_instance_does() -> None:
    labels = {"lambdafleet.worker": "w-1", "lambdafleet.owner": marker(HERE, "i-9")}
    assert not leftover(labels, {100: 5000}, frozenset({"i-9"}))
    assert leftover(labels, {100: 5000}, frozenset({"i-other"}))  # aborted


def test_the_control_plane_is_lost_past_the_ttl() -> None:
    assert not fencing.lost_control_plane(None, 2.0, 100.0)  # never registered
    assert not fencing.lost_control_plane(99.0, None, 100.0)
    assert not fencing.lost_control_plane(98.5, 2.0, 100.0)
    assert fencing.lost_control_plane(97.9, 2.0, 100.0)


def test_this_process_knows_itself() -> None:
    here = fencing.current_process()
    assert here is not None
    assert fencing.process_start_time(here.pid) == here.start_time
    assert fencing.process_start_time(2**22 + 12345) is None
