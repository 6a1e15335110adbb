"""The pre-started pool's pure decisions: configuration, which bucket a
function matches, and what to refill."""

from __future__ import annotations

import pytest
from lambdafleet.worker.prestart import (
    Bucket,
    PrestartConfigError,
    bucket_for,
    parse_config,
    refill_plan,
)

from lambdafleet.agent.v1 import agent_pb2 as apb

IMAGE = "lambdafleet/runtime:python3.11"


def test_config_parses_runtime_memory_and_count() -> None:
    assert parse_config("python3.11:128=2, python3.11:512=1") == {
        ("python3.11", 128): 2,
        ("python3.11", 512): 1,
    }
    assert parse_config("python3.11:256") == {("python3.11", 256): 1}
    assert parse_config("python3.11:128=0") == {}
    assert parse_config(None) == {} and parse_config("") == {}


@pytest.mark.parametrize("raw", ["python3.11", "python3.11:64=1", ":128=1", "py:128=x", "p:128=-1"])
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
