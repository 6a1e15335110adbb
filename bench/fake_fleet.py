"""N simulated workers (fake sandboxes) in one process, each over its own
gRPC session to a control plane, until SIGTERM: the hosts a benchmark of the
control plane's scale cannot afford.

    python bench/fake_fleet.py CONTROL_PLANE N [--capacity 8]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import tempfile
from pathlib import Path

import structlog
from lambdafleet.worker.agent import Worker
from lambdafleet.worker.backends import FakeBackend, FakeConfig


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("control_plane")
    parser.add_argument("workers", type=int)
    parser.add_argument("--capacity", type=int, default=8)
    args = parser.parse_args()
    # Info lines of a hundred workers would cost more than their invocations.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    cache = Path(tempfile.mkdtemp(prefix="lambdafleet-fake-fleet-"))
    backend = FakeBackend(FakeConfig())
    workers = [
        Worker(
            control_plane=args.control_plane,
            worker_id=f"fake-{i:03d}",
            capacity=args.capacity,
            cache_dir=cache / str(i),
            backend=backend,
        )
        for i in range(args.workers)
    ]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await asyncio.gather(*(w.start() for w in workers))
    try:
        await stopping.wait()
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
