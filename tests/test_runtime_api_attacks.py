"""One function attacking another's invocations over the worker's Runtime
API, from inside a real function container, with everything the public
views show: B's environment id (/_fleet/status, log stream names) and the
request id of B's running invocation (/_fleet/logs). Every attempt fails and
B's callers get B's real answers (issue 17)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest
from cluster import ROLE, environments, zip_bytes
from conftest import UpCluster

VICTIM = """
import json, os, time

def handler(event, context):
    if event.get("print_env"):
        print(json.dumps(dict(os.environ)))
    time.sleep(event.get("sleep", 0))
    return {"from": "B", "n": event.get("n"), "api": os.environ["AWS_LAMBDA_RUNTIME_API"]}
"""

# Speaks to its own worker's Runtime API (the address its own variable
# names) with forged Host headers: B's public id in every form.
ATTACKER = """
import http.client, os, time

API_HOST, _, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
RUNTIME = "/2018-06-01/runtime"


def call(method, path, host, body=b"", timeout=3.0):
    conn = http.client.HTTPConnection(API_HOST, int(PORT), timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("Lambda-Runtime-Function-Error-Type", "Forged.Error")
        conn.putheader("Lambda-Extension-Name", "thief")
        conn.endheaders(body)
        resp = conn.getresponse()
        return [resp.status, resp.read(4096).decode(errors="replace")]
    except OSError as exc:
        return ["no answer", repr(exc)]
    finally:
        conn.close()


def hosts(victim):
    upper = victim.upper()
    return [f"lf-{victim}:{PORT}", f"lf-{victim}", f"{victim}:{PORT}", f"LF-{upper}:{PORT}"]


def steal(victim, seconds):
    results = []
    end = time.time() + seconds
    while time.time() < end:
        for host in hosts(victim):
            left = max(0.5, end - time.time())
            results.append([host, *call("GET", RUNTIME + "/invocation/next", host, timeout=left)])
        time.sleep(0.05)
    return results


def forge(victim, request_id):
    invocation = f"{RUNTIME}/invocation/{request_id}"
    forged = b'{"from": "A", "forged": true}'
    error = b'{"errorMessage": "forged", "errorType": "Forged.Error"}'
    results = []
    for host in hosts(victim):
        results += [
            [host, "response", *call("POST", invocation + "/response", host, forged)],
            [host, "error", *call("POST", invocation + "/error", host, error)],
            [host, "register", *call("POST", "/2020-01-01/extension/register", host,
                                     b'{"events": ["INVOKE", "SHUTDOWN"]}')],
            [host, "init_error", *call("POST", RUNTIME + "/init/error", host, error)],
        ]
    # Its own credential, naming B's invocation.
    own = os.environ["AWS_LAMBDA_RUNTIME_API"]
    own_results = [
        call("POST", invocation + "/response", own, forged),
        call("POST", invocation + "/error", own, error),
    ]
    return {"forged": results, "own": own_results}


def handler(event, context):
    if event["mode"] == "steal":
        return steal(event["victim"], event["seconds"])
    return forge(event["victim"], event["request_id"])
"""


def create(client: Any, name: str, code: str) -> None:
    client.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_bytes({"app.py": code})}, Timeout=60, MemorySize=128,
    )  # fmt: skip
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def invoke(client: Any, name: str, event: dict[str, Any]) -> Any:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event))
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode())


def log_events(endpoint: str, name: str) -> list[dict[str, Any]]:
    text = http_text(f"{endpoint}/_fleet/logs/{name}")
    return [json.loads(line) for line in text.splitlines()]


def in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def joined(thread: threading.Thread, box: dict[str, Any]) -> Any:
    thread.join(120)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box["result"]


def refused(status: object) -> bool:
    return status in (403, 404)


@pytest.fixture
def victim_and_attacker(cluster: UpCluster) -> tuple[str, str, str]:
    client = cluster.client()
    tag = uuid.uuid4().hex[:8]
    victim, attacker = f"victim-{tag}", f"attacker-{tag}"
    create(client, victim, VICTIM)
    create(client, attacker, ATTACKER)
    assert invoke(client, victim, {"n": 0})["from"] == "B"
    (env,) = environments(cluster.endpoint, victim)
    return victim, attacker, env["environment_id"]


def test_a_function_cannot_steal_anothers_events_or_end_its_runtime(
    cluster: UpCluster, victim_and_attacker: tuple[str, str, str]
) -> None:
    client = cluster.client()
    victim, attacker, victim_id = victim_and_attacker
    thread, box = in_background(
        lambda: invoke(client, attacker, {"mode": "steal", "victim": victim_id, "seconds": 8})
    )
    time.sleep(2)  # the attacker's polls are under way
    for n in range(1, 4):
        answer = invoke(client, victim, {"n": n})
        assert answer["from"] == "B" and answer["n"] == n
    attempts = joined(thread, box)
    assert attempts and all(refused(status) for _, status, _ in attempts), attempts
    # B's runtime never left: the same environment served every call.
    (env,) = environments(cluster.endpoint, victim)
    assert env["environment_id"] == victim_id and int(env["invocations"]) == 4
    assert not any(
        "Runtime.ExitError" in e["message"] for e in log_events(cluster.endpoint, victim)
    )


def test_a_function_cannot_answer_or_fail_anothers_running_invocation(
    cluster: UpCluster, victim_and_attacker: tuple[str, str, str]
) -> None:
    client = cluster.client()
    victim, attacker, victim_id = victim_and_attacker
    known = {e["request_id"] for e in log_events(cluster.endpoint, victim)}
    thread, box = in_background(lambda: invoke(client, victim, {"n": "slow", "sleep": 10}))
    # B's running invocation, as the public log shows it.
    deadline = time.monotonic() + 8
    request_id = ""
    while not request_id:
        assert time.monotonic() < deadline, "B's invocation never showed in its log"
        starts = [
            e["request_id"]
            for e in log_events(cluster.endpoint, victim)
            if e["message"].startswith("START") and e["request_id"] not in known
        ]
        request_id = starts[0] if starts else ""
        time.sleep(0.2)
    attempts = invoke(
        client, attacker, {"mode": "forge", "victim": victim_id, "request_id": request_id}
    )
    running = thread.is_alive()
    answer = joined(thread, box)
    assert answer["from"] == "B" and answer["n"] == "slow", answer
    assert running, "B's invocation ended before the attack was over"
    assert all(refused(status) for _, _, status, _ in attempts["forged"]), attempts
    # With its own credential it names an invocation that is not its own.
    assert [status for status, _ in attempts["own"]] == [400, 400], attempts
    (env,) = environments(cluster.endpoint, victim)
    assert env["environment_id"] == victim_id
    assert invoke(client, victim, {"n": "after"})["n"] == "after"


def test_public_views_show_no_runtime_credential(
    cluster: UpCluster, victim_and_attacker: tuple[str, str, str]
) -> None:
    client = cluster.client()
    victim, _, victim_id = victim_and_attacker
    # The function prints its variables, as a debugging user would.
    api = invoke(client, victim, {"n": "env", "print_env": True})["api"]
    host = api.rsplit(":", 1)[0]
    assert victim_id not in host
    credential = host.removeprefix("lf-")
    assert len(credential) >= 32
    deadline = time.monotonic() + 15
    while not any(
        "AWS_LAMBDA_RUNTIME_API" in e["message"] for e in log_events(cluster.endpoint, victim)
    ):
        assert time.monotonic() < deadline, "the printed variables never reached the log"
        time.sleep(0.2)
    logs = http_text(f"{cluster.endpoint}/_fleet/logs/{victim}")
    status = http_text(f"{cluster.endpoint}/_fleet/status")
    assert victim_id in status and victim_id in logs  # the public id is shown...
    assert credential not in logs and credential not in status  # ...the credential never
