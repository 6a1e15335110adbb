"""Event source mappings through boto3, compared with AWS's recorded answers
(TestLambdaEventSourceMappings in test_lambda_api.snapshot.json). The ARNs
of queues, streams and tables are made up: lambdafleet does not look the
sources up (nor poll them), and none of the recorded steps below needs more
than their ARN. Plus the pure decisions, tested directly."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cluster import create_echo
from lambdafleet.control_plane.api import event_sources as esm

from lambdafleet.api.v1 import lambda_pb2 as api
from lambdafleet.errors import LambdaError

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "aws-recorded" / "test_lambda_api.snapshot.json").read_text()
)
TEST = "tests/aws/services/lambda_/test_lambda_api.py::TestLambdaEventSourceMappings::"
ACCOUNT = "000000000000"
REGION = "us-east-1"
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kafka-secret"


def recorded(test: str, step: str, **placeholders: str) -> dict[str, Any]:
    text = json.dumps(RECORDED[TEST + test]["recorded-content"][step])
    text = text.replace("111111111111", ACCOUNT)
    for key, value in {"partition": "aws", "region": REGION, **placeholders}.items():
        text = text.replace(f"<{key}>", value)
    found: dict[str, Any] = json.loads(text)
    return found


def body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def status(response: dict[str, Any]) -> int:
    code: int = response["ResponseMetadata"]["HTTPStatusCode"]
    return code


def same_error(error: ClientError, expected: dict[str, Any]) -> None:
    got = error.response
    assert status(got) == status(expected)
    assert got["Error"]["Code"] == expected["Error"]["Code"]
    assert got["Error"]["Message"] == expected["Error"]["Message"]


# Generated per call: compared by form, not value.
GENERATED = {"UUID", "EventSourceMappingArn", "LastModified"}


def same_mapping(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """A mapping as recorded: every key, every value but the generated ones."""
    assert status(got) == status(expected)
    got, expected = body(got), body(expected)
    assert got.keys() == expected.keys()
    for key in expected.keys() - GENERATED:
        assert got[key] == expected[key], key
    uuid.UUID(got["UUID"])
    if "EventSourceMappingArn" in got:
        assert got["EventSourceMappingArn"] == (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{got['UUID']}"
        )


def sqs_arn() -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:q-{uuid.uuid4().hex[:8]}"


def stream_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2026-01-01T00:00:00.000"


@pytest.fixture(scope="module")
def function(cluster: Any) -> str:
    name = f"esm-{uuid.uuid4().hex[:10]}"
    create_echo(cluster.client(), name)
    return name


def test_exceptions(client: Any) -> None:
    test = "test_event_source_mapping_exceptions"
    for step, call, kwargs in (
        ("get_unknown_uuid", client.get_event_source_mapping, {}),
        ("delete_unknown_uuid", client.delete_event_source_mapping, {}),
        ("update_unknown_uuid", client.update_event_source_mapping, {"Enabled": False}),
    ):
        with pytest.raises(ClientError) as e:
            call(UUID=str(uuid.uuid4()), **kwargs)
        same_error(e.value, recorded(test, step))
    # Filters naming nothing list nothing, without an error.
    assert (
        client.list_event_source_mappings(FunctionName="doesnotexist")["EventSourceMappings"] == []
    )
    assert client.list_event_source_mappings(EventSourceArn=sqs_arn())["EventSourceMappings"] == []
    with pytest.raises(ClientError) as e:
        client.create_event_source_mapping(FunctionName="doesnotexist")
    same_error(e.value, recorded(test, "create_no_event_source_arn"))
    with pytest.raises(ClientError) as e:
        client.create_event_source_mapping(FunctionName="doesnotexist", EventSourceArn=sqs_arn())
    same_error(e.value, recorded(test, "create_unknown_params"))


def test_destination_config_refused_for_sqs(client: Any, function: str) -> None:
    with pytest.raises(ClientError) as e:
        client.create_event_source_mapping(
            FunctionName=function,
            EventSourceArn=sqs_arn(),
            DestinationConfig={"OnFailure": {"Destination": sqs_arn()}},
        )
    same_error(
        e.value, recorded("test_event_source_mapping_exceptions", "destination_config_failure")
    )


def test_function_name_variations(client: Any, function: str) -> None:
    test = "test_function_name_variations"
    queue = sqs_arn()
    version = client.publish_version(FunctionName=function)
    alias = client.create_alias(
        FunctionName=function, FunctionVersion=version["Version"], Name="myalias"
    )
    plain = f"{FN_ARN}:{function}"
    fill = {"resource:1": queue.rsplit(":", 1)[1], "resource:3": function}
    for step, name in (
        ("name_only_create_esm", function),
        ("partial_arn_latest_create_esm", f"{function}:$LATEST"),
        ("partial_arn_version_create_esm", f"{function}:{version['Version']}"),
        ("partial_arn_alias_create_esm", f"{function}:myalias"),
        ("full_arn_latest_create_esm", plain),
        ("full_arn_version_create_esm", version["FunctionArn"]),
        ("full_arn_alias_create_esm", alias["AliasArn"]),
    ):
        created = client.create_event_source_mapping(FunctionName=name, EventSourceArn=queue)
        same_mapping(created, recorded(test, step, **fill))
        got = client.get_event_source_mapping(UUID=created["UUID"])
        assert got["State"] == "Enabled"
        deleted = client.delete_event_source_mapping(UUID=created["UUID"])
        assert status(deleted) == 202 and deleted["State"] == "Deleting"


def test_lifecycle_outlives_its_function(client: Any) -> None:
    test = "test_event_source_mapping_lifecycle_delete_function"
    function = f"esm-{uuid.uuid4().hex[:10]}"
    create_echo(client, function)
    table = f"t-{uuid.uuid4().hex[:8]}"
    stream = stream_arn(table)
    destination = sqs_arn()
    created = client.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=stream,
        DestinationConfig={"OnFailure": {"Destination": destination}},
        BatchSize=1,
        StartingPosition="TRIM_HORIZON",
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
    )
    fill = {
        "resource:1": stream.split("/stream/")[1],
        "resource:2": table,
        "resource:3": destination.rsplit(":", 1)[1],
        "resource:5": function,
    }
    same_mapping(created, recorded(test, "create_response", **fill))
    mapping_id = created["UUID"]
    same_mapping(
        client.get_event_source_mapping(UUID=mapping_id), recorded(test, "get_response", **fill)
    )
    client.delete_function(FunctionName=function)
    # AWS keeps the mapping of a deleted function.
    same_mapping(
        client.get_event_source_mapping(UUID=mapping_id),
        recorded(test, "get_response_post_delete", **fill),
    )
    same_mapping(
        client.delete_event_source_mapping(UUID=mapping_id),
        recorded(test, "delete_response", **fill),
    )
    with pytest.raises(ClientError) as e:
        client.get_event_source_mapping(UUID=mapping_id)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_stream_validation(client: Any, function: str) -> None:
    table = "table-x"
    stream = stream_arn(table)
    dynamodb = "test_create_event_source_validation"
    kinesis_test = "test_create_event_source_validation_kinesis"
    fill = {"table-name": table, "stream-name": stream.split("/stream/")[1]}
    kinesis = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s-{uuid.uuid4().hex[:6]}"
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (stream, {}, recorded(dynamodb, "no_starting_position")),
        (stream, {"StartingPosition": "invalid"}, recorded(dynamodb, "invalid_starting_position")),
        (
            stream,
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1700000000},
            recorded(dynamodb, "incompatible_starting_position", **fill),
        ),
        (kinesis, {}, recorded(kinesis_test, "no_starting_position")),
        (
            kinesis,
            {"StartingPosition": "invalid"},
            recorded(kinesis_test, "invalid_starting_position"),
        ),
    ]
    for source, extra, expected in cases:
        with pytest.raises(ClientError) as e:
            client.create_event_source_mapping(
                FunctionName=function, EventSourceArn=source, **extra
            )
        same_error(e.value, expected)


def test_empty_filters_on_a_stream(client: Any, function: str) -> None:
    test = "test_create_event_filter_criteria_validation"
    table = "filters"
    stream = stream_arn(table)
    created = client.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=stream,
        StartingPosition="LATEST",
        FilterCriteria={"Filters": []},
    )
    fill = {"table-name": table, "resource:1": stream.split("/stream/")[1], "resource:3": function}
    same_mapping(created, recorded(test, "response-with-empty-filters", **fill))
    with pytest.raises(ClientError) as e:
        client.update_event_source_mapping(
            UUID=created["UUID"], FilterCriteria={"Filters": [{"Pattern": "not json"}]}
        )
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    client.delete_event_source_mapping(UUID=created["UUID"])


def test_self_managed_kafka(client: Any, function: str) -> None:
    test = "test_create_event_source_self_managed"
    source = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka:1000"]}}
    access = [{"Type": "BASIC_AUTH", "URI": SECRET}]
    with pytest.raises(ClientError) as e:
        client.create_event_source_mapping(
            FunctionName=function, Topics=["topic"], SelfManagedEventSource=source
        )
    same_error(e.value, recorded(test, "missing-source-access-configuration"))

    first = client.create_event_source_mapping(
        FunctionName=function,
        Topics=["topic"],
        SelfManagedEventSource=source,
        SourceAccessConfigurations=access,
        StartingPosition="TRIM_HORIZON",
    )
    fill = {"resource:1": function, "resource:2": "kafka-secret", "uuid:1": first["UUID"]}
    expected = recorded(test, "event-source-mapping-default", **fill)
    same_mapping(first, expected)
    # The consumer group defaults to the mapping's id.
    assert first["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == first["UUID"]

    with pytest.raises(ClientError) as e:
        client.create_event_source_mapping(
            FunctionName=function,
            Topics=["topic"],
            SelfManagedEventSource=source,
            SourceAccessConfigurations=access,
            StartingPosition="TRIM_HORIZON",
        )
    same_error(e.value, recorded(test, "duplicate-source", **fill))

    second = client.create_event_source_mapping(
        FunctionName=function,
        Topics=["topic_2"],
        SelfManagedEventSource=source,
        SourceAccessConfigurations=access,
        StartingPosition="LATEST",
        BatchSize=1,
        SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "random_id"},
    )
    same_mapping(second, recorded(test, "event-source-mapping-values", **fill))

    with pytest.raises(ClientError) as e:
        client.create_event_source_mapping(
            FunctionName=function,
            Topics=["topic"],
            SelfManagedEventSource={
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka:1000", "kafka:2000"]}
            },
            SourceAccessConfigurations=access,
            StartingPosition="TRIM_HORIZON",
        )
    same_error(e.value, recorded(test, "multiple-duplicate-source", **fill))
    for mapping in (first, second):
        client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_update_enable_disable_list_and_paging(client: Any) -> None:
    function = f"esm-{uuid.uuid4().hex[:10]}"
    create_echo(client, function)
    queue = sqs_arn()
    ids = [
        client.create_event_source_mapping(
            FunctionName=function, EventSourceArn=queue, Enabled=False
        )["UUID"]
        for _ in range(3)
    ]
    assert client.get_event_source_mapping(UUID=ids[0])["State"] == "Disabled"
    enabling = client.update_event_source_mapping(UUID=ids[0], Enabled=True, BatchSize=5)
    assert status(enabling) == 202
    assert enabling["State"] == "Enabling" and enabling["BatchSize"] == 5
    assert client.get_event_source_mapping(UUID=ids[0])["State"] == "Enabled"
    with pytest.raises(ClientError) as e:
        client.update_event_source_mapping(UUID=ids[0], FunctionName="doesnotexist")
    assert e.value.response["Error"]["Message"] == "Function does not exist"

    pages = list(
        client.get_paginator("list_event_source_mappings").paginate(
            FunctionName=function, PaginationConfig={"PageSize": 1}
        )
    )
    seen = [m["UUID"] for p in pages for m in p["EventSourceMappings"]]
    assert sorted(seen) == sorted(ids) and len(pages) == 3
    # Listed as Get shows them (FunctionResponseTypes included).
    listed = client.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"]
    got = {k: v for k, v in client.get_event_source_mapping(UUID=ids[1]).items()}
    assert body(got) == next(m for m in listed if m["UUID"] == ids[1])
    for mapping_id in ids:
        client.delete_event_source_mapping(UUID=mapping_id)


def test_tags_of_a_mapping(client: Any, function: str) -> None:
    created = client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=sqs_arn(), Tags={"k": "v"}
    )
    arn = created["EventSourceMappingArn"]
    assert client.list_tags(Resource=arn)["Tags"] == {"k": "v"}
    client.delete_event_source_mapping(UUID=created["UUID"])
    with pytest.raises(ClientError) as e:
        client.list_tags(Resource=arn)
    assert e.value.response["Error"]["Message"] == f"Event source mapping not found: {arn}"


# -- pure decisions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        ("arn:aws:sqs:us-east-1:000000000000:q", esm.SQS),
        ("arn:aws:kinesis:us-east-1:000000000000:stream/s", esm.KINESIS),
        ("arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026", esm.DYNAMODB),
        ("arn:aws:dynamodb:us-east-1:000000000000:table/t", None),
        ("arn:aws:kafka:us-east-1:000000000000:cluster/c/abc", esm.MSK),
        ("arn:aws:mq:us-east-1:000000000000:broker:b:id", esm.MQ),
        ("arn:aws:rds:us-east-1:000000000000:cluster:docs", esm.DOCUMENTDB),
        ("arn:aws:s3:::bucket", None),
        ("", None),
    ],
)
def test_source_type(arn: str, kind: str | None) -> None:
    assert esm.source_type(arn, self_managed=False) == kind


def test_defaults_per_source_type() -> None:
    sqs = api.EventSourceMappingConfiguration()
    esm.defaults(esm.SQS, sqs, "id")
    assert (sqs.batch_size, sqs.maximum_batching_window_in_seconds) == (10, 0)
    assert not sqs.HasField("last_processing_result")
    stream = api.EventSourceMappingConfiguration(batch_size=7)
    esm.defaults(esm.KINESIS, stream, "id")
    assert stream.batch_size == 7, "a given value is kept"
    assert (stream.maximum_retry_attempts, stream.maximum_record_age_in_seconds) == (-1, -1)
    assert stream.HasField("destination_config")
    kafka = api.EventSourceMappingConfiguration()
    esm.defaults(esm.SELF_MANAGED_KAFKA, kafka, "the-id")
    assert kafka.batch_size == 100
    assert kafka.self_managed_kafka_event_source_config.consumer_group_id == "the-id"


def test_transitions() -> None:
    assert esm.transition("Disabled", True) == esm.Settled("Enabling", "Enabled")
    assert esm.transition("Enabled", False) == esm.Settled("Disabling", "Disabled")
    assert esm.transition("Enabled", True) == esm.Settled("Updating", "Enabled")
    assert esm.transition("Disabled", None) == esm.Settled("Updating", "Disabled")


def test_filter_patterns_must_be_json_objects() -> None:
    esm.check_filter_criteria(api.FilterCriteria(filters=[api.Filter(pattern='{"a": [1]}')]))
    for bad in ("[1]", "nope", ""):
        with pytest.raises(LambdaError) as e:
            esm.check_filter_criteria(api.FilterCriteria(filters=[api.Filter(pattern=bad)]))
        assert e.value.code == "InvalidParameterValueException"
