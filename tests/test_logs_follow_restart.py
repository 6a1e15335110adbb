"""`lambdafleet logs --follow` across control plane restarts: it connects
again by itself and goes on, printing each line once (issue 17: it exited 0
at the first restart). Separate processes, a worker with fake sandboxes (no
Docker): the worker writes START/END/REPORT around each invocation."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cluster import Process, create_fleet_functions, free_port, lambda_client, wait_healthy


def test_follow_survives_control_plane_restarts(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    runs = [0]

    def control_plane() -> Process:
        runs[0] += 1
        return Process(
            ["control-plane", "--listen", address, "--data-dir", str(tmp_path / "cp")],
            tmp_path / f"cp-{runs[0]}.log",
        ).start()

    cp = control_plane()
    gateway = Process(
        ["gateway", "--control-plane", address, "--port", str(port)], tmp_path / "gw.log"
    ).start()
    worker = Process(
        ["worker", "--backend", "fake", "--worker-id", "follow-w", "--control-plane", address],
        tmp_path / "worker.log",
    ).start()
    follower: subprocess.Popen[str] | None = None
    try:
        wait_healthy(endpoint, 60)
        (name,) = create_fleet_functions(endpoint, "follow", 1)
        client = lambda_client(endpoint)
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lambdafleet.cli",
                "logs",
                name,
                "--follow",
                "--endpoint",
                endpoint,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: queue.Queue[str] = queue.Queue()
        printed: list[str] = []

        def read() -> None:
            assert follower is not None and follower.stdout is not None
            for line in follower.stdout:
                printed.append(line.rstrip("\n"))
                seen.put(printed[-1])

        threading.Thread(target=read, daemon=True).start()
        request_ids = []
        for restart in range(3):
            rid = client.invoke(FunctionName=name, Payload=b'{"n": 1}')["ResponseMetadata"][
                "RequestId"
            ]
            request_ids.append(rid)
            wait_for_line(seen, f"{rid} REPORT RequestId: {rid}")
            # The control plane dies (no goodbye) and comes back; the
            # follower's stream breaks meanwhile.
            cp.stop(signal.SIGKILL)
            time.sleep(1.0)
            assert follower.poll() is None, "the follower exited at a control plane restart"
            cp = control_plane()
            wait_healthy(endpoint, 60)
            assert follower.poll() is None, restart
        rid = client.invoke(FunctionName=name, Payload=b'{"n": 2}')["ResponseMetadata"]["RequestId"]
        request_ids.append(rid)
        wait_for_line(seen, f"{rid} REPORT RequestId: {rid}")
        assert follower.poll() is None
        # Each invocation's lines once, in order: none skipped, none repeated.
        reports = [line for line in printed if " REPORT RequestId: " in line]
        assert [r.split(" ")[1] for r in reports] == request_ids, printed
        assert len(printed) == len(set(printed)), printed
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait(30)
            assert follower.stdout is not None and follower.stderr is not None
            errors = follower.stderr.read()
            follower.stdout.close()
            follower.stderr.close()
        for process in (worker, gateway, cp):
            process.stop()
    # At most one line on stderr per restart.
    lines = errors.splitlines()
    assert len(lines) <= 3, lines
    assert all(line.startswith("lambdafleet logs: ") for line in lines), lines


def wait_for_line(seen: queue.Queue[str], text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = seen.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if text in line:
            return
    raise AssertionError(f"no line with {text!r} within {timeout} s")
