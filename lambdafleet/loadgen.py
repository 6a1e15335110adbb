"""`lambdafleet bench`: a load generator for functions, in lambdafleet or
in AWS Lambda itself.

It speaks the Lambda Invoke API directly over keep-alive HTTP connections
(aiohttp), each request signed with SigV4 as an SDK would sign it, so that
on a machine shared with the system under test the generator costs as little
as it can: boto3 spends about a millisecond of CPU per call, which would cap
the rate it can drive well below what lambdafleet answers.

Two ways to drive:
- closed loop (the default): `--concurrency` callers, each invoking again as
  soon as its answer arrives;
- open loop (`--rate R`): invocations are due at a steady R per second, at
  most `--concurrency` in flight; latency counts from when an invocation was
  due, so a slow system is not hidden by callers waiting on it.

Cold starts are told by the gateway's `Server-Timing: init` entry, or, with
`--log-tail` (for AWS), by `Init Duration` in the REPORT line of the tail.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import server_timing
from .loadstats import (
    Sample,
    Summary,
    function_error,
    parse_duration,
    progress_line,
    render,
    send_times,
    summarise,
)

DEFAULT_DURATION_S = 10.0


class BenchStopped(Exception):
    """An answer ended the run: every further invocation would get it too."""


@dataclass(frozen=True)
class Target:
    endpoint: str
    region: str
    function: str
    qualifier: str
    payload: bytes
    log_tail: bool
    invocation_type: str = "RequestResponse"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("function", help="function name or ARN")
    parser.add_argument("--qualifier", default="", help="version or alias")
    parser.add_argument(
        "--invocation-type",
        default="RequestResponse",
        choices=["RequestResponse", "Event"],
        help="Event: asynchronous invocations (a 202 is a success)",
    )
    payload = parser.add_mutually_exclusive_group()
    payload.add_argument("--payload", default="{}", help="the event, as JSON")
    payload.add_argument("--payload-file", help="a file holding the event")
    parser.add_argument("--concurrency", type=int, default=8, help="invocations in flight")
    parser.add_argument("--rate", type=float, help="invocations per second (open loop)")
    parser.add_argument("--count", type=int, help="stop after this many invocations")
    parser.add_argument(
        "--duration", help=f"stop after this long, e.g. 30s (default {DEFAULT_DURATION_S:g}s)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="invocations first (at the same concurrency), not counted",
    )
    parser.add_argument("--endpoint", default="http://localhost:4566", help="Lambda endpoint")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--log-tail", action="store_true", help="ask for LogType=Tail (cold starts on AWS)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--plot", help="write a latency-over-time picture to this PNG")


def _credentials() -> Any:
    """The caller's AWS credentials as an SDK finds them; any will do for
    lambdafleet, so without any the generator signs as `test`."""
    import botocore.credentials
    import botocore.session

    found = botocore.session.get_session().get_credentials()
    return found or botocore.credentials.Credentials("test", "test")


# How long one SigV4 signature of the (unchanging) request is reused.
SIGNATURE_REUSE_S = 1.0


def fatal_error(status: int, body: bytes, error_type: str) -> str | None:
    """The error that ends a run at once, or None: a refusal no later
    invocation of the same request can change (no such function, a bad
    name or payload, no access), not a throttle (429), a function still
    Pending (409) or a service error (5xx), which a run counts."""
    if not 400 <= status < 500 or status in (409, 429):
        return None
    code = error_type.split(":", 1)[0] or f"HTTP {status}"
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    message = ""
    if isinstance(document, dict):
        message = str(document.get("message") or document.get("Message") or "")
    return f"{code}: {message}" if message else code


class Invoker:
    """Signs and sends one invocation at a time; share it between callers."""

    def __init__(self, target: Target, session: Any) -> None:
        from botocore.auth import SigV4Auth

        self.target = target
        self.session = session
        self.signer = SigV4Auth(_credentials(), "lambda", target.region)
        name = urllib.parse.quote(target.function, safe="")
        query = f"?Qualifier={urllib.parse.quote(target.qualifier)}" if target.qualifier else ""
        self.url = f"{target.endpoint.rstrip('/')}/2015-03-31/functions/{name}/invocations{query}"
        self.headers = {"X-Amz-Invocation-Type": target.invocation_type}
        if target.log_tail:
            self.headers["X-Amz-Log-Type"] = "Tail"
        self._signed: tuple[float, dict[str, str]] | None = None
        # Set by the first answer that ends the run (fatal_error).
        self.fatal: str | None = None

    def _signed_headers(self) -> dict[str, str]:
        # Every request is the same, and SigV4 signs time to the second: a
        # signature is reused for up to a second, as an SDK sending the same
        # request again within that second would compute it anew, byte for
        # byte. Signing each request would cost the generator more CPU than
        # the system under test spends on it.
        now = time.monotonic()
        if self._signed is None or now - self._signed[0] >= SIGNATURE_REUSE_S:
            from botocore.awsrequest import AWSRequest

            request = AWSRequest("POST", self.url, data=self.target.payload, headers=self.headers)
            self.signer.add_auth(request)
            self._signed = (now, dict(request.headers.items()))
        return self._signed[1]

    async def invoke(self, started_s: float, t0: float) -> Sample:
        """One invocation; `t0` is when it counts from (perf_counter)."""
        import aiohttp

        error, cold = "", False
        try:
            async with self.session.post(
                self.url, data=self.target.payload, headers=self._signed_headers()
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    kind = response.headers.get("x-amzn-ErrorType", "")
                    error = kind.split(":", 1)[0] or f"HTTP {response.status}"
                    self.fatal = self.fatal or fatal_error(response.status, body, kind)
                elif response.headers.get("X-Amz-Function-Error"):
                    error = function_error(body)
                cold = _cold_start(response.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = type(exc).__name__
        return Sample(started_s, (time.perf_counter() - t0) * 1000, error, cold)


def _cold_start(headers: Any) -> bool:
    if "init" in server_timing.parse(headers.get("Server-Timing", "")):
        return True
    tail = headers.get("X-Amz-Log-Result")
    if tail:
        try:
            return "Init Duration" in base64.b64decode(tail).decode(errors="replace")
        except ValueError:
            return False
    return False


async def run(
    target: Target,
    *,
    concurrency: int,
    rate: float | None,
    count: int | None,
    duration_s: float | None,
    warmup: int = 0,
    progress: bool = False,
) -> tuple[list[Sample], float]:
    """Drive invocations; answer the samples and the run's length (s)."""
    import aiohttp

    if count is None and duration_s is None:
        duration_s = DEFAULT_DURATION_S
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=960)
    samples: list[Sample] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        invoker = Invoker(target, session)
        if warmup:
            # As many at once as the run has, so its environments are up.
            await _closed_loop(invoker, [], time.perf_counter(), concurrency, warmup, None)
            if invoker.fatal is not None:
                raise BenchStopped(invoker.fatal)
        start = time.perf_counter()
        deadline = start + duration_s if duration_s is not None else None
        reporter = asyncio.create_task(_report(samples, start)) if progress else None
        try:
            if rate is None:
                await _closed_loop(invoker, samples, start, concurrency, count, deadline)
            else:
                await _open_loop(invoker, samples, start, concurrency, rate, count, deadline)
        finally:
            if reporter is not None:
                reporter.cancel()
                print(file=sys.stderr)
        if invoker.fatal is not None:
            raise BenchStopped(invoker.fatal)
        return samples, time.perf_counter() - start


async def _closed_loop(
    invoker: Invoker,
    samples: list[Sample],
    start: float,
    concurrency: int,
    count: int | None,
    deadline: float | None,
) -> None:
    issued = 0

    async def caller() -> None:
        nonlocal issued
        while (
            invoker.fatal is None
            and (count is None or issued < count)
            and (deadline is None or time.perf_counter() < deadline)
        ):
            issued += 1
            t0 = time.perf_counter()
            samples.append(await invoker.invoke(t0 - start, t0))

    await asyncio.gather(*(caller() for _ in range(max(1, concurrency))))


async def _open_loop(
    invoker: Invoker,
    samples: list[Sample],
    start: float,
    concurrency: int,
    rate: float,
    count: int | None,
    deadline: float | None,
) -> None:
    if count is None:
        assert deadline is not None
        count = int((deadline - start) * rate)
    slots = asyncio.Semaphore(max(1, concurrency))
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float) -> None:
        try:
            samples.append(await invoker.invoke(due - start, due))
        finally:
            slots.release()

    for offset in send_times(rate, count):
        if invoker.fatal is not None:
            break
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()  # all in flight: the next waits, its latency grows
        if invoker.fatal is not None:
            slots.release()
            break
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def _report(samples: list[Sample], start: float) -> None:
    while True:
        await asyncio.sleep(0.5)
        line = progress_line(samples, time.perf_counter() - start)
        print(f"\r{line}", end="", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    payload = Path(args.payload_file).read_bytes() if args.payload_file else args.payload.encode()
    target = Target(
        endpoint=args.endpoint,
        region=args.region,
        function=args.function,
        qualifier=args.qualifier,
        payload=payload,
        log_tail=args.log_tail,
        invocation_type=args.invocation_type,
    )
    try:
        duration = parse_duration(args.duration) if args.duration else None
    except ValueError as exc:
        print(f"lambdafleet bench: {exc}", file=sys.stderr)
        return 2
    try:
        samples, elapsed = asyncio.run(
            run(
                target,
                concurrency=args.concurrency,
                rate=args.rate,
                count=args.count,
                duration_s=duration,
                warmup=args.warmup,
                progress=sys.stderr.isatty(),
            )
        )
    except BenchStopped as exc:
        print(f"lambdafleet bench: {exc}", file=sys.stderr)
        return 1
    summary = summarise(samples, elapsed)
    summary.extra.update(
        {
            "function": args.function,
            "qualifier": args.qualifier,
            "concurrency": args.concurrency,
            "rate": args.rate,
        }
    )
    if args.plot:
        from .loadplot import plot

        plot(samples, Path(args.plot), title=_title(args, summary))
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        print(render(summary, _title(args, summary)))
    return 0


def _title(args: argparse.Namespace, summary: Summary) -> str:
    qualified = f"{args.function}:{args.qualifier}" if args.qualifier else args.function
    drive = f"rate {args.rate:g}/s" if args.rate else "closed loop"
    return f"{qualified}, concurrency {args.concurrency}, {drive}, {summary.count} invocations"
