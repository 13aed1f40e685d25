// Boomerang's web console: hash routing over the JSON API. Every value
// that comes from the API is written with textContent, never as markup.
"use strict";

const keyName = "boomerang-api-key";
const statuses = ["queued", "processing", "retrying", "succeeded", "failed"];
const $ = (id) => document.getElementById(id);

let refreshTimer = null;
let eventsCursors = [];  // cursor of each page shown, for "next page"
let dlCursor = "";

class Unauthorized extends Error {}

// api fetches path with the stored key; on 401 it shows the key form.
async function api(path, init) {
  init = init || {};
  const headers = Object.assign({"Accept": "application/json"}, init.headers || {});
  const key = sessionStorage.getItem(keyName);
  if (key) headers["Authorization"] = "Bearer " + key;
  const res = await fetch(path, Object.assign({}, init, {headers: headers}));
  if (res.status === 401) {
    sessionStorage.removeItem(keyName);
    showLogin("The API key is missing or unknown.");
    throw new Unauthorized("unauthorized");
  }
  return res;
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
  $("overview-updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// --- events

async function loadEvents() {
  const cursor = eventsCursors[eventsCursors.length - 1];
  const q = new URLSearchParams({limit: $("events-limit").value});
  const st = $("events-status").value;
  if (st) q.set("status", st);
  const type = $("events-type").value.trim();
  if (type) q.set("event_type", type);
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
  if (!all && !ids.length) { $("dl-result").textContent = "Select dead letters first."; return; }
  const what = all ? "every dead letter" + (t ? " of type " + t : "") : ids.length + " dead letter(s)";
  if (!window.confirm(action[0].toUpperCase() + action.slice(1) + " " + what + "?")) return;
  const sum = {queued: 0, already_queued: 0, skipped: 0, not_found: 0};
  let cursor = "";
  for (let i = 0; i < 100; i++) {
    const req = all ? {filter: t ? {event_type: t} : {}} : {ids: ids};
    if (cursor) req.cursor = cursor;
    const body = await apiJSON("/dead-letters/" + action, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(req),
    });
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

// --- wiring

function init() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(keyName, $("login-key").value.trim());
    $("login-key").value = "";
    route();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(keyName); route(); });
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
