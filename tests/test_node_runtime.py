"""lambdafleet's Node.js runtime client (worker/runtime_image/node-runtime.mjs)
in its built image, against a Runtime API served by this test: what it posts
(bodies and headers), the context it builds from the invocation's headers,
and its console lines, which the cluster tests cannot see."""

from __future__ import annotations

import asyncio
import io
import json
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import docker.errors
import pytest
from lambdafleet.worker.images import ImageResolver, build_runtime_image, local_image
from test_images import bridge_gateway

RUNTIME = "nodejs20.x"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"

HANDLERS = """
exports.context = async (event, context) => {
  console.log("line one\\nline two", { n: 1 });
  console.warn("careful");
  return {
    clientContext: context.clientContext,
    identity: context.identity,
    remaining: context.getRemainingTimeInMillis(),
    memory: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
    trace: process.env._X_AMZN_TRACE_ID,
  };
};
exports.fails = (event, context, callback) => callback(new TypeError("bad input"));
exports.legacy = (event, context) => context.succeed({ legacy: true });
"""


class ScriptedRuntimeAPI:
    """Serves `events` one by one, then parks the runtime; records posts."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = list(events)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.done = threading.Event()
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if not api.events:
                    api.done.set()
                    api.release.wait(30)
                    self.send_error(503)
                    return
                event = api.events.pop(0)
                body = json.dumps(event["body"]).encode()
                self.send_response(200)
                for name, value in event["headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                api.posts.append((self.path, dict(self.headers), body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if self.path.endswith("/init/error"):
                    api.done.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedRuntimeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def invocation(request_id: str, body: Any, **headers: str) -> dict[str, Any]:
    return {
        "body": body,
        "headers": {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-abc;Sampled=0",
            **headers,
        },
    }


@pytest.fixture(scope="module")
def node_image() -> Iterator[tuple[docker.DockerClient, str]]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"a Docker daemon is required for runtime image tests: {exc}")
    image = asyncio.run(ImageResolver(None, client).ensure(RUNTIME))
    if image != local_image(RUNTIME):
        image = build_runtime_image(client, RUNTIME)  # the official one was reachable
    yield client, image
    client.close()


def run(
    node_image: tuple[docker.DockerClient, str], handler: str, events: list[dict[str, Any]]
) -> tuple[ScriptedRuntimeAPI, str]:
    client, image = node_image
    code = io.BytesIO()
    with tarfile.open(fileobj=code, mode="w") as tar:
        data = HANDLERS.encode()
        info = tarfile.TarInfo("index.js")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    with ScriptedRuntimeAPI(events) as api:
        address = f"{bridge_gateway(client)}:{api.server.server_address[1]}"
        container = client.containers.create(
            image,
            command=[handler],
            user="993:990",
            environment={
                "AWS_LAMBDA_RUNTIME_API": address,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            },
        )
        try:
            assert container.put_archive("/var/task", code.getvalue())
            container.start()
            finished = api.done.wait(60)
            output = container.logs().decode(errors="replace")
            assert finished, f"the runtime did not finish; output:\n{output}"
        finally:
            container.remove(force=True)
    return api, output


def test_context_logs_and_response(node_image: tuple[docker.DockerClient, str]) -> None:
    request_id = str(uuid.uuid4())
    client_context = {"client": {"app_title": "t"}, "custom": {"k": "v"}}
    api, output = run(
        node_image,
        "index.context",
        [
            invocation(
                request_id,
                {"x": 1},
                **{
                    "Lambda-Runtime-Client-Context": json.dumps(client_context),
                    "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-1"}),
                },
            )
        ],
    )
    ((path, _, body),) = api.posts
    assert path == f"/2018-06-01/runtime/invocation/{request_id}/response"
    answer = json.loads(body)
    assert answer["clientContext"] == client_context
    assert answer["identity"] == {"cognitoIdentityId": "id-1"}
    assert 0 < answer["remaining"] <= 60_000
    assert answer["memory"] == "256"
    assert answer["arn"] == ARN
    assert answer["trace"] == "Root=1-00000000-abc;Sampled=0"
    # AWS's console format: time, request id, level, message; a newline in
    # a message becomes \r so that one call stays one log line.
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.search(rf"^{stamp}\t{request_id}\tINFO\tline one\rline two {{ n: 1 }}$", output, re.M)
    assert re.search(rf"^{stamp}\t{request_id}\tWARN\tcareful$", output, re.M)


def test_errors_carry_their_type_in_the_header(node_image: tuple[docker.DockerClient, str]) -> None:
    request_id = str(uuid.uuid4())
    api, output = run(node_image, "index.fails", [invocation(request_id, {})])
    ((path, headers, body),) = api.posts
    assert path == f"/2018-06-01/runtime/invocation/{request_id}/error"
    assert headers["Lambda-Runtime-Function-Error-Type"] == "TypeError"
    document = json.loads(body)
    assert document["errorType"] == "TypeError" and document["errorMessage"] == "bad input"
    assert document["trace"][0] == "TypeError: bad input"
    assert f"\t{request_id}\tERROR\tInvoke Error \t" in output


def test_legacy_context_succeed_and_several_invocations(
    node_image: tuple[docker.DockerClient, str],
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    api, _ = run(node_image, "index.legacy", [invocation(i, {"n": n}) for n, i in enumerate(ids)])
    assert [path for path, _, _ in api.posts] == [
        f"/2018-06-01/runtime/invocation/{i}/response" for i in ids
    ]
    assert all(json.loads(body) == {"legacy": True} for _, _, body in api.posts)


def test_init_error_is_posted_before_any_invocation(
    node_image: tuple[docker.DockerClient, str],
) -> None:
    api, output = run(node_image, "index.missing", [invocation(str(uuid.uuid4()), {})])
    ((path, headers, body),) = api.posts
    assert path == "/2018-06-01/runtime/init/error"
    assert headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.HandlerNotFound"
    assert json.loads(body)["errorMessage"] == "index.missing is undefined or not exported"
    # Before the first invocation the request id is "undefined", as on AWS.
    assert "\tundefined\tERROR\tUncaught Exception \t" in output
