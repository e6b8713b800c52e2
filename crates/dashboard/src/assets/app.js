// The coldstart dashboard: plain DOM, no framework. Data comes from /api/...; live changes
// from the Server-Sent Events at /api/events. Every value is put on the page as text.

const $ = (id) => document.getElementById(id);
const state = { invocations: new Map(), lines: [], functions: [], selected: null };
const MAX_ROWS = 500;
const MAX_LINES = 5000;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok && options?.allowError !== true) throw new Error(`${path}: ${response.status} ${text}`);
  return { status: response.status, body };
}

const ms = (v) => (v === null || v === undefined ? "" : `${Math.round(v * 100) / 100} ms`);
// A preview shortened for a table cell; the invocation's detail shows all that was kept.
const short = (text, n = 80) => (text === null || text === undefined ? "" : text.length > n ? `${text.slice(0, n)}…` : text);

// ---- tabs ---------------------------------------------------------------------------------
const tabs = ["functions", "invocations", "logs", "invoke", "apis", "schedules", "websockets"];
function showTab(name) {
  if (!tabs.includes(name)) name = "functions";
  for (const t of tabs) {
    $(t).hidden = t !== name;
    const tab = $(`tab-${t}`);
    tab.setAttribute("aria-selected", String(t === name));
    tab.tabIndex = t === name ? 0 : -1;
  }
  if (name === "websockets") loadWebsockets();
  if (name === "apis") loadApis();
  if (name === "schedules") loadSchedules();
}
const shown = (name) => !$(name).hidden;
window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
document.querySelector('[role="tablist"]').addEventListener("keydown", (e) => {
  const current = tabs.indexOf(location.hash.slice(1) || "functions");
  const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
  if (!step) return;
  const next = tabs[(current + step + tabs.length) % tabs.length];
  location.hash = next;
  $(`tab-${next}`).focus();
});

// ---- functions ----------------------------------------------------------------------------
let functionsQueued = false;
function refreshFunctions() {
  if (functionsQueued) return;
  functionsQueued = true;
  setTimeout(() => { functionsQueued = false; loadFunctions(); }, 100);
}

async function loadFunctions() {
  const { body } = await api("/api/functions");
  state.functions = body.functions;
  const rows = body.functions.map((f) => {
    const sandboxes = el("td");
    if (!f.sandboxes.length) sandboxes.append("none");
    for (const s of f.sandboxes) {
      sandboxes.append(el("span", { class: `sandbox state-${s.state}`, title: `pid ${s.pid}` }, `#${s.id} ${s.state}`));
    }
    const row = el("tr", { tabindex: "0", "data-function": f.name },
      el("th", { scope: "row" }, f.name), el("td", {}, f.state ?? ""), buildCell(f.build), el("td", {}, `${f.memoryMb} MB`),
      el("td", {}, `${f.timeoutSeconds} s`), sandboxes, el("td", {}, f.stats.invocations),
      el("td", {}, f.stats.coldStarts), el("td", {}, f.stats.errors),
      el("td", {}, `${ms(f.stats.p50Ms) || "–"} / ${ms(f.stats.p99Ms) || "–"}`));
    const open = () => showFunction(f);
    row.addEventListener("click", open);
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    return row;
  });
  $("function-rows").replaceChildren(...rows);
  for (const id of ["inv-function", "log-function", "invoke-function"]) fillFunctions($(id), id !== "invoke-function");
}

// building / built / failed (with the first line of why) / not built.
function buildCell(build) {
  if (!build) return el("td", { class: "build-none" }, "not built");
  const text = build.status === "failed" && build.error ? `failed: ${build.error}` : build.status;
  return el("td", { class: `build-${build.status}` }, text);
}

function fillFunctions(select, withAll) {
  const chosen = select.value;
  const options = state.functions.map((f) => el("option", { value: f.name }, f.name));
  if (withAll) options.unshift(el("option", { value: "" }, "all"));
  select.replaceChildren(...options);
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function showFunction(f) {
  const env = el("dl");
  for (const [k, v] of Object.entries(f.environment)) env.append(el("dt", {}, k), el("dd", {}, v));
  $("function-details").replaceChildren(el("h3", {}, f.name),
    el("p", {}, `Command: ${f.command.join(" ")}`), el("p", {}, `Handler: ${f.handler ?? "–"}, concurrency ${f.concurrency}, freeze ${f.freeze}`),
    el("h4", {}, "Environment"), env);
}

// ---- invocations --------------------------------------------------------------------------
function upsertInvocation(inv) {
  state.invocations.delete(inv.requestId);
  state.invocations.set(inv.requestId, inv);
  while (state.invocations.size > MAX_ROWS) state.invocations.delete(state.invocations.keys().next().value);
  renderInvocations();
  if (state.selected === inv.requestId) openInvocation(inv.requestId);
}

async function openInvocation(id) {
  const { status, body } = await api(`/api/invocations/${encodeURIComponent(id)}`, { allowError: true });
  if (status === 200) showInvocation(body);
}

function renderInvocations() {
  const fn = $("inv-function").value;
  const status = $("inv-status").value;
  const rows = [];
  for (const inv of [...state.invocations.values()].reverse()) {
    if ((fn && inv.function !== fn) || (status && inv.status !== status)) continue;
    const row = el("tr", { tabindex: "0", "data-request-id": inv.requestId },
      el("td", {}, inv.startedAt), el("td", {}, inv.function), el("td", {}, inv.requestId),
      el("td", { class: `status-${inv.status}` }, inv.status), el("td", {}, ms(inv.durationMs)),
      el("td", {}, ms(inv.billedDurationMs)),
      el("td", {}, inv.maxMemoryUsedMb ? `${inv.maxMemoryUsedMb} / ${inv.memorySizeMb} MB` : ""),
      el("td", {}, ms(inv.initDurationMs)),
      el("td", { class: "preview" }, el("code", {}, short(inv.payload))),
      el("td", { class: "preview" }, el("code", {}, short(inv.answer))));
    const open = () => { state.selected = inv.requestId; openInvocation(inv.requestId); };
    row.addEventListener("click", open);
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    rows.push(row);
  }
  $("invocation-rows").replaceChildren(...rows);
}

function showInvocation(inv) {
  $("invocation-detail").replaceChildren(
    el("h3", {}, `${inv.function} ${inv.requestId}`),
    el("p", {}, `${inv.status}, ${ms(inv.durationMs)} (billed ${ms(inv.billedDurationMs)})`),
    el("h4", {}, "Payload (first KiB, secrets hidden)"), el("pre", {}, inv.payload ?? "(none yet)"),
    el("h4", {}, "Answer (first KiB, secrets hidden)"), el("pre", {}, inv.answer ?? "(none yet)"),
    el("h4", {}, "Log"), el("pre", {}, inv.logs.join("\n")),
    el("h4", {}, "Platform events"), el("pre", {}, inv.events.map((e) => JSON.stringify(e)).join("\n")));
}

// ---- logs ---------------------------------------------------------------------------------
function lineShown(l) {
  const fn = $("log-function").value;
  const q = $("log-search").value;
  return (!fn || l.function === fn) && (!q || l.line.includes(q));
}
const lineText = (l) => `[${l.function}] ${l.line}\n`;
function renderLogs() {
  $("log-lines").textContent = state.lines.filter(lineShown).map(lineText).join("");
  follow();
}
function appendLine(l) {
  state.lines.push(l);
  if (state.lines.length > MAX_LINES) state.lines.splice(0, state.lines.length - MAX_LINES);
  if (lineShown(l)) { $("log-lines").append(lineText(l)); follow(); }
}
function follow() {
  if ($("log-follow").checked) { const pre = $("log-lines"); pre.scrollTop = pre.scrollHeight; }
}

// ---- invoke -------------------------------------------------------------------------------
async function loadSamples() {
  const { body } = await api("/api/samples");
  const select = $("invoke-sample");
  for (const s of body.samples) select.append(el("option", { value: `${s.service}/${s.event}` }, `${s.service} ${s.event} — ${s.description}`));
  select.addEventListener("change", async () => {
    if (!select.value) return;
    const { body: event } = await api(`/api/samples/${select.value}`);
    $("invoke-payload").value = JSON.stringify(event, null, 2);
  });
}

$("invoke-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  $("invoke-status").textContent = "invoking…";
  $("invoke-answer").textContent = "";
  $("invoke-logs").textContent = "";
  $("invoke-button").disabled = true;
  const request = {
    method: "POST", headers: { "content-type": "application/json" }, allowError: true,
    body: JSON.stringify({ function: form.get("function"), payload: form.get("payload"), mode: form.get("mode") }),
  };
  try {
    if (form.get("mode") === "stream") { await invokeStreaming(request); return; }
    const { status, body } = await api("/api/invoke", request);
    const outcome = body.functionError ? `function error ${body.functionError}` : body.errorType ?? (status === 202 ? "queued" : "ok");
    $("invoke-status").textContent = `${body.statusCode} ${outcome} — request ${body.requestId}`;
    $("invoke-answer").textContent = body.answer ?? "";
    $("invoke-logs").textContent = body.logs ?? "(Event invocations: see the Invocations tab)";
  } catch (err) {
    $("invoke-status").textContent = String(err);
  } finally {
    $("invoke-button").disabled = false;
  }
});

// Stream mode: the answer is newline-delimited JSON ({requestId}, {chunk}…, {end}); each chunk
// is shown as it arrives.
async function invokeStreaming(request) {
  const response = await fetch("/api/invoke", request);
  if (!response.ok || !response.body) {
    const text = await response.text();
    let body = {};
    try { body = JSON.parse(text); } catch { body = { answer: text }; }
    $("invoke-status").textContent = `${response.status} ${body.errorType ?? body.message ?? "refused"}`;
    $("invoke-answer").textContent = body.answer ?? "";
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let id = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const item = JSON.parse(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      if (item.requestId) {
        id = item.requestId;
        $("invoke-status").textContent = `streaming — request ${id}`;
      } else if (item.chunk !== undefined) {
        $("invoke-answer").append(item.chunk);
      } else if (item.end) {
        const outcome = item.end.functionError ? `function error ${item.end.functionError}` : "ok";
        $("invoke-status").textContent = `200 ${outcome} — request ${id}`;
        $("invoke-logs").textContent = item.end.logs ?? "";
      }
    }
  }
}

// ---- APIs ---------------------------------------------------------------------------------
let apisQueued = false;
function refreshApis() {
  if (apisQueued || !shown("apis")) return;
  apisQueued = true;
  setTimeout(() => { apisQueued = false; loadApis(); }, 100);
}

async function loadApis() {
  const { body } = await api("/api/apis");
  $("api-list").replaceChildren(...body.apis.map((a) => el("section", { "data-api": `${a.kind}/${a.name}` },
    el("h3", {}, `${a.kind} ${a.name}`), el("p", {}, el("a", { href: a.url }, a.url)),
    el("ul", {}, ...a.routes.map((r) => el("li", {}, r.function ? `${r.function}: ${r.route}` : r.route))),
    a.kind === "url" || a.kind === "http-api" || a.kind === "rest-api" ? apiRequests(a) : null)));
}

// The API's latest requests, newest first; a request id opens its invocation.
function apiRequests(a) {
  if (!a.requests.length) return el("p", {}, "No requests yet.");
  const rows = a.requests.map((r) => {
    const id = r.requestId
      ? el("a", { href: "#invocations", class: "request-link", onclick: () => {
        state.selected = r.requestId;
        openInvocation(r.requestId);
      } }, r.requestId)
      : "–";
    return el("tr", {}, el("td", {}, r.time), el("td", {}, r.method), el("td", {}, r.path),
      el("td", { class: r.status >= 500 ? "status-error" : "" }, r.status), el("td", {}, ms(r.durationMs)),
      el("td", {}, r.function ?? ""), el("td", {}, id));
  });
  return el("table", { "aria-label": `Recent requests of ${a.name}` },
    el("thead", {}, el("tr", {}, ...["Time", "Method", "Path", "Status", "Duration", "Function", "Request id"]
      .map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows));
}

// ---- schedules ----------------------------------------------------------------------------
async function loadSchedules() {
  const { body } = await api("/api/schedules");
  if (!body.schedules.length) {
    $("schedule-rows").replaceChildren(el("tr", {}, el("td", { colspan: "5" }, "No schedules.")));
    return;
  }
  $("schedule-rows").replaceChildren(...body.schedules.map((s) => {
    const fire = el("button", { type: "button", "aria-label": `Fire ${s.name} now`, onclick: async () => {
      fire.disabled = true;
      const { status, body: fired } = await api(`/api/schedules/${encodeURIComponent(s.name)}/fire`, { method: "POST", allowError: true });
      fire.disabled = false;
      $("schedule-status").textContent = status === 200
        ? `${s.name} fired: ${fired.deliveries.map((d) => `${d.function} request ${d.requestId}`).join(", ")}`
        : `${s.name} could not fire (${status}): ${fired?.message ?? ""}`;
    } }, "Fire now");
    return el("tr", { "data-schedule": s.name }, el("th", { scope: "row" }, s.name), el("td", {}, s.function),
      el("td", {}, s.expression), el("td", {}, s.next ?? (s.enabled ? "–" : "disabled")), el("td", {}, fire));
  }));
}

// ---- WebSocket ----------------------------------------------------------------------------
async function loadWebsockets() {
  const { body } = await api("/api/websockets");
  if (!body.websockets.length) { $("ws-list").replaceChildren(el("p", {}, "No WebSocket APIs.")); return; }
  $("ws-list").replaceChildren(...body.websockets.map((w) => {
    const list = Array.isArray(w.connections) ? w.connections : [];
    return el("section", {}, el("h3", {}, `${w.name} — ${w.url}`),
      list.length ? el("ul", {}, ...list.map((c) => connectionItem(w.name, c))) : el("p", {}, "No connections."));
  }));
}

function connectionItem(apiName, c) {
  const input = el("input", { type: "text", "aria-label": `Message to ${c.connectionId}`, class: "ws-message" });
  const result = el("span", { role: "status" });
  const path = `/api/websockets/${encodeURIComponent(apiName)}/connections/${encodeURIComponent(c.connectionId)}`;
  const send = el("button", { type: "submit" }, "Send");
  const form = el("form", { class: "ws-send" }, input, send, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const { status } = await api(path, { method: "POST", body: input.value, allowError: true });
    result.textContent = status === 200 ? " sent" : ` failed (${status})`;
  });
  const disconnect = el("button", { type: "button", onclick: async () => {
    await api(path, { method: "DELETE", allowError: true });
    loadWebsockets();
  } }, "Disconnect");
  return el("li", { "data-connection-id": c.connectionId },
    el("p", {}, `${c.connectionId} — connected ${c.connectedAt}, last active ${c.lastActiveAt}, from ${c.identity?.sourceIp ?? "?"}`),
    form, disconnect);
}
$("ws-refresh").addEventListener("click", loadWebsockets);

// ---- live ---------------------------------------------------------------------------------
function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { $("live").textContent = "live"; });
  events.addEventListener("error", () => { $("live").textContent = "disconnected, retrying…"; });
  events.addEventListener("updates", (e) => {
    let lagged = false;
    for (const { kind, data } of JSON.parse(e.data)) {
      if (kind === "invocation") { upsertInvocation(data); refreshFunctions(); }
      else if (kind === "log") appendLine(data);
      else if (kind === "build") refreshFunctions();
      else if (kind === "apiRequest") refreshApis();
      else if (kind === "lagged") {
        $("live").textContent = `fell behind: ${data.missed} updates missed; reloaded`;
        lagged = true;
      }
    }
    if (lagged) loadHistory();
  });
}

async function loadHistory() {
  const [{ body: inv }, { body: logs }] = await Promise.all([api("/api/invocations"), api("/api/logs")]);
  state.invocations.clear();
  for (const i of inv.invocations.reverse()) state.invocations.set(i.requestId, i);
  state.lines = logs.lines;
  renderInvocations();
  renderLogs();
}

for (const id of ["inv-function", "inv-status"]) $(id).addEventListener("change", renderInvocations);
for (const id of ["log-function", "log-search"]) $(id).addEventListener("input", renderLogs);

showTab(location.hash.slice(1));
connect();
await loadFunctions();
await Promise.all([loadHistory(), loadSamples()]);
document.body.dataset.ready = "true";
