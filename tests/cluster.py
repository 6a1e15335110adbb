"""Real lambdafleet processes for tests: started as a user starts them, on
free ports, torn down with SIGTERM exactly as an operator would."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import docker
from botocore.config import Config

from lambdafleet.service_model import DATA_PATH


def containers(**filters: str) -> list[dict[str, Any]]:
    """Containers on the local daemon as (id, labels) records; the client is
    closed at once so no socket outlives the call."""
    client = docker.from_env()
    try:
        # sparse: the list call alone, no inspect per container, which would
        # race with a worker removing one (404 between list and inspect).
        found = client.containers.list(all=True, filters=filters, sparse=True)
        return [
            {
                "id": c.id,
                "labels": dict(c.attrs.get("Labels") or {}),
                "name": (c.attrs.get("Names") or ["/"])[0].lstrip("/"),
            }
            for c in found
        ]
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """One `lambdafleet ...` command running in the background."""

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ):
        self.args = list(args)
        # What runs the command elsewhere, e.g. `ip netns exec NS`.
        self.wrapper = list(wrapper)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.wrapper, sys.executable, "-m", "lambdafleet.cli", *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
            raise AssertionError(f"{self.args[0]} did not stop within {timeout}s") from None
        finally:
            self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_healthy(endpoint: str, timeout: float = 120, workers: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/_fleet/health", timeout=2) as resp:
                body: dict[str, Any] = json.loads(resp.read())
                if body.get("workers", 0) >= workers:
                    return body
                last = body
        except urllib.error.HTTPError as exc:
            # 503 until a worker is live; the error holds the open response.
            with exc:
                last = exc.read()
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{endpoint} not healthy within {timeout}s: {last}")


def fleet_status(endpoint: str) -> dict[str, Any]:
    """GET /_fleet/status: the workers and their environments."""
    with urllib.request.urlopen(f"{endpoint}/_fleet/status", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


def environments(endpoint: str, function_name: str | None = None) -> list[dict[str, Any]]:
    """Every environment the cluster runs (of `function_name` when given),
    each with its `worker_id`: the only way to find a function's container,
    since one bound from the pre-started pool carries no function label."""
    found = []
    for worker in fleet_status(endpoint)["workers"]:
        for env in worker["environments"]:
            if function_name is None or env["function_arn"].split(":")[6] == function_name:
                found.append({**env, "worker_id": worker["worker_id"]})
    return found


# Every client a test makes stays referenced until the session closes it: one
# collected with a live connection would raise an unclosed-socket warning
# inside whichever test happened to be running.
CLIENTS: list[Any] = []


def close_clients() -> None:
    while CLIENTS:
        CLIENTS.pop().close()


def lambda_client(
    endpoint: str, region: str = "us-east-1", access_key: str = "test", shipped_model: bool = False
) -> Any:
    """A boto3 Lambda client; an access key of twelve digits selects that account.

    It speaks the model of the installed botocore, as a user's client does;
    with `shipped_model`, lambdafleet's own (every operation lambdafleet
    serves, however old the installed botocore)."""
    session = botocore.session.Session()
    if shipped_model:
        session.get_component("data_loader").search_paths.insert(0, str(DATA_PATH))
    client = boto3.Session(botocore_session=session).client(
        "lambda",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )
    CLIENTS.append(client)
    return client


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


ECHO_HANDLER = """
import os

def handler(event, context):
    return {
        "event": event,
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "request_id": context.aws_request_id,
        "user": os.getuid(),
    }
"""

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def role_of(account: str) -> str:
    """A role of `account`: AWS gives a function only a role of its own account."""
    return f"arn:aws:iam::{account}:role/lambda-role"


def create_echo(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    """An Active echo function; `extra` may replace any member (Role: a
    client of another account must name a role of its own)."""
    request: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_bytes({"app.py": ECHO_HANDLER})},
        **extra,
    }
    response: dict[str, Any] = client.create_function(**request)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    return response


def create_fleet_functions(endpoint: str, prefix: str, count: int) -> list[str]:
    """`count` Active functions returning their event (fake-backend fleets,
    and bursts of cold starts of new functions).

    The fake sandboxes run on the test's own event loop beside many workers
    and callers; on a loaded machine a loop stall of a few seconds must not
    turn a run of milliseconds into a function timeout, hence Timeout=60.
    """
    client = lambda_client(endpoint)
    names = [f"{prefix}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    for name in names:
        client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_bytes({"app.py": "def handler(e, c): return e"})},
            Timeout=60,
        )
    for name in names:
        client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )
    return names
