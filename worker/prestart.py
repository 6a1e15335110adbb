"""Pre-started environments: containers of a runtime image, started before
any function exists, waiting to be bound to one.

A cold invocation whose runtime, memory size, architecture, ephemeral storage
and image match a bucket takes one of its containers instead of creating one.
Binding answers the container's pending request to the worker's Runtime
API server (`GET /lambdafleet/v1/bind`, see runtime_api.py) with the
function's variables, and in Python images its code and layers, which the
waiting process (root until then) unpacks into /var/task and /opt; in the
others the pool copies them in with Docker first. The waiting process then
exports the variables and execs the launcher (worker/launcher.py:
extensions, then the image's `/lambda-entrypoint.sh <handler>`) as the
sandbox user, exactly what a fresh container runs. So the code is in place
before the runtime starts, and the runtime cannot write /var/task
(root-owned, as put_archive writes).

Only images lambdafleet builds (`lambdafleet/runtime:<runtime>`) are
pre-started: official AWS images bring their own entrypoint, which knows
nothing of binding, so their functions take the normal path.

Which buckets: fixed ones from LAMBDAFLEET_PRESTART, and by default the
ones this worker has cold-started most recently (learned, see AUTO_COUNT).

The pure decisions (configuration, which bucket an invocation matches, what to
refill) are module functions, tested directly; `Prestart` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from lambdafleet.agent.v1 import agent_pb2 as apb

from .backends import Images, Sandboxes
from .containers import LABEL_PRESTART, SANDBOX_USER
from .image_recipes import RECIPES
from .images import local_image
from .launcher import FENCE, LAUNCH
from .runtime_auth import RuntimeCredential, authenticate

log = structlog.get_logger(__name__)

ENV_VAR = "LAMBDAFLEET_PRESTART"
ARCHITECTURE = "x86_64"  # what workers register; FunctionSpec carries none yet
DEFAULT_EPHEMERAL_MB = 512
BIND_PATH = "/lambdafleet/v1/bind"

# The process a pre-started container runs until it is bound: it holds one
# request to the bind endpoint open, then takes on the function's variables
# and becomes the image's entrypoint. A 410 (the pool let it go) ends it.
#
# In Python images it runs as root until then: the answer carries the code
# and layers too (`?format=archives`: the binding as a JSON line, then the
# tars), which it unpacks into /var/task and /opt as root, as Docker's
# put_archive would, in a few milliseconds instead of that call's 50 or more;
# then it becomes the sandbox user, exactly as Docker starts a fresh
# container (its uid, its gid as its only group, HOME=/), and execs.
#
# While it is root, nothing of the function's may run: Python is isolated
# (-I: no current folder or PYTHON* variables on the path), it works from /,
# everything it imports is imported before the first file is unpacked (the
# tars are read as plain tar streams, so no decompressor is loaded later),
# and any failure ends it with os._exit, which imports nothing (a traceback
# would import `traceback`, perhaps the function's). The tars are streamed
# from the answer, never held whole: a pooled container's memory limit is
# the function's.
#
# Until it execs the launcher it is its own stdin fence (worker/launcher.py):
# a thread ends it when stdin ends (the worker gone). And a worker gone while
# it waits ends it too: only connecting is retried, for BIND_CONNECT_S, not a
# request the worker had taken.
BIND_CONNECT_S = 30
WAIT_FOR_BIND = f"""\
import http.client, json, os, stat, sys, tarfile, threading, time
host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
workdir = os.getcwd()
os.chdir("/")


def fence():
    while os.read(0, 65536):
        pass
    os._exit(0)


if stat.S_ISFIFO(os.fstat(0).st_mode):
    threading.Thread(target=fence, daemon=True).start()


class Part:
    \"\"\"The next `size` bytes of the answer, as a file.\"\"\"

    def __init__(self, resp, size):
        self.resp, self.left = resp, size

    def read(self, n=-1):
        n = self.left if n < 0 or n > self.left else n
        data = self.resp.read(n) if n else b""
        if n and not data:
            raise EOFError("the binding was cut short")
        self.left -= len(data)
        return data


give_up = time.monotonic() + {BIND_CONNECT_S}
while True:
    conn = http.client.HTTPConnection(host, int(port))
    try:
        conn.connect()
        break
    except OSError:
        if time.monotonic() > give_up:
            os._exit(0)
        time.sleep(0.1)
try:
    conn.request("GET", "{BIND_PATH}?format=archives")
    resp = conn.getresponse()
except Exception:  # the worker went while it waited: nothing to wait for
    os._exit(0)
if resp.status != 200:
    os._exit(0)
try:
    bound = json.loads(resp.readline())
    trusted = {{"filter": "fully_trusted"}} if hasattr(tarfile, "fully_trusted_filter") else {{}}
    for path, size in bound["archives"]:
        part = Part(resp, size)
        with tarfile.open(fileobj=part, mode="r|") as tar:
            tar.extractall(path, numeric_owner=True, **trusted)
        while part.read(65536):
            pass
    uid, _, gid = {SANDBOX_USER!r}.partition(":")
    os.setgroups([int(gid)])
    os.setgid(int(gid))
    os.setuid(int(uid))
except BaseException as exc:
    os.write(2, ("lambdafleet: binding failed: " + repr(exc) + "\\n").encode())
    os._exit(1)
os.chdir(workdir)
os.environ["HOME"] = "/"
os.environ.update(bound["environment"])
os.execv("/bin/sh", ["/bin/sh", "-c", {LAUNCH!r}, "lambda-launch", bound["handler"]])
"""
# Who a self-unpacking waiter runs as until it is bound.
UNPACKING_USER = "0:0"

# The same for images without Python (Node.js, provided.*): a shell asks for
# the binding as shell assignments (`?format=sh`, quoted by the worker),
# fetched with what the image has; the fetcher exits 75 (EX_TEMPFAIL) when
# the worker cannot be reached yet, anything else but 0 when let go.
_FETCH_WITH_NODE = (
    "/usr/bin/node -e '"
    'const [h, p] = [process.env.AWS_LAMBDA_RUNTIME_API.replace(/:[^:]*$/, ""),'
    ' process.env.AWS_LAMBDA_RUNTIME_API.replace(/^.*:/, "")];'
    f' require("http").get({{host: h, port: p, path: "{BIND_PATH}?format=sh"}}, (r) => {{'
    ' let b = ""; r.setEncoding("utf8"); r.on("data", (c) => (b += c));'
    ' r.on("end", () => { if (r.statusCode !== 200) process.exit(1); process.stdout.write(b); });'
    ' }).on("error", () => process.exit(75));\''
)
_FETCH_WITH_CURL = (
    f'curl -sf "http://$AWS_LAMBDA_RUNTIME_API{BIND_PATH}?format=sh" || '
    "{ rc=$?; [ $rc -eq 7 ] && exit 75; exit $rc; }"
)
# (The same fence as the launcher's; connecting is retried for at most
# BIND_CONNECT_S, ten tries a second.)
_WAIT_FOR_BIND_SH = f"""\
trap 'exit 143' TERM
{FENCE}tries=0
while :; do
  bound=$(FETCH)
  rc=$?
  [ "$rc" -eq 0 ] && break
  [ "$rc" -eq 75 ] || exit 0
  tries=$((tries + 1))
  [ "$tries" -lt {BIND_CONNECT_S * 10} ] || exit 0
  sleep 0.1
done
eval "$bound"
exec /bin/sh -c LAUNCH lambda-launch "$_HANDLER"
"""


def bind_user(runtime: str) -> str | None:
    """Who a pre-started container of `runtime` runs as until bound: root
    where its waiter unpacks the code itself (Python images), else None (the
    sandbox user from the start)."""
    recipe = RECIPES.get(runtime)
    return UNPACKING_USER if recipe is not None and recipe.language == "python" else None


def bind_entrypoint(runtime: str) -> list[str] | None:
    """The command a pre-started container of `runtime` waits in, or None
    when its image cannot be pre-started (lambdafleet builds none for it)."""
    recipe = RECIPES.get(runtime)
    if recipe is None:
        return None
    if recipe.language == "python":
        return ["/usr/bin/python3", "-I", "-c", WAIT_FOR_BIND]
    fetch = _FETCH_WITH_NODE if recipe.language == "nodejs" else _FETCH_WITH_CURL
    # Spaces inside $( ): `$((` would begin an arithmetic expansion.
    script = _WAIT_FOR_BIND_SH.replace("FETCH", f" {fetch} ")
    # Then the same launcher as a fresh container (worker/launcher.py).
    return ["/bin/sh", "-c", script.replace("-c LAUNCH", f"-c {shlex.quote(LAUNCH)}")]


@dataclass(frozen=True, order=True)
class Bucket:
    """Pre-started containers of one bucket are interchangeable."""

    runtime: str
    memory_mb: int
    architecture: str = ARCHITECTURE
    ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_MB
    image: str = ""

    def __str__(self) -> str:
        return f"{self.runtime}:{self.memory_mb}"


class PrestartConfigError(ValueError):
    pass


# The default: learn the popular buckets. Each bucket that has an on-demand
# cold start on this worker keeps AUTO_COUNT containers ready, for the
# AUTO_BUCKETS buckets cold-started most recently. So a worker holds nothing
# for runtimes nobody uses and builds no image ahead of a function, and the
# second function of a runtime and memory size, or a burst, or the first
# invocation after the keep-alive reaped an environment, skips creation.
AUTO_COUNT = 2
AUTO_BUCKETS = 2


@dataclass(frozen=True)
class PrestartConfig:
    """Fixed pool sizes per (runtime, memory), and how many containers each
    learned bucket keeps (0: learning off)."""

    sizes: dict[tuple[str, int], int] = field(default_factory=dict)
    auto_count: int = 0
    auto_buckets: int = AUTO_BUCKETS

    @property
    def enabled(self) -> bool:
        return bool(self.sizes) or self.auto_count > 0


def parse_config(raw: str | None) -> PrestartConfig:
    """`python3.11:128=2,python3.11:512=1`: fixed pools; `auto` (the default
    when unset) or `auto=N`: learned pools of N; `off` or `0`: none. Fixed
    and learned combine: `auto,python3.11:512=1`."""
    if raw is None:
        return PrestartConfig(auto_count=AUTO_COUNT)
    sizes: dict[tuple[str, int], int] = {}
    auto = 0
    for part in raw.split(","):
        part = part.strip()
        if not part or part.lower() in ("off", "0", "none"):
            continue
        what, _, count = part.partition("=")
        try:
            n = int(count or (AUTO_COUNT if what.strip() == "auto" else 1))
        except ValueError:
            n = -1
        if what.strip() == "auto" and n >= 0:
            auto = n
            continue
        runtime, _, memory = what.strip().rpartition(":")
        try:
            key = (runtime, int(memory))
        except ValueError:
            key = ("", 0)
        if not key[0] or not 128 <= key[1] <= 10240 or n < 0:
            raise PrestartConfigError(
                f"{ENV_VAR}: cannot read {part!r}; expected auto, off, or "
                "runtime:memory=count, e.g. python3.11:128=2"
            )
        sizes[key] = sizes.get(key, 0) + n
    return PrestartConfig(sizes={k: n for k, n in sizes.items() if n > 0}, auto_count=auto)


def learn(learned: list[Bucket], bucket: Bucket, keep: int) -> tuple[list[Bucket], list[Bucket]]:
    """The learned buckets after a cold start of `bucket` (most recent
    first, at most `keep`), and those that fell out."""
    ordered = [bucket, *(b for b in learned if b != bucket)]
    return ordered[:keep], ordered[keep:]


def bucket_for(spec: apb.FunctionSpec, image: str) -> Bucket:
    """The bucket whose containers could run `spec` with `image`."""
    return Bucket(
        runtime=spec.runtime,
        memory_mb=spec.memory_size,
        ephemeral_storage_mb=spec.ephemeral_storage_mb or DEFAULT_EPHEMERAL_MB,
        image=image,
    )


def prestartable(bucket: Bucket) -> bool:
    """Only images lambdafleet builds know how to wait for a binding."""
    return (
        bucket.image == local_image(bucket.runtime) and bind_entrypoint(bucket.runtime) is not None
    )


def refill_plan(targets: dict[Bucket, int], have: dict[Bucket, int], room: int) -> list[Bucket]:
    """Which containers to start next, at most `room` (what capacity leaves):
    one per bucket per round, the most depleted bucket first, so one big
    bucket cannot keep the others empty."""
    missing = {b: n - have.get(b, 0) for b, n in targets.items() if n > have.get(b, 0)}
    plan: list[Bucket] = []
    while missing and len(plan) < room:
        for bucket in sorted(missing, key=lambda b: (-missing[b] / targets[b], b)):
            if len(plan) >= room:
                break
            plan.append(bucket)
            missing[bucket] -= 1
            if not missing[bucket]:
                del missing[bucket]
    return plan


@dataclass
class Prestarted:
    """One pre-started container, idle until bound."""

    bucket: Bucket
    # Public once bound (the environment's id); the credential is not.
    id: str = field(default_factory=lambda: secrets.token_hex(16))
    credential: RuntimeCredential = field(default_factory=RuntimeCredential)
    container_id: str = ""
    # Set once its process asks to be bound: it is up and waiting.
    ready: bool = False
    binding: asyncio.Future[dict[str, object]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def hostname(self) -> str:
        # The environment's once bound (it is in the container's /etc/hosts).
        return self.credential.hostname

    @property
    def route(self) -> str:
        return self.credential.route

    @property
    def unpacks(self) -> bool:
        """Whether its waiting process unpacks the code itself (WAIT_FOR_BIND),
        running as root until then; otherwise the pool copies it in."""
        return bind_user(self.bucket.runtime) is not None

    def bind(
        self,
        handler: str,
        environment: dict[str, str],
        archives: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Answer the waiting process; `archives` (path, tar) go with the
        answer to one that unpacks them."""
        if not self.binding.done():
            self.binding.set_result(
                {"handler": handler, "environment": environment, "archives": archives or []}
            )


class Prestart:
    """The pool of pre-started containers of one worker."""

    def __init__(
        self,
        *,
        config: PrestartConfig,
        containers: Sandboxes,
        images: Images,
        start_slots: asyncio.Semaphore,
        runtime_api_host: str,
        runtime_api_port: Callable[[], int],
        room: Callable[[], int],
    ) -> None:
        self.config = config
        self.containers = containers
        self.images = images
        self.start_slots = start_slots
        self.runtime_api_host = runtime_api_host
        self.runtime_api_port = runtime_api_port
        self.room = room
        # The fixed pools, once their images are known.
        self.fixed: dict[Bucket, int] = {}
        # Buckets learned from cold starts, most recent first.
        self.learned: list[Bucket] = []
        self.idle: dict[str, Prestarted] = {}  # by route (worker/runtime_auth.py)
        # Taken but not yet told: its process may not have asked yet.
        self.claimed: dict[str, Prestarted] = {}
        self._starting: dict[Bucket, int] = {}
        # Containers being created, by route: a fast waiter (a shell and
        # curl) asks to be bound before the create call has even returned.
        self._creating: dict[str, Prestarted] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._removing: set[asyncio.Task[None]] = set()
        # Told when the pool's containers change (the agent sends a heartbeat).
        self.on_change: Callable[[], None] = lambda: None

    @property
    def targets(self) -> dict[Bucket, int]:
        targets = dict(self.fixed)
        for bucket in self.learned:
            targets[bucket] = max(targets.get(bucket, 0), self.config.auto_count)
        return targets

    @property
    def held_mb(self) -> int:
        """Memory the pool's containers hold now, started or starting: the
        worker reports it, and placement offers only the rest."""
        return sum(b.memory_mb * n for b, n in self.counts().items())

    def cold_start(self, bucket: Bucket) -> None:
        """An on-demand environment of `bucket` is starting: learn it."""
        if not self.config.auto_count or not prestartable(bucket):
            return  # official and mapped images bring their own entrypoint
        self.learned, dropped = learn(self.learned, bucket, self.config.auto_buckets)
        retired = [
            p for p in self.idle.values() if p.bucket in dropped and p.bucket not in self.fixed
        ]
        for pre in retired:
            self._retire(pre)
        if retired:
            self.on_change()
        self._wake.set()

    def _retire(self, pre: Prestarted) -> None:
        """Out of the pool, and its container removed in the background."""
        self._drop(pre)

        async def remove() -> None:
            try:
                await self.containers.remove(pre.container_id)
            except Exception as exc:
                log.warning(
                    "prestart.remove_failed", container=pre.container_id[:12], error=repr(exc)
                )

        task = asyncio.get_running_loop().create_task(remove())
        self._removing.add(task)
        task.add_done_callback(self._removing.discard)

    def wake(self) -> None:
        """Look again at what to refill (room may have changed)."""
        self._wake.set()

    def start(self) -> None:
        if self.config.enabled:
            self._task = asyncio.create_task(self._run(), name="prestart")

    def lookup(self, host_header: str) -> Prestarted | None:
        """The container whose credential a request to the bind endpoint presents."""
        for table in (self.idle, self.claimed, self._creating):
            pre = authenticate(host_header, table, lambda p: p.credential)
            if pre is not None:
                return pre
        return None

    def answered(self, pre: Prestarted) -> None:
        self.claimed.pop(pre.route, None)

    def take(self, bucket: Bucket) -> Prestarted | None:
        """An idle container of `bucket`, claimed at once (no await)."""
        candidates = [p for p in self.idle.values() if p.bucket == bucket and p.container_id]
        if not candidates:
            return None
        chosen = max(candidates, key=lambda p: p.ready)
        del self.idle[chosen.route]
        self.claimed[chosen.route] = chosen
        self._wake.set()
        return chosen

    def on_exit(self, container_id: str) -> None:
        for pre in [*self.idle.values(), *self.claimed.values()]:
            if pre.container_id == container_id:
                log.warning("prestart.exited", container=container_id[:12])
                self._drop(pre)
                self._wake.set()

    def _drop(self, pre: Prestarted) -> None:
        self.idle.pop(pre.route, None)
        self.claimed.pop(pre.route, None)
        if not pre.binding.done():
            pre.binding.cancel()

    def counts(self) -> dict[Bucket, int]:
        have = dict(self._starting)
        for pre in self.idle.values():
            have[pre.bucket] = have.get(pre.bucket, 0) + 1
        return have

    async def _resolve_targets(self) -> None:
        for (runtime, memory), n in self.config.sizes.items():
            try:
                image = await self.images.ensure(runtime)
            except Exception as exc:
                log.warning("prestart.no_image", runtime=runtime, error=str(exc))
                continue
            if not prestartable(Bucket(runtime, memory, image=image)):
                # An official or user-mapped image: its entrypoint is its own.
                log.info("prestart.skipped", runtime=runtime, image=image)
                continue
            self.fixed[Bucket(runtime, memory, image=image)] = n

    async def _run(self) -> None:
        await self._resolve_targets()
        while True:
            plan = refill_plan(self.targets, self.counts(), self.room())
            if not plan:
                self._wake.clear()
                await self._wake.wait()
                continue
            # Never ahead of a real invocation: take a start slot only when
            # one is free and nobody queues for it (asyncio's semaphore is
            # FIFO, a waiting refill would hold up the cold starts behind it),
            # and start one container at a time.
            while self.start_slots.locked():  # noqa: ASYNC110 (a semaphore has no "free" event)
                await asyncio.sleep(0.05)
            await self._start_one(plan[0])

    async def _start_one(self, bucket: Bucket) -> None:
        pre = Prestarted(bucket)
        self._starting[bucket] = self._starting.get(bucket, 0) + 1
        self._creating[pre.route] = pre
        try:
            async with self.start_slots:
                pre.container_id = await self.containers.create_and_start(
                    image=bucket.image,
                    command=[],
                    entrypoint=bind_entrypoint(bucket.runtime),
                    name=f"lambdafleet-{self.containers.worker_id}-prestart-{pre.id[:8]}",
                    environment={
                        "AWS_LAMBDA_RUNTIME_API": f"{pre.hostname}:{self.runtime_api_port()}"
                    },
                    labels={LABEL_PRESTART: str(bucket)},
                    extra_hosts={pre.hostname: self.runtime_api_host},
                    memory_mb=bucket.memory_mb,
                    code_tar=b"",
                    tmp_mb=bucket.ephemeral_storage_mb,
                    user=bind_user(bucket.runtime),
                )
            self._creating.pop(pre.route, None)
            self.idle[pre.route] = pre
            if bucket not in self.targets:
                self._retire(pre)  # forgotten while it started
            self.on_change()
        except Exception as exc:
            self._creating.pop(pre.route, None)
            if not pre.binding.done():
                pre.binding.cancel()  # a request it made is let go (410)
            log.warning("prestart.failed", bucket=str(bucket), error=repr(exc))
            await asyncio.sleep(1.0)  # a broken daemon is not hammered
        finally:
            self._starting[bucket] -= 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pre in [*self.idle.values(), *self.claimed.values(), *self._creating.values()]:
            self._drop(pre)
        await asyncio.gather(*self._removing, return_exceptions=True)
