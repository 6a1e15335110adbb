"""Clients that send slowly, stop halfway or say nothing cannot hold the
gateway: each is cut off within seconds (with small limits set for the
test), and past its connection bound it makes further clients wait while
those it serves still get answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import UpCluster
from lambdafleet.gateway.http_limits import HttpLimits, content_length

HEALTH = b"GET /_fleet/health HTTP/1.1\r\nHost: gateway\r\n\r\n"


def up(root: Path, **limits: str) -> UpCluster:
    env = {
        "LAMBDAFLEET_BACKEND": "fake",
        **{f"LAMBDAFLEET_{k.upper()}": v for k, v in limits.items()},
    }
    cluster = UpCluster(root, env)
    cluster.start()
    return cluster


@pytest.fixture(scope="module")
def short_timeouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    cluster = up(
        tmp_path_factory.mktemp("short"),
        http_idle_timeout_ms="1500",
        http_body_timeout_ms="1500",
        http_min_body_rate="524288",
    )
    yield cluster
    assert cluster.stop() == 0


def connect(cluster: UpCluster) -> socket.socket:
    return socket.create_connection(("127.0.0.1", cluster.port), timeout=10)


def closed_after(conn: socket.socket, give_up_s: float) -> float:
    """Seconds until the gateway closes `conn`, whatever it answered first;
    fails when it is still open after give_up_s."""
    start = time.monotonic()
    conn.settimeout(give_up_s)
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {give_up_s} s") from None
    return time.monotonic() - start


def answer(conn: socket.socket, timeout: float = 10) -> bytes:
    """The head of one answer on a keep-alive connection (the health answer
    is small: one read holds it)."""
    conn.settimeout(timeout)
    data = conn.recv(65536)
    assert data.startswith(b"HTTP/1.1 "), data
    return data


def test_a_client_sending_its_headers_slowly_is_cut_off(short_timeouts: UpCluster) -> None:
    with connect(short_timeouts) as conn:
        conn.sendall(b"GET /_fleet/health HTTP/1.1\r\n")
        start = time.monotonic()
        # A header byte every 0.3 s: never idle, never done.
        with pytest.raises(OSError):
            for _ in range(40):
                conn.sendall(b"X")
                time.sleep(0.3)
        assert time.monotonic() - start < 6
        closed_after(conn, 5)


def test_a_truncated_body_is_cut_off(short_timeouts: UpCluster) -> None:
    with connect(short_timeouts) as conn:
        conn.sendall(
            b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Length: 1000\r\n\r\n1234567"
        )
        assert closed_after(conn, 8) < 6


def test_an_idle_connection_is_closed(short_timeouts: UpCluster) -> None:
    with connect(short_timeouts) as fresh, connect(short_timeouts) as used:
        used.sendall(HEALTH)
        assert answer(used).startswith(b"HTTP/1.1 200")
        assert closed_after(fresh, 8) < 6
        assert closed_after(used, 8) < 6


def test_a_body_gets_time_for_its_length(short_timeouts: UpCluster) -> None:
    """2 MiB sent over about 2.5 s, longer than the 1.5 s base: its length
    at 512 KiB/s adds 4 s, so it is read whole and answered."""
    size = 2 * 1024 * 1024
    with connect(short_timeouts) as conn:
        conn.sendall(
            b"POST /2015-03-31/functions/no-such-function/invocations HTTP/1.1\r\n"
            b"Host: gateway\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        piece = b" " * (size // 10)
        for _ in range(9):
            conn.sendall(piece)
            time.sleep(0.28)
        conn.sendall(b" " * (size - 9 * len(piece) - 2) + b"{}")
        assert answer(conn).startswith(b"HTTP/1.1 404")


def test_connections_past_the_bound_wait_while_the_others_are_answered(tmp_path: Path) -> None:
    cluster = up(tmp_path, http_max_connections="3")
    try:
        held = [connect(cluster) for _ in range(3)]
        for conn in held:
            conn.sendall(HEALTH)
            answer(conn)
        waiting = connect(cluster)  # the kernel's listen queue takes it
        waiting.sendall(HEALTH)
        waiting.settimeout(2)
        with pytest.raises(TimeoutError):
            waiting.recv(65536)
        for conn in held:
            conn.sendall(HEALTH)
            assert answer(conn).startswith(b"HTTP/1.1 200")
        held.pop().close()
        assert answer(waiting).startswith(b"HTTP/1.1 200")
        for conn in [*held, waiting]:
            conn.close()
    finally:
        assert cluster.stop() == 0


def test_body_deadlines() -> None:
    limits = HttpLimits(body_timeout_s=10, min_body_rate=1_000_000)
    assert limits.body_timeout(0, largest=80_000_000) == 10
    assert limits.body_timeout(50_000_000, largest=80_000_000) == 60
    # Longer than anything read, or of no stated length: the largest's.
    assert limits.body_timeout(10**12, largest=80_000_000) == 90
    assert limits.body_timeout(None, largest=80_000_000) == 90
    assert content_length(" 1000 ") == 1000
    assert content_length(None) is None
    assert content_length("1e3") is None
    assert content_length("²") is None
