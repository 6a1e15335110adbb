"""Python functions of tests/test_invoke_recorded.py: the scenarios of AWS's
recorded test_lambda (TestLambdaErrors, TestLambdaBehavior, ...)."""

import os
import sys
import time

# Module state: what an environment keeps between warm invocations, and
# loses when its runtime starts again.
NUMBER = 0


def handler_error(event, context):
    raise Exception("Handler fails")


def handler_exit(event, context):
    sys.exit(0)


def handler_crash(event, context):
    os._exit(event.get("code", 1))


def too_large(event, context):
    return "a" * (6 * 1024 * 1024 + 200)


def no_return(event, context):
    return None


def request_id(event, context):
    print("RequestId log message")
    return context.aws_request_id


def client_context(event, context):
    cc = context.client_context
    if cc is None:
        return {"client_context": None}
    return {"custom": cc.custom, "env": cc.env}


def sleep(event, context):
    time.sleep(event["seconds"])
    return None


def state(event, context):
    """test_lambda_invoke_timed_out_environment_reuse's function: a file in
    /tmp, a module global, or a sleep past the timeout."""
    global NUMBER
    action = event["action"]
    if action == "write-file":
        with open("/tmp/test-file", "w") as f:
            f.write(event["content"])
        return None
    if action == "read-file":
        with open("/tmp/test-file") as f:
            return {"content": f.read()}
    if action == "set-number":
        NUMBER = event["number"]
        return None
    if action == "read-number":
        return {"number": NUMBER}
    time.sleep(event["seconds"])
    return None
