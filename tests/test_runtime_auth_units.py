"""The Runtime API's authentication (worker/runtime_auth.py): the pure parts,
then the worker's Runtime and Extensions API served in-process to two
environments, one of them probing the other with what public views show."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import tornado.httpclient
from lambdafleet.worker import runtime_api
from lambdafleet.worker.environment import Environment, Invocation, describe
from lambdafleet.worker.environment_log import HIDDEN_MARK
from lambdafleet.worker.prestart import Bucket, Prestart, PrestartConfig, Prestarted
from lambdafleet.worker.runtime_auth import (
    HOST_PREFIX,
    RuntimeCredential,
    authenticate,
    presented_secret,
    route_of,
)

from lambdafleet.agent.v1 import agent_pb2 as apb

ARN = "arn:aws:lambda:us-east-1:000000000000:function:{}"


def spec(name: str) -> apb.FunctionSpec:
    return apb.FunctionSpec(
        function_arn=ARN.format(name),
        function_name=name,
        version="$LATEST",
        runtime="python3.11",
        handler="app.handler",
        memory_size=128,
        timeout=5,
    )


def test_a_credential_is_a_long_random_host_label() -> None:
    a, b = RuntimeCredential(), RuntimeCredential()
    assert a.secret != b.secret
    assert len(bytes.fromhex(a.secret)) * 8 >= 128
    # A host name label: at most 63 characters, lowercase letters and digits.
    assert a.hostname == HOST_PREFIX + a.secret and len(a.hostname) <= 63
    assert a.route == route_of(a.secret) and a.secret not in a.route
    assert a.secret not in repr(a)
    assert a.admits(a.secret) and not a.admits(b.secret) and not a.admits("")


@pytest.mark.parametrize(
    "header,expected",
    [
        ("lf-{s}:9001", "{s}"),
        ("lf-{s}", "{s}"),
        ("LF-{S}:9001", "{s}"),  # host names are case-insensitive
        (" lf-{s}:9001 ", "{s}"),
        ("", None),
        ("127.0.0.1:9001", None),
        ("{s}:9001", None),  # no prefix
        ("lf-{s}x:9001", None),
        ("lf-{s}:9001,lf-{s}:9001", None),  # two Host headers, joined by Tornado
        ("lf-0123456789abcdef0123456789abcdef:9001", None),  # an id's length
    ],
)
def test_presented_secret(header: str, expected: str | None) -> None:
    secret = RuntimeCredential().secret
    filled = header.format(s=secret, S=secret.upper())
    assert presented_secret(filled) == (expected.format(s=secret) if expected else None)


def test_authenticate_finds_exactly_the_holder_of_the_secret() -> None:
    a, b = RuntimeCredential(), RuntimeCredential()
    table = {a.route: "A", b.route: "B"}

    def find(header: str, by_route: dict[str, str] = table) -> str | None:
        return authenticate(header, by_route, lambda h: a if h == "A" else b)

    assert find(f"{a.hostname}:9001") == "A"
    assert find(f"{b.hostname}:9001") == "B"
    assert find(f"{HOST_PREFIX}{RuntimeCredential().secret}:9001") is None
    assert find("") is None
    # Filed under a route its credential does not admit (a table gone
    # wrong): refused by the final comparison, not trusted for the digest.
    assert find(f"{a.hostname}:9001", {a.route: "B"}) is None


def test_public_views_of_an_environment_hold_no_secret() -> None:
    async def run() -> None:
        env = Environment(spec("f"), "key")
        secret = env.credential.secret
        assert env.id != secret and secret not in env.id
        assert env.hostname == env.credential.hostname and env.id not in env.hostname
        assert secret not in env.log.log_stream
        assert secret not in str(describe(env))

    asyncio.run(run())


def test_the_runtime_credential_is_written_over_in_the_log() -> None:
    async def run() -> None:
        env = Environment(spec("f"), "key")
        lines: list[apb.LogLine] = []
        env.log.emit = lines.append
        env.log.begin("r1")
        api = f"AWS_LAMBDA_RUNTIME_API={env.hostname}:9001"
        env.log.output("stdout", f"{api}\n".encode(), 0.0)
        assert lines[-1].message == f"AWS_LAMBDA_RUNTIME_API={HOST_PREFIX}{HIDDEN_MARK}:9001"
        assert env.credential.secret not in env.log.tail("r1")

    asyncio.run(run())


def test_a_prestarted_container_is_found_by_its_credential_only() -> None:
    async def run() -> None:
        pool = Prestart(
            config=PrestartConfig(),
            containers=None,  # type: ignore[arg-type]
            images=None,  # type: ignore[arg-type]
            start_slots=asyncio.Semaphore(1),
            runtime_api_host="127.0.0.1",
            runtime_api_port=lambda: 9001,
            room=lambda: 1,
        )
        pre = Prestarted(Bucket("python3.11", 128), container_id="c1")
        pool.idle[pre.route] = pre
        assert pool.lookup(f"{pre.hostname}:9001") is pre
        assert pool.lookup(f"{HOST_PREFIX}{pre.id}:9001") is None
        assert pool.take(pre.bucket) is pre
        assert pool.lookup(f"{pre.hostname}:9001") is pre  # claimed, not yet answered
        # Bound, the environment keeps the container's id and credential.
        env = Environment(spec("f"), "key", pre.id, pre.credential)
        assert env.hostname == pre.hostname and env.id == pre.id

    asyncio.run(run())


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 10 s) for a request to have reached the server."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in time")


class Worker:
    """The worker's Runtime API server with environments A and B."""

    def __init__(self) -> None:
        self.a = Environment(spec("a"), "ka")
        self.b = Environment(spec("b"), "kb")
        table = {e.route: e for e in (self.a, self.b)}
        self.server, self.port = runtime_api.serve(
            lambda host: authenticate(host, table, lambda e: e.credential), "127.0.0.1", 0
        )
        self.http = tornado.httpclient.AsyncHTTPClient()

    async def call(
        self, method: str, path: str, host: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, bytes]:
        response = await self.http.fetch(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            body=body if method == "POST" else None,
            headers={"Host": host, **headers},
            raise_error=False,
            request_timeout=10,
        )
        return response.code, response.body or b""

    def host(self, text: str) -> str:
        return f"{text}:{self.port}"

    def close(self) -> None:
        self.server.stop()


def test_one_environment_cannot_read_answer_or_end_anothers_invocations() -> None:
    next_path = f"{runtime_api.PREFIX}/invocation/next"

    async def run() -> None:
        worker = Worker()
        a, b = worker.a, worker.b
        b_host = worker.host(b.hostname)
        # What A knows of B: its public id, in every form a Host can take.
        forged = [worker.host(f"lf-{b.id}"), worker.host(b.id), f"lf-{b.id}", "", "127.0.0.1"]
        try:
            # B's runtime waits for work.
            b_poll = asyncio.ensure_future(worker.call("GET", next_path, b_host))
            await until(lambda: b._waiter is not None)
            for host in forged:
                status, _ = await worker.call("GET", next_path, host)
                assert status == 403, host
            # B's runtime is still the one waiting: nothing cancelled it.
            assert not b_poll.done() and b._waiter is not None and not b._waiter.done()

            invocation = Invocation("rb", b'{"for": "B"}', 2**42, ARN.format("b"), "")
            b.invoke(invocation)
            status, event = await b_poll
            assert (status, event) == (200, b'{"for": "B"}')

            response = f"{runtime_api.PREFIX}/invocation/rb/response"
            error = f"{runtime_api.PREFIX}/invocation/rb/error"
            for host in forged:
                for path in (response, error, f"{runtime_api.PREFIX}/init/error"):
                    status, _ = await worker.call("POST", path, host, b'{"forged": 1}')
                    assert status == 403, (host, path)
                for path, body in (
                    ("/2020-01-01/extension/register", b'{"events": ["INVOKE"]}'),
                    ("/lambdafleet/v1/extensions?expected=1", b""),
                ):
                    status, _ = await worker.call(
                        "POST", path, host, body, **{"Lambda-Extension-Name": "x"}
                    )
                    assert status == 403, (host, path)
            # With its own credential, A names B's invocation: not its own.
            a_host = worker.host(a.hostname)
            for path in (response, error):
                status, body = await worker.call("POST", path, a_host, b'{"forged": 1}')
                assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"
            assert not invocation.answer.done() and b.current is invocation
            assert not b.extensions.extensions and b.extensions.expected == 0

            status, _ = await worker.call("POST", response, b_host, b'{"from": "B"}')
            assert status == 202
            assert (await invocation.answer).payload == b'{"from": "B"}'
            # A's own credential still serves A.
            a_poll = asyncio.ensure_future(worker.call("GET", next_path, a_host))
            await until(lambda: a._waiter is not None)
            a.stop("test over")
            assert (await a_poll)[0] == 410
        finally:
            worker.close()

    asyncio.run(run())


def test_a_stranger_is_refused_the_binding_of_a_prestarted_container() -> None:
    async def run() -> None:
        pool = Prestart(
            config=PrestartConfig(),
            containers=None,  # type: ignore[arg-type]
            images=None,  # type: ignore[arg-type]
            start_slots=asyncio.Semaphore(1),
            runtime_api_host="127.0.0.1",
            runtime_api_port=lambda: 9001,
            room=lambda: 1,
        )
        pre = Prestarted(Bucket("python3.11", 128), container_id="c1")
        pool.idle[pre.route] = pre
        server, port = runtime_api.serve(lambda host: None, "127.0.0.1", 0, lambda: pool)
        http = tornado.httpclient.AsyncHTTPClient()

        async def bind(host: str) -> Any:
            return await http.fetch(
                f"http://127.0.0.1:{port}{runtime_api.BIND_PATH}?format=sh",
                headers={"Host": f"{host}:{port}"},
                raise_error=False,
                request_timeout=10,
            )

        try:
            assert (await bind(f"lf-{pre.id}")).code == 403
            assert not pre.ready
            waiting = asyncio.ensure_future(bind(pre.hostname))
            await until(lambda: pre.ready)
            pre.bind("app.handler", {"A": "1"})
            answer = await waiting
            assert answer.code == 200 and b"export A=1\n" in answer.body
        finally:
            server.stop()

    asyncio.run(run())
