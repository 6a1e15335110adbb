"""One control plane per data dir and per address: a second one exits at
start with a line saying what holds them, so two never split one store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster import Process, free_port
from lambdafleet.control_plane.data_dir_lock import (
    LOCK_FILE,
    DataDirInUseError,
    DataDirLock,
    Holder,
)


def start_control_plane(tmp_path: Path, name: str, data_dir: Path, port: int) -> Process:
    """A control plane, returned once it answers on its port."""
    process = Process(
        ["control-plane", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
        tmp_path / f"{name}.log",
    ).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.proc is not None
        assert process.proc.poll() is None, process.output()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.stop(signal.SIGKILL)
    raise AssertionError(f"control plane {name} did not listen within 60 s")


def run_control_plane(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """A control plane expected to refuse to start: it must end by itself."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdafleet.cli",
            "control-plane",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_control_plane_on_a_data_dir_exits_naming_the_first(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_control_plane(tmp_path, "first", data_dir, free_port())
    try:
        assert first.proc is not None
        second = run_control_plane(data_dir, free_port())
        assert second.returncode == 1
        assert "Traceback" not in second.stderr
        line = second.stderr.splitlines()[-1]
        assert line.startswith(
            f"lambdafleet control-plane: data dir {data_dir} is in use by another control "
            f"plane (pid {first.proc.pid} on host {socket.gethostname()}, started "
        ), line
        assert line.endswith("); stop it or choose another with --data-dir"), line
        # The first still serves, its store untouched by the second.
        assert first.proc.poll() is None
    finally:
        assert first.stop() == 0


def test_a_second_control_plane_on_an_address_exits_naming_it(tmp_path: Path) -> None:
    port = free_port()
    first = start_control_plane(tmp_path, "first", tmp_path / "a", port)
    try:
        second = run_control_plane(tmp_path / "b", port)
        assert second.returncode == 1
        assert "Traceback" not in second.stderr
        assert second.stderr.splitlines()[-1] == (
            f"lambdafleet control-plane: address 127.0.0.1:{port} is in use; "
            "stop what holds it or choose another with --listen"
        )
        # Refused before anything was served: the other data dir is free
        # again for whoever comes next.
        DataDirLock(tmp_path / "b").acquire()
    finally:
        assert first.stop() == 0


def test_a_killed_control_planes_lock_does_not_block_the_next(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_control_plane(tmp_path, "first", data_dir, free_port())
    first.stop(signal.SIGKILL)
    # Its record is still in the file, its lock went with it.
    assert first.proc is not None
    assert f'"pid": {first.proc.pid}' in (data_dir / LOCK_FILE).read_text()
    second = start_control_plane(tmp_path, "second", data_dir, free_port())
    try:
        assert second.proc is not None
        holder = Holder.decode((data_dir / LOCK_FILE).read_text())
        assert holder is not None and holder.pid == second.proc.pid
    finally:
        assert second.stop() == 0
    # A stopped control plane leaves no holder named.
    assert (data_dir / LOCK_FILE).read_text() == ""


def test_the_lock_is_held_until_released(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirInUseError) as refused:
        DataDirLock(tmp_path).acquire()
    assert refused.value.holder == Holder.decode((tmp_path / LOCK_FILE).read_text())
    assert refused.value.holder is not None and refused.value.holder.pid == os.getpid()
    first.release()
    again = DataDirLock(tmp_path)
    again.acquire()
    again.release()


def test_a_holder_not_yet_written_is_said_unknown(tmp_path: Path) -> None:
    assert Holder.decode("") is None
    assert Holder.decode('{"pid": "x"}') is None
    message = str(DataDirInUseError(tmp_path, None))
    assert message == (
        f"data dir {tmp_path} is in use by another control plane (holder unknown); "
        "stop it or choose another with --data-dir"
    )
