// Boomerang's web console: hash routing over the JSON API. Every value
// that comes from the API is written with textContent, never as markup.
"use strict";

const keyName = "boomerang-api-key";
const adminKeyName = "boomerang-admin-key";
const statuses = ["queued", "processing", "retrying", "succeeded", "failed", "canceled"];
const $ = (id) => document.getElementById(id);

let refreshTimer = null;
let eventsCursors = [];  // cursor of each page shown, for "next page"
let dlCursor = "";

class Unauthorized extends Error {}

// api fetches path with the stored key; on 401 it shows the key form.
async function api(path, init) {
  const res = await send(path, init, sessionStorage.getItem(keyName));
  if (res.status === 401) {
    sessionStorage.removeItem(keyName);
    showLogin("The API key is missing or unknown.");
    throw new Unauthorized("unauthorized");
  }
  return res;
}

// send fetches path with key (none when empty).
function send(path, init, key) {
  init = init || {};
  const headers = Object.assign({"Accept": "application/json"}, init.headers || {});
  if (key) headers["Authorization"] = "Bearer " + key;
  return fetch(path, Object.assign({}, init, {headers: headers}));
}

async function apiJSON(path, init) {
  const res = await api(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(path.split("?")[0] + ": " + res.status + " " + (body.error || ""));
  return body;
}

function notice(msg) { $("notice").textContent = msg || ""; }

function fail(err) {
  if (err instanceof Unauthorized) return;
  notice(String(err.message || err));
}

// el makes an element whose text is text (never parsed as markup).
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c));
  }
  return tr;
}

function errorCell(text) { const td = el("td", text, "error"); return td; }

function eventLink(id) {
  const a = el("a", id);
  a.href = "#/event/" + encodeURIComponent(id);
  return a;
}

function when(t) { return t ? new Date(t).toLocaleString() : ""; }

function showLogin(msg) {
  stopRefresh();
  for (const p of document.querySelectorAll(".page")) p.hidden = true;
  $("login").hidden = false;
  notice(msg || "");
  $("login-key").focus();
}

function stopRefresh() {
  if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; }
}

function showPage(name) {
  $("login").hidden = true;
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.id === "nav-" + name);
  $("logout").hidden = !sessionStorage.getItem(keyName);
}

// route shows the page the hash names.
function route() {
  stopRefresh();
  notice("");
  const h = location.hash.replace(/^#\/?/, "");
  if (h.startsWith("event/")) {
    showPage("event");
    loadEvent(decodeURIComponent(h.slice("event/".length))).catch(fail);
  } else if (h === "events") {
    showPage("events");
    eventsCursors = [""];
    loadEvents().catch(fail);
  } else if (h === "dead-letters") {
    showPage("dead-letters");
    dlCursor = "";
    loadDeadLetters().catch(fail);
  } else {
    showPage("overview");
    loadOverview().catch(fail);
    refreshTimer = setInterval(() => loadOverview().catch(fail), 3000);
  }
}

// --- overview

async function countStatus(status) {
  const body = await apiJSON("/callback?limit=1000&status=" + status);
  const n = (body.events || []).length;
  return body.next_cursor ? n + "+" : String(n);
}

async function loadOverview() {
  const counts = await Promise.all(statuses.map(countStatus));
  const dead = await apiJSON("/dead-letters?limit=1000");
  const box = $("counters");
  box.replaceChildren();
  statuses.forEach((s, i) => {
    const c = el("div", null, "counter");
    c.id = "counter-" + s;
    c.appendChild(el("b", counts[i]));
    c.appendChild(el("span", s));
    box.appendChild(c);
  });
  const c = el("div", null, "counter");
  c.id = "counter-dead-letters";
  c.appendChild(el("b", (dead.dead_letters || []).length + (dead.next_cursor ? "+" : "")));
  c.appendChild(el("span", "dead letters"));
  box.appendChild(c);

  const dest = await apiJSON("/destinations");
  const tb = $("destinations");
  tb.replaceChildren();
  for (const d of dest.destinations || []) {
    const tr = row([d.destination, "", d.consecutive_failures, d.in_flight, when(d.next_probe_at)]);
    tr.children[1].textContent = d.state;
    tr.children[1].className = "state-" + d.state;
    tb.appendChild(tr);
  }
  if (!(dest.destinations || []).length) tb.appendChild(row(["no destinations yet", "", "", "", ""]));
  await loadMetrics();
  $("overview-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// --- throughput and latency, from the engine's own Prometheus metrics

const metricsWindow = 5 * 60 * 1000; // what the charts span, ms
const latencyWindow = 30 * 1000;     // what each latency point spans, ms
let samples = [];                    // {t, events, callbacks, attempt, e2e}, oldest first

// parseMetrics parses the Prometheus text exposition into
// [{name, labels, value}], skipping comments and lines it cannot read.
function parseMetrics(text) {
  const out = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const l of text.split("\n")) {
    if (!l || l[0] === "#") continue;
    const m = line.exec(l);
    if (!m) continue;
    const labels = {};
    for (const lm of (m[2] || "").matchAll(label)) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
    out.push({name: m[1], labels: labels, value: parseFloat(m[3])});
  }
  return out;
}

// sum adds the values of the series called name whose labels pass keep.
function sum(series, name, keep) {
  let n = 0;
  for (const s of series) if (s.name === name && (!keep || keep(s.labels))) n += s.value;
  return n;
}

// buckets sums the cumulative buckets of histogram name over its other
// labels: {le (a number, Infinity for +Inf): count}.
function buckets(series, name) {
  const b = {};
  for (const s of series) {
    if (s.name !== name + "_bucket") continue;
    const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
    b[le] = (b[le] || 0) + s.value;
  }
  return b;
}

// quantile estimates the q-quantile of the observations between two
// bucket snapshots, as Prometheus' histogram_quantile does: linear within
// the bucket the rank falls in. null when nothing was observed.
function quantile(q, from, to) {
  const les = Object.keys(to).map(Number).sort((a, b) => a - b);
  const cum = les.map((le) => to[le] - ((from && from[le]) || 0));
  const total = cum[cum.length - 1];
  if (!les.length || !(total > 0)) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (cum[i] < rank) continue;
    if (les[i] === Infinity) return i > 0 ? les[i - 1] : null; // past the last bound: its bound
    const lo = i > 0 ? les[i - 1] : 0, below = i > 0 ? cum[i - 1] : 0;
    const inBucket = cum[i] - below;
    return inBucket > 0 ? lo + (les[i] - lo) * (rank - below) / inBucket : les[i];
  }
  return null;
}

// loadMetrics takes a sample of GET /metrics, keeps the last 5 minutes of
// samples, and draws them; when the API port serves no metrics it says so.
async function loadMetrics() {
  const res = await api("/metrics", {headers: {"Accept": "text/plain"}});
  const status = $("metrics-status");
  if (res.status === 404) {
    $("metrics-panel").hidden = true;
    status.textContent = "No metrics on this address: they are disabled, or served on another address (metrics_addr).";
    status.dataset.state = "unavailable";
    return;
  }
  if (!res.ok) {
    status.textContent = "GET /metrics: " + res.status;
    status.dataset.state = "error";
    return;
  }
  const series = parseMetrics(await res.text());
  const now = Date.now();
  samples.push({
    t: now,
    events: sum(series, "boomerang_event_attempts_total", (l) => l.outcome !== "retry"),
    callbacks: sum(series, "boomerang_callback_deliveries_total", (l) => l.outcome !== "retry"),
    attempt: buckets(series, "boomerang_event_attempt_duration_seconds"),
    e2e: buckets(series, "boomerang_end_to_end_latency_seconds"),
  });
  samples = samples.filter((s) => s.t >= now - metricsWindow);
  $("metrics-panel").hidden = false;
  status.dataset.state = "ok";
  drawMetrics();
}

// rate is the per-second increase of field from sample a to sample b (null
// across a counter reset, as after a restart).
function rate(a, b, field) {
  const d = b[field] - a[field], dt = (b.t - a.t) / 1000;
  return d >= 0 && dt > 0 ? d / dt : null;
}

// before returns the oldest sample no older than ms before samples[i].
function before(i, ms) {
  let j = i;
  while (j > 0 && samples[j - 1].t >= samples[i].t - ms) j--;
  return samples[j];
}

function fmt(v, digits) { return v === null || v === undefined ? "–" : v.toFixed(digits); }

function pair(from, to) {
  const p50 = quantile(0.5, from, to), p99 = quantile(0.99, from, to);
  return fmt(p50 === null ? null : p50 * 1000, 1) + " / " + fmt(p99 === null ? null : p99 * 1000, 1);
}

function drawMetrics() {
  const status = $("metrics-status");
  if (samples.length < 2) {
    status.textContent = "Collecting samples…";
    return;
  }
  status.textContent = "";
  const last = samples.length - 1, first = samples[0], newest = samples[last], prev = samples[last - 1];
  const recent = before(last, latencyWindow);
  $("metric-events-now").textContent = fmt(rate(prev, newest, "events"), 2);
  $("metric-callbacks-now").textContent = fmt(rate(prev, newest, "callbacks"), 2);
  $("metric-events-avg").textContent = fmt(rate(first, newest, "events"), 2);
  $("metric-callbacks-avg").textContent = fmt(rate(first, newest, "callbacks"), 2);
  $("metric-attempt-now").textContent = pair(recent.attempt, newest.attempt);
  $("metric-attempt-avg").textContent = pair(first.attempt, newest.attempt);
  $("metric-e2e-now").textContent = pair(recent.e2e, newest.e2e);
  $("metric-e2e-avg").textContent = pair(first.e2e, newest.e2e);

  const points = {events: [], callbacks: [], p50: [], p99: []};
  for (let i = 1; i < samples.length; i++) {
    const t = samples[i].t;
    points.events.push([t, rate(samples[i - 1], samples[i], "events")]);
    points.callbacks.push([t, rate(samples[i - 1], samples[i], "callbacks")]);
    const from = before(i, latencyWindow).attempt, to = samples[i].attempt;
    const p50 = quantile(0.5, from, to), p99 = quantile(0.99, from, to);
    points.p50.push([t, p50 === null ? null : p50 * 1000]);
    points.p99.push([t, p99 === null ? null : p99 * 1000]);
  }
  chart($("chart-throughput"), newest.t, [["events", points.events], ["callbacks", points.callbacks]], "/s");
  chart($("chart-latency"), newest.t, [["p50", points.p50], ["p99", points.p99]], " ms");
}

const svgNS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(svgNS, tag);
  for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = text;
  return e;
}

// chart draws lines ([name, [[t, v|null]...]]) over the 5 minutes up to
// end into svg, scaled to the largest value, a gap where v is null.
function chart(svg, end, lines, unit) {
  const w = 420, h = 140, left = 44, top = 8, bottom = 18;
  const x = (t) => left + (w - left - 4) * (1 - (end - t) / metricsWindow);
  let maxV = 0;
  for (const [, pts] of lines) for (const [, v] of pts) if (v !== null) maxV = Math.max(maxV, v);
  const scale = maxV > 0 ? maxV * 1.1 : 1;
  const y = (v) => top + (h - top - bottom) * (1 - v / scale);
  svg.replaceChildren();
  for (const f of [0, 0.5, 1]) {
    const v = scale * f;
    svg.appendChild(svgEl("line", {x1: left, x2: w - 4, y1: y(v), y2: y(v), class: "grid"}));
    svg.appendChild(svgEl("text", {x: 2, y: y(v) + 3}, (v >= 10 ? v.toFixed(0) : v.toFixed(2)) + unit));
  }
  svg.appendChild(svgEl("text", {x: left, y: h - 4}, "−5 min"));
  svg.appendChild(svgEl("text", {x: w - 30, y: h - 4}, "now"));
  for (const [name, pts] of lines) {
    let run = [];
    const flush = () => {
      if (run.length > 1) svg.appendChild(svgEl("polyline", {points: run.join(" "), class: "line-" + name}));
      if (run.length === 1) svg.appendChild(svgEl("circle", {cx: run[0].split(",")[0], cy: run[0].split(",")[1], r: 1.5, class: "line-" + name}));
      run = [];
    };
    for (const [t, v] of pts) {
      if (v === null) { flush(); continue; }
      run.push(x(t).toFixed(1) + "," + y(v).toFixed(1));
    }
    flush();
  }
}

// --- events

async function loadEvents() {
  const cursor = eventsCursors[eventsCursors.length - 1];
  const q = new URLSearchParams({limit: $("events-limit").value});
  const st = $("events-status").value;
  if (st) q.set("status", st);
  const type = $("events-type").value.trim();
  if (type) q.set("event_type", type);
  // datetime-local values are the browser's local time; the API takes
  // RFC 3339.
  for (const [id, name] of [["events-since", "since"], ["events-until", "until"]]) {
    const v = $(id).value;
    if (v) q.set(name, new Date(v).toISOString());
  }
  if (cursor) q.set("cursor", cursor);
  const body = await apiJSON("/callback?" + q.toString());
  const tb = $("events-rows");
  tb.replaceChildren();
  for (const ev of body.events || []) {
    const tr = row([eventLink(ev.event_id), ev.event_type, ev.status, ev.attempts, "", when(ev.accepted_at), ev.callback ? ev.callback.status : ""]);
    tr.replaceChild(errorCell(ev.last_error), tr.children[4]);
    tr.className = "event-row";
    tb.appendChild(tr);
  }
  if (!(body.events || []).length) tb.appendChild(row(["no events", "", "", "", "", "", ""]));
  $("events-next").hidden = !body.next_cursor;
  $("events-next").dataset.cursor = body.next_cursor || "";
}

// fields fills the definition list target with the pairs that have a value.
function fields(target, pairs) {
  target.replaceChildren();
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    target.appendChild(el("dt", k));
    const dd = el("dd", typeof v === "object" ? JSON.stringify(v) : v);
    dd.dataset.field = k;
    target.appendChild(dd);
  }
}

async function loadEvent(id) {
  $("event-id").textContent = id;
  const res = await api("/events/" + encodeURIComponent(id));
  if (res.status === 404) { notice("no event " + id); return; }
  const ev = await res.json();
  if (!res.ok) throw new Error("/events: " + res.status + " " + (ev.error || ""));
  fields($("event-record"), [
    ["event_type", ev.event_type], ["status", ev.status], ["attempts", ev.attempts],
    ["last_error", ev.last_error], ["accepted_at", when(ev.accepted_at)], ["updated_at", when(ev.updated_at)],
    ["next_attempt_at", when(ev.next_attempt_at)], ["completed_at", when(ev.completed_at)],
    ["deliver_at", when(ev.deliver_at)], ["ordering_key", ev.ordering_key], ["waiting_for", ev.waiting_for],
    ["waiting", ev.waiting], ["trace_id", ev.trace_id],
  ]);
  // The payload, pretty-printed, as text: whatever it holds runs nothing.
  $("event-payload").textContent = ev.payload === undefined ? "(none)" : JSON.stringify(ev.payload, null, 2);
  const at = $("event-attempts");
  at.replaceChildren();
  for (const a of ev.history || []) {
    const tr = row([a.attempt, when(a.started_at), a.duration_ms, a.outcome, ""]);
    tr.replaceChild(errorCell(a.error || ""), tr.children[4]);
    tr.className = "attempt-row";
    at.appendChild(tr);
  }
  const cb = ev.callback || {};
  fields($("event-callback"), [
    ["status", cb.status], ["url", cb.url], ["attempts", cb.attempts], ["last_response_status", cb.last_response_status],
    ["last_error", cb.last_error], ["next_attempt_at", when(cb.next_attempt_at)], ["delivered_at", when(cb.delivered_at)],
    ["waiting", cb.waiting],
  ]);
  const dt = $("event-deliveries");
  dt.replaceChildren();
  for (const d of cb.history || []) {
    const tr = row([d.attempt, when(d.started_at), d.duration_ms, d.response_status || "", d.outcome, ""]);
    tr.replaceChild(errorCell(d.error || ""), tr.children[5]);
    tr.className = "delivery-row";
    dt.appendChild(tr);
  }
}

// --- dead letters

async function loadDeadLetters() {
  const q = new URLSearchParams({limit: "100"});
  const t = $("dl-type").value.trim();
  if (t) q.set("event_type", t);
  const kind = $("dl-kind").value;
  if (kind) q.set("kind", kind);
  if (dlCursor) q.set("cursor", dlCursor);
  const body = await apiJSON("/dead-letters?" + q.toString());
  const tb = $("dl-rows");
  tb.replaceChildren();
  $("dl-all-page").checked = false;
  for (const d of body.dead_letters || []) {
    const box = el("input");
    box.type = "checkbox";
    box.className = "dl-select";
    box.value = d.event_id;
    const info = d.dead_letter || {};
    const tr = row([box, eventLink(d.event_id), d.event_type, info.kind, d.status, d.callback ? d.callback.status : "", "", when(info.failed_at)]);
    tr.replaceChild(errorCell(d.last_error || (d.callback && d.callback.last_error) || ""), tr.children[6]);
    tr.className = "dl-row";
    tb.appendChild(tr);
  }
  if (!(body.dead_letters || []).length) tb.appendChild(row(["", "no dead letters", "", "", "", "", "", ""]));
  $("dl-next").hidden = !body.next_cursor;
  $("dl-next").dataset.cursor = body.next_cursor || "";
}

// bulk posts the selection (or the filter) to /dead-letters/{action},
// following next_cursor at most 100 times, and shows the sums.
async function bulk(action) {
  const all = $("dl-all-filter").checked;
  const ids = Array.from(document.querySelectorAll(".dl-select:checked"), (b) => b.value);
  const t = $("dl-type").value.trim();
  const kind = $("dl-kind").value;
  if (!all && !ids.length) { $("dl-result").textContent = "Select dead letters first."; return; }
  const what = all ? "every dead letter" + (kind ? " whose " + kind + " failed" : "") + (t ? " of type " + t : "") : ids.length + " dead letter(s)";
  if (!window.confirm(action[0].toUpperCase() + action.slice(1) + " " + what + "?")) return;
  const filter = {};
  if (t) filter.event_type = t;
  if (kind) filter.kind = kind;
  const sum = {queued: 0, already_queued: 0, skipped: 0, not_found: 0};
  let cursor = "";
  for (let i = 0; i < 100; i++) {
    const req = all ? {filter: filter} : {ids: ids};
    if (cursor) req.cursor = cursor;
    const body = await adminJSON("/dead-letters/" + action, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(req),
    });
    if (body === null) { $("dl-result").textContent = "Cancelled: no admin key."; return; }
    for (const k of Object.keys(sum)) {
      const v = body[k];
      sum[k] += Array.isArray(v) ? v.length : (typeof v === "number" ? v : 0);
    }
    cursor = body.next_cursor || "";
    if (!all || !cursor) break;
  }
  const r = $("dl-result");
  r.textContent = sum.queued + " queued, " + sum.already_queued + " already queued, " + sum.skipped + " skipped, " + sum.not_found + " not found";
  r.dataset.queued = String(sum.queued);
  await loadDeadLetters();
}

// adminJSON sends an operator action with the admin key of the tab (the
// API key when it has none). When the server refuses the key (401: admin
// keys are set and this is not one), it asks for an admin key, keeps it
// for the tab, and sends the action again; null when the form is
// cancelled.
async function adminJSON(path, init) {
  for (;;) {
    const key = sessionStorage.getItem(adminKeyName) || sessionStorage.getItem(keyName);
    const res = await send(path, init, key);
    const body = await res.json().catch(() => ({}));
    if (res.status === 401) {
      const had = sessionStorage.getItem(adminKeyName) !== null;
      sessionStorage.removeItem(adminKeyName);
      const given = await askAdminKey(had ? "That admin key is unknown. Retry and redeliver need an admin key." :
        "Retry and redeliver need an admin key. It is kept in this tab only (sessionStorage).");
      if (given === null) return null;
      sessionStorage.setItem(adminKeyName, given);
      continue;
    }
    if (!res.ok) throw new Error(path + ": " + res.status + " " + (body.error || ""));
    return body;
  }
}

// askAdminKey shows the admin key form with reason and resolves to the
// key entered, or null when cancelled.
function askAdminKey(reason) {
  return new Promise((resolve) => {
    const form = $("admin-form");
    $("admin-reason").textContent = reason;
    form.hidden = false;
    $("admin-key").focus();
    const done = (key) => {
      form.hidden = true;
      $("admin-key").value = "";
      form.removeEventListener("submit", submit);
      $("admin-cancel").removeEventListener("click", cancel);
      resolve(key);
    };
    const submit = (e) => { e.preventDefault(); done($("admin-key").value.trim()); };
    const cancel = () => done(null);
    form.addEventListener("submit", submit);
    $("admin-cancel").addEventListener("click", cancel);
  });
}

// --- wiring

function init() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(keyName, $("login-key").value.trim());
    $("login-key").value = "";
    route();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(keyName); sessionStorage.removeItem(adminKeyName); route(); });
  $("events-filter").addEventListener("submit", (e) => { e.preventDefault(); eventsCursors = [""]; loadEvents().catch(fail); });
  $("events-next").addEventListener("click", () => { eventsCursors.push($("events-next").dataset.cursor); loadEvents().catch(fail); });
  $("lookup").addEventListener("submit", (e) => { e.preventDefault(); location.hash = "#/event/" + encodeURIComponent($("lookup-id").value.trim()); });
  $("dl-filter").addEventListener("submit", (e) => { e.preventDefault(); dlCursor = ""; loadDeadLetters().catch(fail); });
  $("dl-next").addEventListener("click", () => { dlCursor = $("dl-next").dataset.cursor; loadDeadLetters().catch(fail); });
  $("dl-all-page").addEventListener("change", () => {
    for (const b of document.querySelectorAll(".dl-select")) b.checked = $("dl-all-page").checked;
  });
  $("dl-retry").addEventListener("click", () => bulk("retry").catch(fail));
  $("dl-redeliver").addEventListener("click", () => bulk("redeliver").catch(fail));
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", init);
