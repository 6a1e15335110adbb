"""Coalescing of stream messages (lambdafleet/batching.py)."""

from __future__ import annotations

import asyncio

from lambdafleet import batching


def _queue(*items: object) -> asyncio.Queue[object]:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


def test_a_message_alone_goes_alone() -> None:
    queue = _queue()
    assert batching.take_batch(queue, b"a", len) == ([b"a"], False)


def test_what_is_queued_behind_goes_along_in_order() -> None:
    queue = _queue(b"b", b"c")
    assert batching.take_batch(queue, b"a", len) == ([b"a", b"b", b"c"], False)
    assert queue.empty()


def test_the_end_of_the_queue_ends_the_batch_and_the_writer() -> None:
    queue = _queue(b"b", None, b"never")
    assert batching.take_batch(queue, b"a", len) == ([b"a", b"b"], True)


def test_bounds_leave_the_rest_queued() -> None:
    queue = _queue(b"b", b"c", b"d")
    assert batching.take_batch(queue, b"a", len, max_items=2) == ([b"a", b"b"], False)
    assert queue.qsize() == 2
    queue = _queue(b"yyyy", b"z")
    # A batch stops growing once it reaches max_bytes, never splits an item.
    assert batching.take_batch(queue, b"xxx", len, max_bytes=5) == ([b"xxx", b"yyyy"], False)
    assert queue.qsize() == 1


def test_items_are_left_for_the_writer_to_mark_done() -> None:
    # The worker's drain() joins its outbox: it must wait until every message
    # of a batch is written, not only the first.
    async def run() -> None:
        queue = _queue(b"a", b"b")
        first = await queue.get()
        batch, _ = batching.take_batch(queue, first, len)
        joined = asyncio.ensure_future(queue.join())
        queue.task_done()
        await asyncio.sleep(0)
        assert not joined.done()
        for _ in batch[1:]:
            queue.task_done()
        await asyncio.wait_for(joined, 1)

    asyncio.run(run())
