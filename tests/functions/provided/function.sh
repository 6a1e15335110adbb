# The scenarios of AWS's recorded test_lambda_common, as shell functions of a
# custom runtime: each gets the event as $1 and prints the response.

echo_event() {
  printf '%s' "$1"
}

writable() {
  if (echo x > "$1/probe.txt") 2>/dev/null; then echo true; else echo false; fi
}

introspect() {
  # AWS sets no AWS_EXECUTION_ENV for OS-only runtimes: only name it if set.
  exec_env=""
  if [ -n "${AWS_EXECUTION_ENV+set}" ]; then
    exec_env=", \"AWS_EXECUTION_ENV\": \"$AWS_EXECUTION_ENV\""
  fi
  cat <<JSON
{"environment": {
  "AWS_LAMBDA_FUNCTION_NAME": "$AWS_LAMBDA_FUNCTION_NAME",
  "AWS_LAMBDA_FUNCTION_VERSION": "$AWS_LAMBDA_FUNCTION_VERSION",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "$AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
  "AWS_LAMBDA_LOG_GROUP_NAME": "$AWS_LAMBDA_LOG_GROUP_NAME",
  "AWS_LAMBDA_LOG_STREAM_NAME": "$AWS_LAMBDA_LOG_STREAM_NAME",
  "AWS_LAMBDA_INITIALIZATION_TYPE": "$AWS_LAMBDA_INITIALIZATION_TYPE",
  "AWS_REGION": "$AWS_REGION",
  "AWS_DEFAULT_REGION": "$AWS_DEFAULT_REGION",
  "AWS_LAMBDA_RUNTIME_API": "$AWS_LAMBDA_RUNTIME_API",
  "LAMBDA_TASK_ROOT": "$LAMBDA_TASK_ROOT",
  "LAMBDA_RUNTIME_DIR": "$LAMBDA_RUNTIME_DIR",
  "LANG": "$LANG",
  "TZ": "$TZ",
  "PATH": "$PATH",
  "LD_LIBRARY_PATH": "$LD_LIBRARY_PATH",
  "_HANDLER": "$_HANDLER",
  "AWS_ACCESS_KEY_ID": "$AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY": "$AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN": "$AWS_SESSION_TOKEN",
  "TEST_KEY": "$TEST_KEY"$exec_env
 },
 "ctx": {"aws_request_id": "$REQUEST_ID"},
 "uid": $(id -u),
 "task_writable": $(writable /var/task),
 "tmp_writable": $(writable /tmp)
}
JSON
}

fail() {
  message=$(printf '%s' "$1" | sed -n 's/.*"error_msg": *"\([^"]*\)".*/\1/p')
  echo "Error: $message"
  return 1
}
