// The lambdafleet dashboard: renders the snapshots /_fleet/events sends once
// a second. Plain DOM and a canvas; no framework, nothing fetched from
// elsewhere. Text from the cluster only ever goes in through textContent.
"use strict";

const $ = (selector) => document.querySelector(selector);
const OUTCOME_PREFIX = "INVOCATION_OUTCOME_";
const STATE_PREFIX = "ENVIRONMENT_STATE_";
// Request ids whose logs row is open, with what it shows.
const openLogs = new Map();
// The row of each recent invocation, kept across snapshots (a finished
// invocation never changes): re-rendering moves the same nodes, so a click
// that spans a snapshot still lands on its row.
const recentRows = new Map();
let last = null;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "title") node.title = value;
    else if (key === "colspan") node.colSpan = value;
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const badge = (text, kind) => el("span", { class: `badge ${kind || text}` }, text);
const outcome = (inv) => String(inv.outcome).replace(OUTCOME_PREFIX, "").toLowerCase();
const envState = (env) => String(env.state).replace(STATE_PREFIX, "").toLowerCase();
const fnName = (arn) => String(arn).split(":")[6] || arn;

function ms(value) {
  const v = Number(value);
  if (!Number.isFinite(v) || v <= 0) return "–";
  if (v < 10) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${v.toFixed(0)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

function age(msValue) {
  const v = Number(msValue);
  return v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`;
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function renderSummary(snap) {
  const { status, stats, functions } = snap;
  $("#sum-workers").textContent = status.live_workers;
  $("#sum-functions").textContent = functions.length;
  $("#sum-queued").textContent = status.queued_events;
  $("#sum-rate").textContent = Number(stats.rate_per_second).toFixed(2);
  $("#sum-p50").textContent = ms(stats.p50_ms);
  $("#sum-p90").textContent = ms(stats.p90_ms);
  $("#sum-p99").textContent = ms(stats.p99_ms);
  $("#sum-errors").textContent = Number(stats.errors);
  $("#sum-throttles").textContent = Number(stats.throttles);
}

function renderWorkers(status) {
  const rows = status.workers.map((w) => {
    const used = w.capacity ? Math.min(1, w.in_flight / w.capacity) : 0;
    // One badge per function version, with its environments by state.
    const groups = new Map();
    for (const env of w.environments) {
      const key = `${fnName(env.function_arn)}:${env.version}`;
      const group = groups.get(key) || { states: {}, provisioned: 0, invocations: 0, runtime: env.runtime, memory: env.memory_mb };
      const state = envState(env);
      group.states[state] = (group.states[state] || 0) + 1;
      group.provisioned += env.provisioned ? 1 : 0;
      group.invocations += Number(env.invocations);
      groups.set(key, group);
    }
    const envs = [...groups.entries()].sort().map(([key, g]) => {
      const states = Object.entries(g.states).map(([state, n]) => `${n} ${state}`).join(", ");
      const busiest = g.states.starting ? "starting" : g.states.invoking ? "invoking" : "ready";
      return el(
        "div",
        { class: "env", title: `${g.runtime} ${g.memory} MB · ${g.invocations} invocations` },
        badge(key, busiest),
        ` ${states}`,
        g.provisioned ? el("span", { class: "muted" }, ` (${g.provisioned} provisioned)`) : null,
      );
    });
    return el(
      "tr",
      { dataset: { workerId: w.worker_id } },
      el("td", { class: "mono" }, w.worker_id, el("div", { class: "muted" }, w.version)),
      el("td", {}, w.draining ? badge("draining") : badge("live")),
      el(
        "td",
        {},
        el("span", { class: "bar" }, el("span", { style: `width:${(used * 100).toFixed(0)}%` })),
        ` ${w.in_flight}/${w.capacity}`,
      ),
      el("td", {}, `${w.memory_mb} MB`),
      el("td", {}, age(w.heartbeat_age_ms)),
      el(
        "td",
        {},
        envs.length ? envs : el("span", { class: "muted" }, "none"),
        w.prestarted ? el("div", { class: "muted" }, `${w.prestarted} pre-started`) : null,
      ),
    );
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no live worker")));
  replaceRows($("#workers tbody"), rows);
}

function renderFunctions(functions, status) {
  const envs = new Map();
  for (const w of status.workers) {
    for (const env of w.environments) {
      const p = String(env.function_arn).split(":");
      const key = `${p[4]}/${p[3]}/${p[6]}`;
      envs.set(key, (envs.get(key) || 0) + 1);
    }
  }
  const regions = new Set(functions.map((f) => `${f.account_id}/${f.region}`));
  const rows = functions.map((f) => {
    const key = `${f.account_id}/${f.region}/${f.function_name}`;
    const updating = f.last_update_status && f.last_update_status !== "Successful";
    return el(
      "tr",
      { dataset: { function: f.function_name } },
      el(
        "td",
        {},
        f.function_name,
        regions.size > 1 ? el("div", { class: "muted" }, `${f.account_id} ${f.region}`) : null,
      ),
      el("td", {}, badge(f.state || "?"), updating ? badge(f.last_update_status, "Pending") : null),
      el("td", {}, `${f.runtime || "image"} · ${f.memory_size} MB`),
      el("td", {}, `${f.versions}${f.aliases ? ` · ${f.aliases} alias${f.aliases > 1 ? "es" : ""}` : ""}`),
      el("td", {}, f.reserved_concurrency === undefined ? "–" : f.reserved_concurrency),
      el("td", {}, f.provisioned_concurrency ? `${f.provisioned_ready}/${f.provisioned_concurrency}` : "–"),
      el("td", {}, envs.get(key) || 0),
    );
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no functions")));
  replaceRows($("#functions tbody"), rows);
}

async function loadLogs(inv) {
  const rid = inv.request_id;
  openLogs.set(rid, "loading logs…");
  render();
  const since = Number(inv.start_unix_ms) - 1000;
  let text;
  try {
    const response = await fetch(
      `/_fleet/logs/${encodeURIComponent(inv.function_name)}?since=${since}`,
      { headers: { Accept: "application/x-ndjson" } },
    );
    if (!response.ok) {
      text = "no logs";
    } else {
      const lines = (await response.text()).split("\n").filter((line) => line.trim());
      const mine = [];
      for (const line of lines) {
        try {
          const entry = JSON.parse(line);
          if (entry.request_id === rid) mine.push(`${entry.timestamp ?? ""}  ${entry.message ?? ""}`);
        } catch (_) {
          // A line that is not JSON is not one of ours.
        }
      }
      text = mine.length ? mine.join("\n") : "no logs";
    }
  } catch (_) {
    text = "no logs";
  }
  if (openLogs.has(rid)) openLogs.set(rid, text);
  render();
}

function toggleLogs(inv) {
  if (openLogs.has(inv.request_id)) {
    openLogs.delete(inv.request_id);
    render();
  } else {
    loadLogs(inv);
  }
}

function invocationRow(inv) {
  const result = outcome(inv);
  const started = new Date(Number(inv.start_unix_ms));
  return el(
    "tr",
    { class: "inv", dataset: { requestId: inv.request_id }, onclick: () => toggleLogs(inv) },
    el("td", {}, started.toLocaleTimeString()),
    el("td", {}, inv.function_name, inv.qualifier ? el("span", { class: "muted" }, `:${inv.qualifier}`) : null),
    el("td", {}, inv.executed_version),
    el("td", { class: "mono" }, inv.worker_id || "–"),
    el("td", {}, ms(inv.duration_ms)),
    el("td", { title: inv.error_type }, badge(result), inv.error_type ? ` ${inv.error_type}` : ""),
    el("td", {}, inv.cold_start ? badge("cold", "starting") : "", inv.asynchronous ? badge("async", "invoking") : ""),
    el("td", { class: "mono muted" }, inv.request_id),
  );
}

function renderRecent(recent) {
  const rows = [];
  const shown = new Set();
  for (const inv of recent) {
    // An event's attempts share a request id: key by id and start.
    const key = `${inv.request_id}@${inv.start_unix_ms}`;
    shown.add(key);
    let row = recentRows.get(key);
    if (!row) {
      row = invocationRow(inv);
      recentRows.set(key, row);
    }
    rows.push(row);
    if (openLogs.has(inv.request_id)) {
      rows.push(
        el(
          "tr",
          { class: "logs", dataset: { logsFor: inv.request_id } },
          el("td", { colspan: 8 }, el("pre", { class: "logs" }, openLogs.get(inv.request_id))),
        ),
      );
    }
  }
  for (const key of recentRows.keys()) if (!shown.has(key)) recentRows.delete(key);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "no invocations yet")));
  replaceRows($("#recent tbody"), rows);
}

function drawChart(seconds) {
  const canvas = $("#chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 40, right: 56, top: 8, bottom: 18 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const n = Math.max(seconds.length, 1);
  // A count axis in whole steps of four gridlines.
  const maxCount = Math.ceil(Math.max(1, ...seconds.map((s) => s.invocations)) / 4) * 4;
  const maxMs = Math.max(1, ...seconds.map((s) => s.p99_ms));
  const step = plotW / n;
  const y = (v, max) => pad.top + plotH - (v / max) * plotH;

  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7385";
  ctx.strokeStyle = "#e2e5eb";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const gy = pad.top + (plotH * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, gy);
    ctx.lineTo(pad.left + plotW, gy);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(String(maxCount * (1 - i / 4)), pad.left - 4, gy + 4);
    ctx.textAlign = "left";
    ctx.fillText(ms(maxMs * (1 - i / 4)), pad.left + plotW + 4, gy + 4);
  }
  ctx.textAlign = "center";
  ctx.fillText(`${n} s ago`, pad.left + 16, height - 4);
  ctx.fillText("now", pad.left + plotW - 10, height - 4);

  seconds.forEach((s, i) => {
    const x = pad.left + i * step + 1;
    const w = Math.max(1, step - 2);
    const ok = s.invocations - s.errors - s.throttles;
    let top = pad.top + plotH;
    for (const [count, color] of [[ok, "#9db9ea"], [s.errors, "#c93c37"], [s.throttles, "#c98a00"]]) {
      if (count <= 0) continue;
      const h = (count / maxCount) * plotH;
      ctx.fillStyle = color;
      ctx.fillRect(x, top - h, w, h);
      top -= h;
    }
  });

  for (const [key, color] of [["p50_ms", "#1f8f4e"], ["p99_ms", "#7a3fc4"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    seconds.forEach((s, i) => {
      const v = s[key];
      const x = pad.left + i * step + step / 2;
      if (!v) {
        drawing = false;
        return;
      }
      if (drawing) ctx.lineTo(x, y(v, maxMs));
      else ctx.moveTo(x, y(v, maxMs));
      drawing = true;
    });
    ctx.stroke();
  }
  ctx.textAlign = "left";
  let legendX = pad.left + 6;
  for (const [label, color] of [["ok", "#9db9ea"], ["errors", "#c93c37"], ["throttles", "#c98a00"], ["p50", "#1f8f4e"], ["p99", "#7a3fc4"]]) {
    ctx.fillStyle = color;
    ctx.fillRect(legendX, pad.top + 2, 10, 10);
    ctx.fillStyle = "#1d2330";
    ctx.fillText(label, legendX + 13, pad.top + 11);
    legendX += ctx.measureText(label).width + 28;
  }
}

function render() {
  if (!last) return;
  renderSummary(last);
  renderWorkers(last.status);
  renderFunctions(last.functions, last.status);
  renderRecent(last.recent);
  const seconds = last.stats.seconds.map((s) => ({
    invocations: Number(s.invocations),
    errors: Number(s.errors),
    throttles: Number(s.throttles),
    p50_ms: Number(s.p50_ms),
    p99_ms: Number(s.p99_ms),
  }));
  drawChart(seconds);
}

function connect() {
  const connection = $("#connection");
  const events = new EventSource("/_fleet/events");
  events.onopen = () => {
    connection.textContent = "live";
    connection.className = "badge on";
  };
  events.onmessage = (message) => {
    const snap = JSON.parse(message.data);
    if (snap.error) {
      connection.textContent = snap.error;
      connection.className = "badge off";
      return;
    }
    connection.textContent = "live";
    connection.className = "badge on";
    last = snap;
    render();
  };
  events.onerror = () => {
    // EventSource reconnects by itself (the stream's retry: 1000).
    connection.textContent = "reconnecting…";
    connection.className = "badge off";
  };
}

window.addEventListener("resize", render);
connect();
