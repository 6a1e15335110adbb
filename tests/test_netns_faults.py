"""Faults across real network boundaries: the control plane and gateway in
one network namespace, two workers each in its own, all separate processes
over mutual TLS, real function containers on the host's Docker daemon
reaching their worker's Runtime API at the worker's namespace address.

Under a steady load of synchronous and Event invocations: a worker is
killed (SIGKILL) and started again, a worker is partitioned from the
control plane (iptables DROP inside its namespace) and healed, and the
control plane is restarted. Every caller's answer is checked: success or
ServiceException within the heartbeat TTL + 1 s, no caller left waiting, no
accepted event lost (each one runs at least once: the function reports
every run to a recorder in this process).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cluster import ROLE, Process, containers, fleet_status, lambda_client, wait_healthy, zip_bytes
from netns import Net, sh

from lambdafleet.certs import write_bundle

TTL_S = 3.0
BOUND_S = TTL_S + 1.0
CP_PORT = 4567
GW_PORT = 4566
SYNC_CALLERS = 3
CALL_PAUSE_S = 0.3
EVENT_PAUSE_S = 0.25
RUN_S = 0.2

HANDLER = """
import json, os, time, urllib.request

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if "id" in event:
        req = urllib.request.Request(
            os.environ["RECORDER"], data=json.dumps({"id": event["id"]}).encode(), method="POST"
        )
        urllib.request.urlopen(req, timeout=10).read()
    return {"id": event.get("id")}
"""


class Recorder:
    """Every run an event made, as the function reported it."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        lock = threading.Lock()
        runs = self.runs

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    runs[body["id"]] = runs.get(body["id"], 0) + 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Call:
    event: bool
    start: float
    end: float
    status: int
    error_type: str
    event_id: str = ""


@dataclass
class Fleet:
    tmp: Path
    net: Net
    certs: dict[str, Path]
    endpoint: str
    processes: dict[str, Process] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    worker_ids: dict[str, str] = field(default_factory=dict)

    def tls(self, part: str) -> list[str]:
        c = self.certs
        return [
            "--tls-cert",
            str(c[f"{part}.pem"]),
            "--tls-key",
            str(c[f"{part}-key.pem"]),
            "--tls-ca",
            str(c["ca.pem"]),
        ]

    def start_control_plane(self) -> None:
        self.runs["cp"] = self.runs.get("cp", 0) + 1
        self.processes["cp"] = Process(
            [
                "control-plane",
                "--listen",
                f"{self.net.hosts['cp']}:{CP_PORT}",
                "--data-dir",
                str(self.tmp / "cp"),
                "--heartbeat-ttl-ms",
                str(int(TTL_S * 1000)),
                *self.tls("control-plane"),
            ],
            self.tmp / f"cp-{self.runs['cp']}.log",
            env={"LAMBDAFLEET_ASYNC_DELAY_SCALE": "0.01"},
            wrapper=self.net.prefix_args("cp"),
        ).start()

    def start_worker(self, host: str) -> None:
        self.runs[host] = self.runs.get(host, 0) + 1
        address = self.net.hosts[host]
        self.processes[host] = Process(
            [
                "worker",
                "--control-plane",
                f"{self.net.hosts['cp']}:{CP_PORT}",
                "--worker-id",
                self.worker_ids[host],
                "--advertise-address",
                address,
                "--cache-dir",
                str(self.tmp / host / "cache"),
                *self.tls("worker"),
            ],
            self.tmp / f"{host}-{self.runs[host]}.log",
            # Every container is a function's environment: none pre-started.
            env={"LAMBDAFLEET_PRESTART": "off"},
            wrapper=self.net.prefix_args(host),
        ).start()

    def cp_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("cp-*.log")))


def bridge_gateway() -> str:
    out = sh(
        "docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"
    ).stdout.strip()
    return out or "172.17.0.1"


@pytest.fixture
def fleet(docker_daemon: None, tmp_path: Path) -> Iterator[Fleet]:
    net = Net().create()
    fleet: Fleet | None = None
    try:
        cp = net.add_host("cp")
        net.add_host("w1")
        net.add_host("w2")
        certs = write_bundle(tmp_path / "certs", [cp])
        fleet = Fleet(tmp_path, net, certs, f"http://{cp}:{GW_PORT}")
        tag = net.tag
        fleet.worker_ids = {"w1": f"ns-{tag}-w1", "w2": f"ns-{tag}-w2"}
        fleet.start_control_plane()
        fleet.processes["gw"] = Process(
            [
                "gateway",
                "--control-plane",
                f"{cp}:{CP_PORT}",
                "--host",
                "0.0.0.0",
                "--port",
                str(GW_PORT),
                *fleet.tls("gateway"),
            ],
            tmp_path / "gw.log",
            wrapper=net.prefix_args("cp"),
        ).start()
        fleet.start_worker("w1")
        fleet.start_worker("w2")
        wait_healthy(fleet.endpoint, timeout=60, workers=2)
        yield fleet
    finally:
        if fleet is not None:
            for name, process in fleet.processes.items():
                if process.proc is not None and process.proc.poll() is None:
                    try:
                        process.stop(timeout=30)
                    except AssertionError:
                        print(f"{name} did not stop")
        net.destroy()
        # Whatever a killed worker left, so no other test sees it.
        for c in containers(label="lambdafleet.worker"):
            if c["labels"]["lambdafleet.worker"].startswith(f"ns-{net.tag}-"):
                sh("docker", "rm", "-f", c["id"], check=False)


def invoke(endpoint: str, name: str, payload: dict[str, Any], event: bool) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{endpoint}/2015-03-31/functions/{name}/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"X-Amz-Invocation-Type": "Event" if event else "RequestResponse"},
    )
    try:
        # Far above the bound checked: a caller left waiting shows as 599.
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status, ""
    except urllib.error.HTTPError as exc:
        with exc:
            exc.read()
            return exc.code, exc.headers.get("x-amzn-ErrorType", "")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return 599, type(exc).__name__


def load(endpoint: str, name: str, seconds: float, fault: Callable[[], None]) -> list[Call]:
    """SYNC_CALLERS synchronous callers and one Event caller for `seconds`,
    with `fault` run in the middle of it (on this thread)."""
    calls: list[Call] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def caller(event: bool) -> None:
        while time.monotonic() < stop_at:
            event_id = uuid.uuid4().hex if event else ""
            payload: dict[str, Any] = {"sleep": RUN_S}
            if event:
                payload["id"] = event_id
            start = time.monotonic()
            status, error = invoke(endpoint, name, payload, event)
            with lock:
                calls.append(Call(event, start, time.monotonic(), status, error, event_id))
            time.sleep(EVENT_PAUSE_S if event else CALL_PAUSE_S)

    threads = [threading.Thread(target=caller, args=(False,)) for _ in range(SYNC_CALLERS)]
    threads.append(threading.Thread(target=caller, args=(True,)))
    for t in threads:
        t.start()
    try:
        fault()
    finally:
        for t in threads:
            t.join(60)
    return calls


def summarize(fault: str, calls: list[Call], recorder: Recorder) -> dict[str, Any]:
    sync = [c for c in calls if not c.event]
    events = [c for c in calls if c.event]
    accepted = [c for c in events if c.status == 202]
    summary = {
        "fault": fault,
        "sync_calls": len(sync),
        "sync_ok": sum(c.status == 200 for c in sync),
        "sync_service_exception": sum(c.error_type == "ServiceException" for c in sync),
        "sync_other": [
            (c.status, c.error_type)
            for c in sync
            if c.status != 200 and c.error_type != "ServiceException"
        ],
        "sync_max_wait_s": round(max(c.end - c.start for c in sync), 2),
        "events_sent": len(events),
        "events_accepted": len(accepted),
        "events_refused_at_submit": [(c.status, c.error_type) for c in events if c.status != 202],
        "events_max_submit_s": round(max(c.end - c.start for c in events), 2),
        "events_run_more_than_once": sum(recorder.runs.get(c.event_id, 0) > 1 for c in accepted),
        "events_lost": [c.event_id for c in accepted if c.event_id not in recorder.runs],
    }
    print(f"\nFAULT SUMMARY {json.dumps(summary)}", flush=True)
    return summary


def wait_all_ran(calls: list[Call], recorder: Recorder, timeout: float = 90) -> None:
    wanted = {c.event_id for c in calls if c.event and c.status == 202}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= set(recorder.runs):
        time.sleep(0.5)


def check(summary: dict[str, Any]) -> None:
    fault = summary["fault"]
    assert summary["sync_other"] == [], fault
    assert summary["sync_max_wait_s"] <= BOUND_S, fault
    assert summary["events_max_submit_s"] <= BOUND_S, fault
    assert summary["events_lost"] == [], fault
    assert summary["events_accepted"] > 0 and summary["sync_ok"] > 0, fault


def registrations(fleet: Fleet, host: str) -> int:
    return fleet.cp_log().count(f'"worker_id": "{fleet.worker_ids[host]}", "capacity"')


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def worker_containers(worker_id: str) -> set[str]:
    return {
        c["id"]
        for c in containers(label="lambdafleet.worker")
        if c["labels"]["lambdafleet.worker"] == worker_id
    }


def reported_containers(endpoint: str, worker_id: str) -> set[str]:
    for worker in fleet_status(endpoint)["workers"]:
        if worker["worker_id"] == worker_id:
            return {env["container_id"] for env in worker["environments"]}
    return set()


def test_faults_across_namespaces(fleet: Fleet) -> None:
    recorder = Recorder()
    try:
        run_faults(fleet, recorder)
    finally:
        recorder.close()


def run_faults(fleet: Fleet, recorder: Recorder) -> None:
    client = lambda_client(fleet.endpoint)
    name = f"netns-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": HANDLER})},
        Timeout=30,
        Environment={"Variables": {"RECORDER": f"http://{bridge_gateway()}:{recorder.port}/"}},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    # Warm both workers: the containers across namespaces answer.
    warm = load(fleet.endpoint, name, 4.0, lambda: None)
    wait_all_ran(warm, recorder)
    assert all(c.status in (200, 202) for c in warm), [(c.status, c.error_type) for c in warm]
    summaries = []

    # 1. SIGKILL a worker; start it again: it removes what it left.
    w1 = fleet.worker_ids["w1"]
    left: set[str] = set()

    def kill() -> None:
        nonlocal left
        time.sleep(3)
        fleet.processes["w1"].stop(signal.SIGKILL)
        left = worker_containers(w1)
        time.sleep(5)

    calls = load(fleet.endpoint, name, 9, kill)
    wait_all_ran(calls, recorder)
    summaries.append(summarize("sigkill worker", calls, recorder))
    assert left, "the killed worker left its containers"
    fleet.start_worker("w1")
    wait_healthy(fleet.endpoint, timeout=60, workers=2)
    wait_for(lambda: not left & worker_containers(w1), 30, "orphans of the killed worker removed")
    assert '"event": "worker.orphans_removed"' in fleet.processes["w1"].output()

    # 2. Partition a worker from the control plane, then heal it.
    w2 = fleet.worker_ids["w2"]
    before = registrations(fleet, "w2")

    def partition() -> None:
        time.sleep(2)
        fleet.net.partition("w2", "cp")
        time.sleep(TTL_S + 2)
        fleet.net.heal("w2")
        time.sleep(3)

    calls = load(fleet.endpoint, name, 10, partition)
    wait_all_ran(calls, recorder)
    summaries.append(summarize("partition worker", calls, recorder))
    wait_for(lambda: registrations(fleet, "w2") > before, 30, "partitioned worker re-registers")
    wait_healthy(fleet.endpoint, timeout=30, workers=2)
    # Every container left on the daemon for w2 is one it reports (none orphaned).
    wait_for(
        lambda: worker_containers(w2) <= reported_containers(fleet.endpoint, w2),
        30,
        "no orphan of the partitioned worker",
    )

    # 3. Restart the control plane under load.
    def restart() -> None:
        time.sleep(3)
        assert fleet.processes["cp"].stop() == 0
        time.sleep(1)
        fleet.start_control_plane()
        wait_healthy(fleet.endpoint, timeout=60, workers=2)
        time.sleep(3)

    calls = load(fleet.endpoint, name, 10, restart)
    wait_all_ran(calls, recorder)
    summaries.append(summarize("restart control plane", calls, recorder))

    for summary in summaries:
        check(summary)
    # Every part spoke mutual TLS, and nothing fell back to plaintext.
    assert '"transport": "mtls"' in fleet.cp_log()
    assert "transport.plaintext" not in fleet.cp_log()


def test_netns_cleanup_leaves_nothing() -> None:
    """The helper removes its namespaces, bridge and rules."""
    net = Net().create()
    net.add_host("a")
    net.destroy()
    assert net.ns("a") not in sh("ip", "netns", "list").stdout
    assert net.bridge not in sh("ip", "link").stdout
    assert (
        net.bridge
        not in subprocess.run(
            ["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True
        ).stdout
    )
