"""The pre-started pool's pure decisions: configuration, which bucket a
function matches, and what to refill."""

from __future__ import annotations

import pytest
from lambdafleet.worker.prestart import (
    AUTO_BUCKETS,
    AUTO_COUNT,
    Bucket,
    PrestartConfig,
    PrestartConfigError,
    bucket_for,
    learn,
    parse_config,
    refill_plan,
)

from lambdafleet.agent.v1 import agent_pb2 as apb

IMAGE = "lambdafleet/runtime:python3.11"


def test_config_parses_runtime_memory_and_count() -> None:
    assert parse_config("python3.11:128=2, python3.11:512=1") == PrestartConfig(
        sizes={("python3.11", 128): 2, ("python3.11", 512): 1}
    )
    assert parse_config("python3.11:256").sizes == {("python3.11", 256): 1}
    assert not parse_config("python3.11:128=0").enabled


def test_unset_learns_the_popular_buckets_and_off_turns_the_pool_off() -> None:
    default = parse_config(None)
    assert default == PrestartConfig(auto_count=AUTO_COUNT) and default.enabled
    assert parse_config("auto") == default
    assert parse_config("auto=3") == PrestartConfig(auto_count=3)
    for off in ("", "off", "0", "auto=0"):
        assert not parse_config(off).enabled, off
    assert parse_config("auto=1,python3.11:512=1") == PrestartConfig(
        sizes={("python3.11", 512): 1}, auto_count=1
    )


def test_learning_keeps_the_most_recently_cold_started_buckets() -> None:
    a, b, c = (Bucket("python3.11", m, image=IMAGE) for m in (128, 256, 512))
    assert AUTO_BUCKETS == 2
    learned, dropped = learn([], a, 2)
    assert (learned, dropped) == ([a], [])
    learned, dropped = learn(learned, b, 2)
    assert (learned, dropped) == ([b, a], [])
    # Again a: it moves to the front, nothing falls out.
    learned, dropped = learn(learned, a, 2)
    assert (learned, dropped) == ([a, b], [])
    # A third bucket pushes out the least recent.
    assert learn(learned, c, 2) == ([c, a], [b])


@pytest.mark.parametrize(
    "raw", ["python3.11", "python3.11:64=1", ":128=1", "py:128=x", "p:128=-1", "auto=x", "auto=-1"]
)
def test_config_rejects_what_it_cannot_read(raw: str) -> None:
    with pytest.raises(PrestartConfigError, match="LAMBDAFLEET_PRESTART"):
        parse_config(raw)


def spec(memory: int = 128, storage: int = 0, runtime: str = "python3.11") -> apb.FunctionSpec:
    return apb.FunctionSpec(runtime=runtime, memory_size=memory, ephemeral_storage_mb=storage)


def test_a_function_matches_the_bucket_of_its_runtime_memory_storage_and_image() -> None:
    pooled = Bucket("python3.11", 128, image=IMAGE)
    assert bucket_for(spec(), IMAGE) == pooled
    assert bucket_for(spec(storage=512), IMAGE) == pooled
    assert bucket_for(spec(memory=256), IMAGE) != pooled
    assert bucket_for(spec(storage=1024), IMAGE) != pooled
    assert bucket_for(spec(), "public.ecr.aws/lambda/python:3.11") != pooled
    assert bucket_for(spec(runtime="python3.12"), IMAGE) != pooled


def test_refill_starts_what_is_missing_most_depleted_first_within_room() -> None:
    small, big = Bucket("python3.11", 128, image=IMAGE), Bucket("python3.11", 512, image=IMAGE)
    targets = {small: 2, big: 1}
    assert refill_plan(targets, {small: 2, big: 1}, room=10) == []
    assert refill_plan(targets, {}, room=10) == [small, big, small]
    assert refill_plan(targets, {small: 1}, room=10) == [big, small]
    # Capacity bounds it: the worker's real environments come first.
    assert refill_plan(targets, {}, room=1) == [small]
    assert refill_plan(targets, {}, room=0) == []
    # More than the target (never by design) asks for nothing.
    assert refill_plan(targets, {small: 5}, room=10) == [big]
