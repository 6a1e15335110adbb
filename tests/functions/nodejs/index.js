// The scenarios of AWS's recorded test_lambda_common, for the Node.js runtimes.
const fs = require("fs");

exports.echo = async (event) => event;

function writable(folder) {
  try {
    fs.writeFileSync(`${folder}/probe.txt`, "x");
    return true;
  } catch {
    return false;
  }
}

exports.introspect = async (event, context) => ({
  environment: { ...process.env },
  ctx: {
    aws_request_id: context.awsRequestId,
    function_name: context.functionName,
    function_version: context.functionVersion,
    invoked_function_arn: context.invokedFunctionArn,
    log_group_name: context.logGroupName,
    log_stream_name: context.logStreamName,
    memory_limit_in_mb: context.memoryLimitInMB,
    remaining_time_in_millis: context.getRemainingTimeInMillis(),
  },
  uid: process.getuid(),
  task_writable: writable("/var/task"),
  tmp_writable: writable("/tmp"),
  node_version: process.version,
});

exports.fail = async (event) => {
  throw new Error(`Error: ${event.error_msg}`);
};

// Callback style. By default the answer waits for the event loop to empty,
// so it is sent after the timer stopped: ticks is 3. Told not to wait, the
// runtime sends it at once: ticks is still 0.
exports.callback = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = !event.dont_wait;
  const result = { ticks: 0, event };
  const timer = setInterval(() => {
    result.ticks += 1;
    if (result.ticks === 3) clearInterval(timer);
  }, 5);
  callback(null, result);
};

// Logs through console, as AWS's console patching prints them.
exports.logs = async (event) => {
  console.log("hello", { from: "node" });
  console.error("multi\nline");
  return "logged";
};
