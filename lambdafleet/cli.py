"""The `lambdafleet` command.

Every flag may also come from the environment as LAMBDAFLEET_<FLAG>, e.g.
LAMBDAFLEET_CONTROL_PLANE for --control-plane.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .control_plane.api import Settings

import structlog

from . import __version__, logs

log = structlog.get_logger("lambdafleet")

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "lambdafleet"


BACKENDS = ["docker", "fake"]
BACKEND_HELP = (
    "where functions run: docker, or fake (simulated sandboxes for tests, set by "
    "LAMBDAFLEET_FAKE_START_MS, _RUN_MS, _ERROR_RATE, _CRASH_RATE and _SEED)"
)


def _backend(args: argparse.Namespace) -> Any:
    """The worker's sandbox backend: None for Docker, else a fake one."""
    if args.backend != "fake":
        return None
    from .worker.backends import FakeBackend, FakeConfig

    return FakeBackend(FakeConfig.from_env())


def _api_settings(args: argparse.Namespace) -> Settings:
    """The control plane's API settings; LocalStack's variable name for the
    account's concurrency limit is honoured."""
    from .control_plane.api import Settings

    return Settings(
        s3_endpoint=args.s3_endpoint or "",
        bucket_marker_local=os.environ.get("BUCKET_MARKER_LOCAL", "hot-reload"),
        concurrent_executions=int(os.environ.get("LAMBDA_LIMITS_CONCURRENT_EXECUTIONS", "1000")),
        async_delay_scale=float(os.environ.get("LAMBDAFLEET_ASYNC_DELAY_SCALE", "1.0")),
    )


def _env(flag: str, default: Any) -> Any:
    return os.environ.get("LAMBDAFLEET_" + flag.lstrip("-").replace("-", "_").upper(), default)


def _add(parser: argparse.ArgumentParser, flag: str, default: Any, **kw: Any) -> None:
    parser.add_argument(flag, default=_env(flag, default), **kw)


def _add_security(parser: argparse.ArgumentParser, role: str) -> None:
    """The transport flags every part takes (see lambdafleet/security.py)."""
    cert_help = (
        "this part's certificate (PEM)"
        if role == "server"
        else "client certificate (PEM) for mutual TLS"
    )
    _add(parser, "--tls-cert", None, help=cert_help)
    _add(parser, "--tls-key", None, help="private key (PEM) of --tls-cert")
    ca_help = (
        "CA (PEM) that signs accepted client certificates"
        if role == "server"
        else "CA (PEM) that signed the control plane's certificate"
    )
    _add(parser, "--tls-ca", None, help=ca_help)
    _add(parser, "--token", None, help="shared token, sent or checked on every call (needs TLS)")
    _add(parser, "--token-file", None, help="file holding the shared token")
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=str(_env("--insecure", "")).lower() in ("1", "true", "yes"),
        help="accept plaintext gRPC on a non-loopback address (logged as a warning)",
    )


def _positive_int(raw: str) -> int:
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive integer")
    return int(text)


def _add_http_limits(parser: argparse.ArgumentParser) -> None:
    """The gateway's bounds on slow and idle clients (gateway/http_limits.py)."""
    from .gateway.http_limits import HttpLimits

    defaults = HttpLimits()
    _add(
        parser,
        "--http-idle-timeout-ms",
        int(defaults.idle_timeout_s * 1000),
        type=_positive_int,
        help="close a gateway connection whose next request's headers are not whole within this",
    )
    _add(
        parser,
        "--http-body-timeout-ms",
        int(defaults.body_timeout_s * 1000),
        type=_positive_int,
        help="a request body must arrive within this plus its length at --http-min-body-rate",
    )
    _add(
        parser,
        "--http-min-body-rate",
        defaults.min_body_rate,
        type=_positive_int,
        help="bytes per second a request body's deadline allows for its length",
    )
    _add(
        parser,
        "--http-max-connections",
        defaults.max_connections,
        type=_positive_int,
        help="gateway connections served at once; further clients wait to be accepted",
    )


def _http_limits(args: argparse.Namespace) -> Any:
    from .gateway.http_limits import HttpLimits

    return HttpLimits(
        idle_timeout_s=args.http_idle_timeout_ms / 1000,
        body_timeout_s=args.http_body_timeout_ms / 1000,
        min_body_rate=args.http_min_body_rate,
        max_connections=args.http_max_connections,
    )


def _transport(args: argparse.Namespace, role: str, address: str, part: str) -> Any:
    """The part's transport, or exit 2 saying what is missing."""
    from .security import Credentials, SecurityConfigError, Transport, read_token

    def path(value: str | None) -> Path | None:
        return Path(value).expanduser() if value else None

    try:
        creds = Credentials(
            cert=path(args.tls_cert),
            key=path(args.tls_key),
            ca=path(args.tls_ca),
            token=read_token(args.token, args.token_file),
            insecure=bool(args.insecure),
        )
        transport = Transport.build(creds, "server" if role == "server" else "client", address)
        for file in (creds.cert, creds.key, creds.ca):
            if file is not None and not file.is_file():
                raise SecurityConfigError(f"{file}: no such file")
    except (SecurityConfigError, OSError) as exc:
        log.error("transport.refused", part=part, error=str(exc))
        print(f"lambdafleet {part}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    transport.log_start(part)
    return transport


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambdafleet",
        description="An AWS Lambda emulator whose parts run on different hosts.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    _add(parser, "--log-level", "info", help="debug, info, warning or error")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="gateway, control plane and workers on this machine")
    _add(up, "--host", "127.0.0.1", help="address the gateway listens on")
    _add(up, "--port", 4566, type=int, help="port of the gateway")
    _add(up, "--data-dir", str(DEFAULT_DATA_DIR), help="where state survives restarts")
    _add(up, "--workers", 1, type=int, help="number of workers on the local Docker daemon")
    _add(up, "--account-id", "000000000000", help="default AWS account")
    _add(up, "--docker-host", None, help="Docker daemon URL (default: DOCKER_HOST or local)")
    _add(up, "--capacity", 64, type=int, help="environments per worker")
    _add(up, "--s3-endpoint", "", help="S3 endpoint for Code.S3Bucket/S3Key (e.g. MinIO)")
    _add(up, "--backend", "docker", choices=BACKENDS, help=BACKEND_HELP)
    _add_http_limits(up)

    cp = sub.add_parser("control-plane", help="run the control plane")
    _add(cp, "--listen", "0.0.0.0:4567", help="HOST:PORT for gRPC")
    _add(cp, "--data-dir", str(DEFAULT_DATA_DIR), help="where state survives restarts")
    _add(cp, "--heartbeat-ttl-ms", 10_000, type=int, help="worker heartbeat TTL")
    _add(cp, "--s3-endpoint", "", help="S3 endpoint for Code.S3Bucket/S3Key (e.g. MinIO)")
    _add_security(cp, "server")

    gw = sub.add_parser("gateway", help="run the AWS Lambda API gateway")
    _add(gw, "--control-plane", "127.0.0.1:4567", help="HOST:PORT of the control plane")
    _add(gw, "--host", "127.0.0.1", help="address to listen on")
    _add(gw, "--port", 4566, type=int, help="port to listen on")
    _add(gw, "--account-id", "000000000000", help="default AWS account")
    _add_http_limits(gw)
    _add_security(gw, "client")

    wk = sub.add_parser("worker", help="run a worker on a Docker daemon")
    _add(wk, "--control-plane", "127.0.0.1:4567", help="HOST:PORT of the control plane")
    _add(wk, "--docker-host", None, help="Docker daemon URL (default: DOCKER_HOST or local)")
    _add(
        wk,
        "--advertise-address",
        None,
        help="address at which function containers reach this worker's Runtime API "
        "(default: the gateway of the daemon's bridge network)",
    )
    _add(wk, "--runtime-api-port", 0, type=int, help="Runtime API port (0: any free port)")
    _add(
        wk,
        "--worker-id",
        "",
        help="stable id of this worker, unique among the live ones "
        "(default: the host name and the ID of its Docker daemon)",
    )
    _add(wk, "--capacity", 64, type=int, help="environments at once")
    _add(wk, "--cache-dir", None, help="where fetched code is cached")
    _add(wk, "--backend", "docker", choices=BACKENDS, help=BACKEND_HELP)
    _add_security(wk, "client")

    ct = sub.add_parser("certs", help="make a CA, control plane and client certificates")
    ct.add_argument("--out", required=True, help="directory to write the files to")
    ct.add_argument(
        "--hosts",
        default="",
        help="comma-separated names and addresses of the control plane "
        "(localhost and 127.0.0.1 are always added)",
    )
    ct.add_argument(
        "--clients", default="worker,gateway", help="comma-separated client certificate names"
    )

    lg = sub.add_parser("logs", help="a function's logs, from wherever it ran")
    lg.add_argument("function", help="function name")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    _add(lg, "--since", "", help="Unix ms, an ISO-8601 time, or a duration back like 10m")
    _add(lg, "--endpoint", "http://localhost:4566", help="the gateway's URL")
    _add(lg, "--region", "", help="the function's region (default us-east-1)")
    _add(lg, "--account-id", "", help="the function's account (default the gateway's)")

    images = sub.add_parser("images", help="runtime images")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    build = images_sub.add_parser("build", help="build local runtime images (offline)")
    build.add_argument("runtimes", nargs="*", default=["python3.11"])
    _add(build, "--docker-host", None, help="Docker daemon URL (default: DOCKER_HOST or local)")

    from . import loadgen

    loadgen.add_arguments(
        sub.add_parser(
            "bench",
            help="drive invocations of a function and print their latency, throughput and errors",
        )
    )

    st = sub.add_parser("status", help="the cluster at a glance: workers, environments, functions")
    _add(st, "--endpoint", "http://localhost:4566", help="the gateway's URL")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    return parser


async def _serve(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    failed: asyncio.Event | None = None,
) -> None:
    """Start, wait for SIGINT or SIGTERM (or `failed`), then stop cleanly."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await start()
        waits = [asyncio.create_task(stopping.wait())]
        if failed is not None:
            waits.append(asyncio.create_task(failed.wait()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if stopping.is_set():
            log.info("shutdown.requested")
    finally:
        await stop()


async def _up(args: argparse.Namespace) -> None:
    from .control_plane.server import ControlPlane
    from .gateway.server import Gateway
    from .worker.agent import Worker

    data_dir = Path(args.data_dir).expanduser()
    # All parts in one process, the gRPC port on 127.0.0.1 only: plaintext,
    # said once at start (see README, "Security between parts").
    log.warning(
        "transport.plaintext",
        part="up",
        reason="gateway, control plane and workers in one process over 127.0.0.1",
    )
    control_plane = ControlPlane(data_dir, "127.0.0.1:0", settings=_api_settings(args))
    workers: list[Worker] = []
    gateway: Gateway | None = None
    # Worker ids are stable for one data dir, so a restart after a crash
    # finds and removes the containers its previous run left behind.
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]

    async def start() -> None:
        nonlocal gateway
        await control_plane.start()
        address = f"127.0.0.1:{control_plane.port}"
        for i in range(args.workers):
            worker = Worker(
                control_plane=address,
                worker_id=f"up-{tag}-{i}",
                docker_host=args.docker_host,
                capacity=args.capacity,
                cache_dir=data_dir / f"worker-{i}" / "code",
                backend=_backend(args),
            )
            workers.append(worker)
            await worker.start()
        gateway = Gateway(
            address, args.host, int(args.port), args.account_id, limits=_http_limits(args)
        )
        await gateway.start()
        print(
            f"lambdafleet is up: http://{args.host}:{gateway.port} "
            f"({len(workers)} worker(s), data in {data_dir})",
            file=sys.stderr,
            flush=True,
        )

    async def stop() -> None:
        if gateway is not None:
            with contextlib.suppress(Exception):
                await gateway.stop()
        for worker in workers:
            try:
                await worker.stop()
            except Exception:
                log.exception("worker.stop_failed", worker_id=worker.worker_id)
        await control_plane.stop()

    await _serve(start, stop)


async def _control_plane(args: argparse.Namespace) -> None:
    from .control_plane.server import ControlPlane

    cp = ControlPlane(
        Path(args.data_dir).expanduser(),
        args.listen,
        int(args.heartbeat_ttl_ms),
        settings=_api_settings(args),
        transport=_transport(args, "server", args.listen, "control-plane"),
    )
    await _serve(cp.start, cp.stop)


async def _gateway(args: argparse.Namespace) -> None:
    from .gateway.server import Gateway

    transport = _transport(args, "client", args.control_plane, "gateway")
    gw = Gateway(
        args.control_plane,
        args.host,
        int(args.port),
        args.account_id,
        transport,
        limits=_http_limits(args),
    )
    await _serve(gw.start, gw.stop)


async def _worker(args: argparse.Namespace) -> int:
    from .worker.agent import Worker

    worker = Worker(
        control_plane=args.control_plane,
        worker_id=args.worker_id or "",
        docker_host=args.docker_host,
        advertise_address=args.advertise_address,
        runtime_api_port=int(args.runtime_api_port),
        capacity=int(args.capacity),
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        backend=_backend(args),
        transport=_transport(args, "client", args.control_plane, "worker"),
    )

    async def stop() -> None:
        if not worker.refused.is_set():
            # SIGTERM drains: in-flight invocations finish before the containers go.
            await worker.drain()
        await worker.stop()

    await _serve(worker.start, stop, worker.refused)
    if worker.refused.is_set():
        print(f"lambdafleet worker: {worker.refusal}", file=sys.stderr, flush=True)
        return 1
    return 0


def _images_build(args: argparse.Namespace) -> int:
    import docker

    from .progress import steps
    from .worker.images import build_runtime_image

    client = (
        docker.DockerClient(base_url=args.docker_host) if args.docker_host else docker.from_env()
    )
    for runtime in args.runtimes:
        # Steps go to stderr (a spinner when it is a terminal); the tag alone
        # goes to stdout, for scripts.
        with steps(f"building {runtime}", sys.stderr) as report:
            image = build_runtime_image(client, runtime, report)
        print(image, flush=True)
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from . import status

    try:
        view = status.fetch(args.endpoint)
    except status.StatusError as exc:
        print(f"lambdafleet status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        sys.stdout.write(status.render(view))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        return _run(args)
    except BrokenPipeError:
        # Whoever read our output is gone (`lambdafleet status --json | head`):
        # nothing more is worth saying. Python would report the failed flush of
        # what is still buffered at exit, so stdout goes to /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "images":
        return _images_build(args)
    if args.command == "bench":
        from . import loadgen

        return loadgen.main(args)
    if args.command == "certs":
        from .certs import write_bundle

        hosts = [h for h in args.hosts.split(",") if h.strip()]
        clients = tuple(c.strip() for c in args.clients.split(",") if c.strip())
        for file in write_bundle(Path(args.out), hosts, clients).values():
            print(file)
        return 0
    if args.command == "status":
        return _status(args)
    if args.command == "logs":
        from .logs_command import run

        return run(
            args.endpoint,
            args.function,
            since=args.since,
            follow=args.follow,
            region=args.region,
            account=args.account_id,
        )
    if args.command in ("up", "worker") and getattr(args, "backend", "docker") != "fake":
        from .worker.docker_flags import check_environment

        problem = check_environment()
        if problem:
            # Refused at start, before anything runs: a flag dropped silently
            # would surface only as a function behaving differently.
            print(f"lambdafleet {args.command}: {problem}", file=sys.stderr)
            return 2
    if args.command == "worker":
        return asyncio.run(_worker(args))
    runners = {
        "up": _up,
        "control-plane": _control_plane,
        "gateway": _gateway,
    }
    from .control_plane.data_dir_lock import DataDirInUseError
    from .control_plane.server import ListenError
    from .gateway.server import PortInUseError

    try:
        asyncio.run(runners[args.command](args))
    except (PortInUseError, ListenError, DataDirInUseError) as exc:
        # What was started is stopped by then (_serve); one line says why.
        print(f"lambdafleet {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
