"""The scenarios of AWS's recorded test_lambda_common, for the Python runtimes."""

import os


def echo(event, context):
    return event


def _writable(folder):
    try:
        with open(os.path.join(folder, "probe.txt"), "w") as probe:
            probe.write("x")
    except OSError:
        return False
    return True


def introspect(event, context):
    return {
        "environment": dict(os.environ),
        "ctx": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "remaining_time_in_millis": context.get_remaining_time_in_millis(),
        },
        "uid": os.getuid(),
        "task_writable": _writable("/var/task"),
        "tmp_writable": _writable("/tmp"),
    }


def fail(event, context):
    raise Exception(f"Failed: {event['error_msg']}")


def sdk_versions(event, context):
    # Imported here, not at the top: the other handlers must not need boto3.
    import boto3
    import botocore

    client = boto3.client("lambda", region_name="us-east-1")
    return {
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "boto3_file": boto3.__file__,
        "botocore_file": botocore.__file__,
        "service": client.meta.service_model.service_name,
    }
