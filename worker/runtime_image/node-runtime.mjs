// lambdafleet's Node.js runtime client: /var/runtime/index.mjs of the
// nodejs images lambdafleet builds offline.
//
// AWS's own client (the npm package aws-lambda-ric) needs a native build that
// cannot be made offline, so this plain-JS one, with no dependencies, plays its
// part with the behaviour AWS's nodejs18.x/nodejs20.x runtimes show: it loads
// `file.export` from LAMBDA_TASK_ROOT (CommonJS .js/.cjs, ES modules .mjs, and
// .js under a package.json of "type": "module"), polls the Runtime API, runs
// async, promise-returning and callback-style handlers, and reports errors in
// AWS's shape ({errorType, errorMessage, trace}). console output is prefixed
// like AWS's (`<ISO time>\t<request id>\t<LEVEL>\t<message>`), one line per
// call (newlines become \r, so a multi-line message stays one log event).
//
// Written for lambdafleet from the Runtime API's documentation; not AWS's code.

import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import util from "node:util";

const require = createRequire(import.meta.url);
const API_PREFIX = "/2018-06-01/runtime";

// Errors of the runtime itself, named as AWS names them (`Runtime.<Class>`).
class RuntimeError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = `Runtime.${kind}`;
  }
}

// -- Runtime API client ------------------------------------------------------

class RuntimeApi {
  constructor(address) {
    const colon = address.lastIndexOf(":");
    this.host = address.slice(0, colon);
    this.port = Number(address.slice(colon + 1));
    // One kept-alive connection; an idle kept-alive socket does not hold the
    // event loop open, which callback handlers rely on (see `whenIdle`).
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  request(method, urlPath, body, headers = {}) {
    return new Promise((resolve, reject) => {
      const allHeaders = { ...headers };
      if (body !== undefined) {
        allHeaders["Content-Type"] = "application/json";
        allHeaders["Content-Length"] = Buffer.byteLength(body);
      }
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          path: API_PREFIX + urlPath,
          method,
          headers: allHeaders,
          agent: this.agent,
        },
        (res) => {
          const chunks = [];
          res.on("data", (chunk) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  async next() {
    const res = await this.request("GET", "/invocation/next");
    if (res.status !== 200) {
      throw new Error(`GET /invocation/next answered ${res.status}: ${res.body}`);
    }
    return res;
  }

  respond(requestId, result) {
    return this.request("POST", `/invocation/${encodeURIComponent(requestId)}/response`, result);
  }

  error(requestId, document) {
    return this.request(
      "POST",
      `/invocation/${encodeURIComponent(requestId)}/error`,
      JSON.stringify(document),
      { "Lambda-Runtime-Function-Error-Type": document.errorType },
    );
  }

  initError(document) {
    return this.request("POST", "/init/error", JSON.stringify(document), {
      "Lambda-Runtime-Function-Error-Type": document.errorType,
    });
  }
}

// -- errors and logs -----------------------------------------------------------

function isErrorLike(value) {
  return (
    value instanceof Error ||
    (value !== null &&
      typeof value === "object" &&
      typeof value.name === "string" &&
      typeof value.message === "string" &&
      typeof value.stack === "string")
  );
}

// What the Runtime API gets for a failed invocation or init.
export function errorDocument(error) {
  try {
    if (isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === "string" ? error.stack.split("\n") : [],
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return {
      errorType: "handled",
      errorMessage:
        "callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack",
    };
  }
}

// How an error appears in the log: the document and the error's own
// enumerable properties, after a tab (AWS's format).
function formatForLog(error) {
  const replacer = (_key, value) => {
    if (value instanceof Error) {
      const shown = { errorType: value.name, errorMessage: value.message, code: value.code, ...value };
      if (typeof value.stack === "string") shown.stack = value.stack.split("\n");
      return shown;
    }
    return value;
  };
  try {
    return "\t" + JSON.stringify(error, replacer);
  } catch {
    return "\t" + JSON.stringify(errorDocument(error));
  }
}

let currentRequestId; // undefined until the first invocation, as on AWS

export function logLine(level, args, now = new Date(), requestId = currentRequestId) {
  const text = `${now.toISOString()}\t${requestId}\t${level}\t${util.format(...args)}`;
  return text.replace(/\n/g, "\r") + "\n";
}

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

function patchConsole() {
  const wanted = (process.env.AWS_LAMBDA_LOG_LEVEL || "TRACE").toUpperCase();
  const threshold = Math.max(0, LEVELS.indexOf(wanted));
  const logger = (level) =>
    LEVELS.indexOf(level) >= threshold
      ? (...args) => process.stdout.write(logLine(level, args))
      : () => {};
  console.trace = logger("TRACE");
  console.debug = logger("DEBUG");
  console.info = logger("INFO");
  console.log = console.info;
  console.warn = logger("WARN");
  console.error = logger("ERROR");
  console.fatal = logger("FATAL");
}

function logError(title, error) {
  console.error(title, formatForLog(error));
}

// -- loading the handler -----------------------------------------------------

// "dir/sub/file.a.b" -> ["dir/sub/", "file", "a.b"]
export function parseHandler(handler) {
  if (handler.includes("..")) {
    throw new RuntimeError(
      "MalformedHandlerName",
      `'${handler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const base = path.basename(handler);
  const moduleRoot = handler.slice(0, handler.length - base.length);
  const match = /^([^.]*)\.(.*)$/.exec(base);
  if (match === null) {
    throw new RuntimeError("MalformedHandlerName", "Bad handler");
  }
  return [moduleRoot, match[1], match[2]];
}

// Whether .js files in `folder` are ES modules: the nearest package.json
// says "type": "module" (node_modules folders stop the search).
function isModuleFolder(folder) {
  for (let dir = folder; ; dir = path.dirname(dir)) {
    if (dir.endsWith("/node_modules")) return false;
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, "utf8")).type === "module";
      } catch (error) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, error);
        return false;
      }
    }
    if (dir === path.dirname(dir)) return false;
  }
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  const exists = (file) => fs.existsSync(file);
  if (exists(base)) return require(base); // an extensionless file is CommonJS
  const esm = isModuleFolder(path.dirname(base));
  if (!esm && exists(`${base}.js`)) return require(`${base}.js`);
  if (esm && exists(`${base}.js`)) return import(pathToFileURL(`${base}.js`).href);
  if (exists(`${base}.mjs`)) return import(pathToFileURL(`${base}.mjs`).href);
  if (exists(`${base}.cjs`)) return require(`${base}.cjs`);
  // Last, Node's own resolution (a package folder, node_modules): relative
  // to the task root, not to this file.
  return require(require.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

export async function loadHandler(taskRoot, handler) {
  const [moduleRoot, moduleName, exportPath] = parseHandler(handler);
  let loaded;
  try {
    loaded = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new RuntimeError("UserCodeSyntaxError", String(error));
    }
    if (error && error.code === "MODULE_NOT_FOUND") {
      throw new RuntimeError("ImportModuleError", String(error));
    }
    throw error;
  }
  const found = exportPath.split(".").reduce((value, key) => value && value[key], loaded);
  if (!found) {
    throw new RuntimeError("HandlerNotFound", `${handler} is undefined or not exported`);
  }
  if (typeof found !== "function") {
    throw new RuntimeError("HandlerNotFound", `${handler} is not a function`);
  }
  return found;
}

// -- one invocation ------------------------------------------------------------

function parseJsonHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

export function buildContext(headers, env = process.env, now = Date.now) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers["lambda-runtime-client-context"]),
    identity: parseJsonHeader(headers["lambda-runtime-cognito-identity"]),
    getRemainingTimeInMillis() {
      return deadline - now();
    },
  };
}

// Called when the event loop has nothing left to do: what a callback-style
// handler waits for before its answer is sent (callbackWaitsForEmptyEventLoop).
let whenIdle = null;
process.on("beforeExit", () => {
  const task = whenIdle;
  whenIdle = null;
  if (task !== null) task();
});

// What to do with an uncaught exception or unhandled rejection: before the
// first invocation it is an init error, during one that invocation's error.
let reportFatal = null;

function invokeOnce(api, handler, isAsync, invocation) {
  const requestId = invocation.headers["lambda-runtime-aws-request-id"];
  currentRequestId = requestId;
  const traceId = invocation.headers["lambda-runtime-trace-id"];
  if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
  else delete process.env._X_AMZN_TRACE_ID;

  return new Promise((finished) => {
    let done = false;
    const send = (post) => {
      if (done) return;
      done = true;
      whenIdle = null;
      post().then(finished, (error) => {
        console.error("failed to report the invocation's result:", error);
        process.exit(1);
      });
    };
    const succeed = (result) =>
      send(() => {
        let body;
        try {
          body = JSON.stringify(result === undefined ? null : result);
        } catch (error) {
          logError("Invoke Error", error);
          return api.error(requestId, errorDocument(error));
        }
        return api.respond(requestId, body);
      });
    const fail = (error) =>
      send(() => {
        logError("Invoke Error", error);
        return api.error(requestId, errorDocument(error));
      });
    reportFatal = (error, code) => {
      const post = done ? Promise.resolve() : api.error(requestId, errorDocument(error));
      done = true;
      post.finally(() => process.exit(code));
    };

    const context = buildContext(invocation.headers);
    const callback = (error, result) => {
      if (error !== undefined && error !== null) fail(error);
      else if (context.callbackWaitsForEmptyEventLoop) {
        whenIdle = () => setImmediate(() => succeed(result));
      } else succeed(result);
    };
    context.done = (error, result) => (error !== undefined && error !== null ? fail(error) : succeed(result));
    context.succeed = (result) => succeed(result);
    context.fail = (error) => fail(error === undefined || error === null ? "handled" : error);

    // Nothing left to run and no answer: a sync or callback handler that never
    // called back answers null; an async one whose promise never settled fails.
    whenIdle = () => {
      if (isAsync) {
        fail(
          new RuntimeError(
            "NodeJsExit",
            "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled.",
          ),
        );
      } else succeed(null);
    };

    try {
      const event = JSON.parse(invocation.body);
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") {
        returned.then(succeed, (error) => fail(error === undefined || error === null ? "handled" : error));
      }
    } catch (error) {
      fail(error);
    }
  });
}

// -- main ------------------------------------------------------------------------

async function main() {
  patchConsole();
  const api = new RuntimeApi(process.env.AWS_LAMBDA_RUNTIME_API);
  reportFatal = (error, code) => {
    api.initError(errorDocument(error)).finally(() => process.exit(code));
  };
  process.on("uncaughtException", (error) => {
    logError("Uncaught Exception", error);
    reportFatal(error, 129);
  });
  process.on("unhandledRejection", (reason) => {
    const error = new RuntimeError("UnhandledPromiseRejection", String(reason));
    error.reason = reason;
    logError("Unhandled Promise Rejection", error);
    reportFatal(error, 128);
  });

  let handler;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || "/var/task", process.env._HANDLER || "");
  } catch (error) {
    logError("Uncaught Exception", error);
    await api.initError(errorDocument(error)).catch(() => {});
    process.exit(129);
  }
  const isAsync = handler.constructor && handler.constructor.name === "AsyncFunction";
  for (;;) {
    const invocation = await api.next();
    await invokeOnce(api, handler, isAsync, invocation);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  main().catch((error) => {
    console.error("lambdafleet runtime client failed:", error);
    process.exit(1);
  });
}
