/**
 * The inspector's HTML page and its script (served beside it from the same origin, so that the page's content
 * security policy allows no inline script; nothing is fetched from elsewhere): it polls the JSON endpoints every
 * `pollIntervalMs` and shows topics (groups, consumers, pending, lag in entries and in time with a chart of lag and
 * throughput since the page opened, retries waiting, oldest pending age, dead letters with replay and delete),
 * resumable runs (with cancel), event sinks, live-state groups and the subject count. Every value from Redis is put
 * in the page as text (`textContent`), never as HTML.
 *
 * @internal
 */

/** What the page needs to know: where the endpoints are, and the inspector's configuration. */
export interface PageOptions {
  /** The path the endpoints live under, without a trailing slash (`""` at the root). */
  readonly base: string
  readonly config: {
    readonly actions: boolean
    readonly pollIntervalMs: number
    readonly messaging: unknown
    readonly resumable: unknown
    readonly adapter: unknown
    readonly subjects: unknown
    readonly sinks: number
  }
}

/** JSON that is safe inside a `<script>` element (here a data block the script reads, never run). */
const scriptJson = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")

const style = `
:root { color-scheme: light dark; --line: #8884; --muted: #888; --bad: #c0392b; --warn: #d68910; --ok: #1e8449; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 3rem; }
header { position: sticky; top: 0; background: Canvas; padding: .6rem 0; border-bottom: 1px solid var(--line);
  display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; z-index: 1; }
h1 { font-size: 1.2rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .2rem 0; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: .85rem; word-break: break-all; }
.muted { color: var(--muted); } .bad { color: var(--bad); } .warn { color: var(--warn); } .ok { color: var(--ok); } .spark { vertical-align: middle; }
.badge { border: 1px solid currentColor; border-radius: .7rem; padding: 0 .45rem; font-size: .8rem; }
button { font: inherit; padding: .1rem .5rem; cursor: pointer; }
tr.topic { cursor: pointer; } tr.topic:hover { background: #8881; }
.details { padding: .3rem 0 .8rem 1.2rem; border-left: 3px solid var(--line); }
.error { color: var(--bad); white-space: pre-wrap; }
#toast { position: fixed; bottom: 1rem; right: 1rem; background: Canvas; border: 1px solid var(--line);
  padding: .5rem .8rem; border-radius: .3rem; display: none; max-width: 40rem; }
`

/** The page's script: plain ES2020, no dependency; it reads `BASE` and `CONFIG` from the page's data block. */
export const script = `
"use strict";
const { base: BASE, config: CONFIG } = JSON.parse(document.getElementById("inspector-config").textContent);
const state = { paused: false, open: new Set(), pages: { topics: 1, runs: 1, adapter: 1 }, subjects: { total: 0, cursor: null, done: null } };
const $ = (id) => document.getElementById(id);
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else if (k === "title") node.title = v;
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const plural = (count, noun) => num(count) + " " + noun + (count === 1 ? "" : "s");
const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());
function age(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}
const td = (value, cls) => el("td", cls ? { class: cls } : {}, value);
const n = (value) => td(num(value), "n");
const table = (heads, rows) =>
  el("table", {}, el("thead", {}, el("tr", {}, heads.map((h) => el("th", h.startsWith("#") ? { class: "n" } : {}, h.replace(/^#/, ""))))), el("tbody", {}, rows));
async function api(path, body) {
  const init = body === undefined ? { headers: { accept: "application/json" } } : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(BASE + "/api/" + path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(response.status + " " + (data.reason || "") + ": " + (data.message || response.statusText));
  return data;
}
function toast(text, bad) {
  const t = $("toast"); t.textContent = text; t.className = bad ? "bad" : ""; t.style.display = "block";
  clearTimeout(toast.timer); toast.timer = setTimeout(() => (t.style.display = "none"), 5000);
}
async function act(question, path, body) {
  if (!confirm(question)) return;
  try {
    const result = await api(path, body);
    toast(path + ": " + (result.status !== undefined ? result.status : result.count + " entries" + (result.more ? " (more left)" : "")));
  } catch (e) { toast(String(e.message || e), true); }
  refresh();
}
async function pages(path, key, field) {
  let cursor = "", items = [], more = false;
  for (let i = 0; i < state.pages[key]; i++) {
    const page = await api(path + "?limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    items = items.concat(page[field]);
    cursor = page.cursor; more = cursor !== null;
    if (!more) break;
  }
  return { items, more };
}
const moreButton = (key, more) => (more ? el("button", { onclick: () => { state.pages[key]++; refresh(); } }, "more…") : null);
// each group's lag and throughput over the last samples (one per refresh while the page is open)
const history = new Map();
function sample(topic, g) {
  const key = topic.topic + "\u0000" + g.name, now = Date.now();
  const samples = history.get(key) || [];
  const last = samples[samples.length - 1];
  const rate = last && g.entriesRead !== null && last.read !== null && now > last.t ? Math.max(0, (g.entriesRead - last.read) * 1000 / (now - last.t)) : 0;
  samples.push({ t: now, lag: g.lag || 0, behindMs: g.oldestUnreadAgeMs || 0, read: g.entriesRead, rate });
  if (samples.length > 120) samples.shift();
  history.set(key, samples);
  return samples;
}
function sparkline(values, color, title) {
  const ns = "http://www.w3.org/2000/svg", w = 120, h = 22, max = Math.max(1, ...values);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "spark");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "1.5");
  line.setAttribute("points", values.map((v, i) => (values.length < 2 ? 0 : (i * w) / (values.length - 1)).toFixed(1) + "," + (h - 1 - (v / max) * (h - 2)).toFixed(1)).join(" "));
  const label = document.createElementNS(ns, "title");
  label.textContent = title + " (max " + num(Math.round(max)) + ")";
  svg.append(label, line);
  return svg;
}
function groupsCell(topic) {
  if (topic.groups.length === 0) return el("span", { class: "muted" }, "no group");
  return topic.groups.map((g) => {
    const samples = sample(topic, g);
    return el("div", {}, el("b", {}, g.name), " · ",
      g.owner ? el("span", {}, "owned by ", el("span", { class: "mono" }, g.owner.member), " (token " + num(g.owner.fence) + ") · ") : null,
      plural(g.consumers.length, "consumer") + " · pending ",
      el("span", { class: g.pending > 0 ? "warn" : "" }, num(g.pending)), " · lag ", num(g.lag),
      g.oldestUnreadAgeMs !== null ? el("span", { class: g.oldestUnreadAgeMs > 60000 ? "warn" : "muted" }, " (" + age(g.oldestUnreadAgeMs) + " behind)") : null,
      g.oldestPending ? el("span", { class: "muted" }, " · oldest pending " + age(g.oldestPending.ageMs)) : null,
      g.retrying.count > 0 ? el("span", { class: "muted" }, " · " + num(g.retrying.count) + " waiting to retry") : null,
      " ", sparkline(samples.map((x) => x.lag), "#c0392b", "lag (entries)"), " ", sparkline(samples.map((x) => x.rate), "#2471a3", "read per second"));
  });
}
async function topicDetails(topic) {
  const box = el("div", { class: "details" });
  for (const g of topic.groups) {
    box.append(el("h3", {}, "Group ", g.name, el("span", { class: "muted" }, " · last delivered ", el("code", {}, g.lastDeliveredId))));
    box.append(g.consumers.length === 0 ? el("div", { class: "muted" }, "no consumer")
      : table(["consumer", "#pending", "idle"], g.consumers.map((c) => el("tr", {}, td(c.name, "mono"), n(c.pending), td(age(c.idleMs))))));
    if (g.oldestPending) box.append(el("div", { class: "muted" }, "oldest pending ", el("code", {}, g.oldestPending.id), " at ", g.oldestPending.consumer,
      ", age " + age(g.oldestPending.ageMs) + ", idle " + age(g.oldestPending.idleMs) + ", " + g.oldestPending.deliveries + " deliveries"));
  }
  const dead = await api("dead-letters?limit=100&topic=" + encodeURIComponent(topic.topic));
  const head = el("h3", {}, "Dead letters (" + num(dead.total) + ")");
  if (CONFIG.actions && dead.total > 0) {
    head.append(" ", el("button", { onclick: () => act("Replay all " + dead.total + " dead letters of " + topic.topic + " to the topic?", "dead-letters/replay", { topic: topic.topic, all: true }) }, "replay all"),
      " ", el("button", { onclick: () => act("Delete all " + dead.total + " dead letters of " + topic.topic + "?", "dead-letters/delete", { topic: topic.topic, all: true }) }, "delete all"));
  }
  box.append(head);
  if (dead.deadLetters.length > 0) {
    box.append(table(["id", "reason", "origin", "group / consumer", "#deliveries", "at", "payload", ""], dead.deadLetters.map((d) => el("tr", {},
      td(d.id, "mono"), td(d.error == null ? d.reason : [d.reason, el("div", { class: "mono muted" }, JSON.stringify(d.error))], "bad"), td(d.origin.topic + " " + d.origin.id, "mono"), td(d.group + " / " + d.consumer, "mono"), n(d.deliveries), td(d.at),
      td(d.payload ? d.payload.preview + (d.payload.truncated ? "… (" + num(d.payload.bytes) + " bytes)" : "") : "–", "mono"),
      td(CONFIG.actions ? [el("button", { onclick: () => act("Replay " + d.id + " to " + topic.topic + "?", "dead-letters/replay", { topic: topic.topic, ids: [d.id] }) }, "replay"), " ",
        el("button", { onclick: () => act("Delete dead letter " + d.id + "?", "dead-letters/delete", { topic: topic.topic, ids: [d.id] }) }, "delete")] : "")))));
    if (dead.cursor) box.append(el("div", { class: "muted" }, "showing the oldest " + dead.deadLetters.length));
  }
  return box;
}
async function renderTopics() {
  const { items, more } = await pages("topics", "topics", "topics");
  const rows = [];
  for (const t of items) {
    const open = state.open.has(t.topic);
    rows.push(el("tr", { class: "topic", onclick: () => { open ? state.open.delete(t.topic) : state.open.add(t.topic); refresh(); } },
      td((open ? "▾ " : "▸ ") + t.topic, "mono"), n(t.length), td(num(t.deadLetters), t.deadLetters > 0 ? "n bad" : "n"), td(groupsCell(t)),
      td(t.exists ? "" : "stream gone", "muted")));
    if (open) rows.push(el("tr", {}, el("td", { colspan: "5" }, await topicDetails(t))));
  }
  return [items.length ? table(["topic", "#length", "#dead letters", "groups", ""], rows) : el("p", { class: "muted" }, "no topic"), moreButton("topics", more)];
}
const stateClass = { running: "ok", lost: "bad", failed: "bad", cancelled: "warn", completed: "muted" };
async function renderRuns() {
  const { items, more } = await pages("runs", "runs", "runs");
  const rows = items.map((r) => el("tr", {}, td(r.stream, "mono"), td(r.runId, "mono"), td(el("span", { class: "badge " + (stateClass[r.state] || "") }, r.state)),
    n(r.chunks), td(age(r.heartbeatAgeMs)), td(r.createdAt || "–"), td(r.finishedAt || "–"), td(r.expiresInMs === null ? "–" : age(r.expiresInMs)),
    td(CONFIG.actions && r.status === "running" ? el("button", { onclick: () => act("Cancel run " + r.runId + " of " + r.stream + "?", "runs/cancel", { stream: r.stream, runId: r.runId, reason: "cancelled from the inspector" }) }, "cancel") : "")));
  return [items.length ? table(["stream", "run", "state", "#chunks", "heartbeat age", "created", "finished", "expires in", ""], rows) : el("p", { class: "muted" }, "no run"), moreButton("runs", more)];
}
async function renderSinks() {
  const { sinks } = await api("sinks");
  const breaker = { Closed: "ok", HalfOpen: "warn", Open: "bad" };
  const rows = sinks.map((s) => el("tr", {}, td(s.streamKey, "mono"), n(s.buffered), n(s.written), n(s.dropped.overflow), n(s.dropped.rejected), n(s.dropped.shutdown),
    n(s.refused), n(s.failedWrites), td(el("span", { class: "badge " + breaker[s.breaker] }, s.breaker),
      s.transitions.length ? el("div", { class: "muted" }, "last: " + s.transitions[s.transitions.length - 1].to + " at " + s.transitions[s.transitions.length - 1].at) : null),
    n(s.stream ? s.stream.length : null)));
  return sinks.length ? table(["stream", "#buffered", "#written", "#dropped overflow", "#dropped rejected", "#dropped shutdown", "#refused", "#failed writes", "breaker", "#stream length"], rows)
    : el("p", { class: "muted" }, "no sink given");
}
async function renderAdapter() {
  const { items, more } = await pages("adapter", "adapter", "streams");
  const rows = items.map((s) => el("tr", {}, td(s.stream, "mono"), n(s.groupCount),
    td(s.groups.map((g) => el("div", { class: "mono" }, g.groupId + ": " + num(g.items) + " items, v" + g.version)), s.groups.length < s.groupCount ? el("div", { class: "muted" }, "…") : null)));
  return [items.length ? table(["stream", "#groups", "groups (items, version)"], rows) : el("p", { class: "muted" }, "no live-state stream"), moreButton("adapter", more)];
}
async function renderSubjects() {
  const s = state.subjects;
  const page = await api("subjects" + (s.cursor ? "?cursor=" + encodeURIComponent(s.cursor) : ""));
  s.total += page.count; s.cursor = page.cursor;
  if (page.cursor === null) { s.done = s.total; s.total = 0; }
  return el("p", {}, s.done !== null ? plural(s.done, "subject") : "counting…", s.cursor !== null ? el("span", { class: "muted" }, " (" + num(s.total) + " so far in the current count)") : null);
}
const sections = [
  ["topics", "Topics", CONFIG.messaging, renderTopics],
  ["runs", "Resumable runs", CONFIG.resumable, renderRuns],
  ["sinks", "Event sinks", true, renderSinks],
  ["adapter", "Live state (StreamAdapter)", CONFIG.adapter, renderAdapter],
  ["subjects", "Subjects", CONFIG.subjects, renderSubjects]
];
let running = false;
async function refresh() {
  if (running) return;
  running = true;
  try {
    for (const [id, , enabled, render] of sections) {
      if (!enabled) continue;
      try { $(id).replaceChildren(...[await render()].flat().filter(Boolean)); }
      catch (e) { $(id).replaceChildren(el("div", { class: "error" }, String(e.message || e))); }
    }
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } finally { running = false; }
}
function main() {
  const body = $("sections");
  for (const [id, title, enabled] of sections) {
    if (!enabled) continue;
    const prefix = enabled && enabled.keyPrefix !== undefined ? " (prefix " + JSON.stringify(enabled.keyPrefix) + ")" : "";
    body.append(el("section", {}, el("h2", {}, title, el("span", { class: "muted" }, prefix)), el("div", { id }, el("span", { class: "muted" }, "loading…"))));
  }
  $("mode").textContent = CONFIG.actions ? "actions enabled" : "read-only";
  $("mode").className = "badge " + (CONFIG.actions ? "warn" : "muted");
  $("pause").addEventListener("click", () => { state.paused = !state.paused; $("pause").textContent = state.paused ? "resume" : "pause"; });
  refresh();
  setInterval(() => { if (!state.paused && !document.hidden) refresh(); }, CONFIG.pollIntervalMs);
}
main();
`

/** The page for `options`. */
export const page = (options: PageOptions): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-redis-streams inspector</title>
<style>${style}</style>
</head>
<body>
<header>
<h1>effect-redis-streams inspector</h1>
<span id="mode" class="badge"></span>
<span id="updated" class="muted"></span>
<button id="pause">pause</button>
</header>
<main id="sections"></main>
<div id="toast"></div>
<script type="application/json" id="inspector-config">${scriptJson({ base: options.base, config: options.config })}</script>
<script src="${options.base}/page.js"></script>
</body>
</html>
`
