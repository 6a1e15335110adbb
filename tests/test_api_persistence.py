"""All API state survives a control plane restart: every kind of resource is
created, the cluster restarted on the same data directory, and every read
answers exactly as before."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

from cluster import create_echo
from conftest import UpCluster


def _layer_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("python/helper.py", "X = 1\n")
    return buf.getvalue()


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    response = dict(response)
    response.pop("ResponseMetadata", None)
    return response


def test_every_resource_survives_a_restart(docker_daemon: None, tmp_path_factory: Any) -> None:
    up = UpCluster(tmp_path_factory.mktemp("persist"))
    up.start()
    try:
        client = up.client()
        name = "persist-fn"
        create_echo(client, name, Tags={"team": "fleet"})
        version = client.publish_version(FunctionName=name)["Version"]
        client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        client.add_permission(
            FunctionName=name,
            StatementId="s3",
            Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
        )
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
        client.create_function_url_config(FunctionName=name, AuthType="NONE")
        client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
        layer = client.publish_layer_version(
            LayerName="persist-layer", Content={"ZipFile": _layer_zip()}
        )
        csc = client.create_code_signing_config(
            AllowedPublishers={
                "SigningProfileVersionArns": [
                    "arn:aws:signer:us-east-1:000000000000:/signing-profiles/p/abcdefghij"
                ]
            }
        )["CodeSigningConfig"]
        esm = client.create_event_source_mapping(
            FunctionName=name,
            EventSourceArn="arn:aws:sqs:us-east-1:000000000000:persist-queue",
        )

        reads: dict[str, Callable[[], dict[str, Any]]] = {
            "function": lambda: client.get_function(FunctionName=name),
            "version": lambda: client.get_function_configuration(
                FunctionName=name, Qualifier=version
            ),
            "versions": lambda: client.list_versions_by_function(FunctionName=name),
            "alias": lambda: client.get_alias(FunctionName=name, Name="live"),
            "policy": lambda: client.get_policy(FunctionName=name),
            "concurrency": lambda: client.get_function_concurrency(FunctionName=name),
            "url": lambda: client.get_function_url_config(FunctionName=name),
            "event invoke": lambda: client.get_function_event_invoke_config(FunctionName=name),
            "layer": lambda: client.get_layer_version(
                LayerName="persist-layer", VersionNumber=layer["Version"]
            ),
            "code signing": lambda: client.get_code_signing_config(
                CodeSigningConfigArn=csc["CodeSigningConfigArn"]
            ),
            "mapping": lambda: client.get_event_source_mapping(UUID=esm["UUID"]),
            "tags": lambda: client.list_tags(
                Resource=f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
            ),
            "functions": lambda: client.list_functions(FunctionVersion="ALL"),
        }
        before = {what: _strip(read()) for what, read in reads.items()}
        up.stop()
        up.start()
        client = up.client()
        after = {what: _strip(read()) for what, read in reads.items()}
        # Event source mappings move between states by themselves; the rest
        # must be identical.
        before["mapping"].pop("State", None)
        before["mapping"].pop("LastModified", None)
        after["mapping"].pop("State", None)
        after["mapping"].pop("LastModified", None)
        for what in reads:
            assert after[what] == before[what], what
        assert client.invoke(FunctionName=name, Qualifier="live")["StatusCode"] == 200
    finally:
        up.stop()
