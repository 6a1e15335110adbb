"""Coalescing of stream messages.

Every message written on a grpc.aio stream costs a trip through gRPC's
completion queue and its poller thread, whatever its size. A writer that
takes everything already queued behind the message it waited for, and sends
it as one batch, pays that once per batch: under load, many messages share a
write; alone, a message goes out at once, as before (no timer, no delay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Bounds of one batch: gRPC's message limits are far above, but a batch of a
# few large payloads must not hold back the small messages behind it long.
MAX_ITEMS = 256
MAX_BYTES = 4 * 1024 * 1024


def take_batch(
    queue: asyncio.Queue[Any],
    first: T,
    size: Callable[[T], int],
    max_items: int = MAX_ITEMS,
    max_bytes: int = MAX_BYTES,
) -> tuple[list[T], bool]:
    """`first` and whatever is queued behind it, in order, up to the bounds.
    True as the second value when the queue's end (None) was taken: the
    writer sends the batch, then stops. Items are not marked done: a writer
    that others join() marks them once written."""
    batch = [first]
    total = size(first)
    while len(batch) < max_items and total < max_bytes and not queue.empty():
        item = queue.get_nowait()
        if item is None:
            return batch, True
        batch.append(item)
        total += size(item)
    return batch, False
