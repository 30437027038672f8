// The hl7broker console: a client of /api/v1, like the CLI. Everything
// from a message or the API is put on the page as text (textContent,
// never innerHTML): messages are hostile input.
"use strict";

let me = null; // {user, role, csrf, search_keys, history}
let refresh = null;

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = me ? me.csrf : "";
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (r.status === 401 && path !== "/ui/login") { me = null; signIn(); }
  if (!r.ok) throw new APIError(r.status, (data && data.error) || r.statusText);
  return data;
}

const can = (role) => me && ({ viewer: 1, operator: 2, admin: 3 })[me.role] >= ({ viewer: 1, operator: 2, admin: 3 })[role];
const fmtTime = (s) => (s ? new Date(s).toLocaleString() : "");
const errorLine = (e) => h("p", { class: "error", role: "alert" }, e.message || String(e));

// signIn shows the ways to sign in this broker offers (GET /ui/sign-in):
// single sign-on (admin.oidc), a directory's user name and password
// (admin.ldap), an API token; and why the last attempt failed, when the
// provider's round trip ended at #/signin?error=….
async function signIn(why) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  if (!why && path === "/signin") why = new URLSearchParams(query || "").get("error") || undefined;
  let ways = ["token"];
  try { ways = (await api("GET", "/ui/sign-in")).ways; } catch (_) { /* a broker before 2026-12: tokens only */ }
  const out = h("div", { id: "signin-error" });
  const signedIn = (s) => { me = s; if (location.hash.startsWith("#/signin")) location.hash = "#/dashboard"; started(); };
  const forms = [];
  if (ways.includes("oidc")) {
    forms.push(h("p", {}, h("a", { class: "button", id: "sso", href: "/ui/oidc/login" }, "Sign in with single sign-on")));
  }
  if (ways.includes("ldap")) {
    const user = h("input", { id: "username", autocomplete: "username", required: true });
    const pass = h("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
    forms.push(h("form", {
      class: "signin", id: "signin-ldap",
      onsubmit: async (ev) => {
        ev.preventDefault();
        try { signedIn(await api("POST", "/ui/login", { username: user.value, password: pass.value })); } catch (e) { pass.value = ""; out.replaceChildren(errorLine(e)); }
      },
    }, h("label", { for: "username" }, "User name"), user, h("label", { for: "password" }, "Password"), pass,
      h("button", { type: "submit" }, "Sign in")));
  }
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true });
  forms.push(h("form", {
    class: "signin", id: "signin",
    onsubmit: async (ev) => {
      ev.preventDefault();
      try { signedIn(await api("POST", "/ui/login", { token: input.value })); } catch (e) { out.replaceChildren(errorLine(e)); }
    },
  }, h("label", { for: "token" }, forms.length ? "Or an API token (admin.tokens)" : "API token (admin.tokens)"), input,
    h("button", { type: "submit" }, "Sign in")));
  show(h("h2", {}, "Sign in"), ...(why ? [errorLine(why)] : []), ...forms, out);
}

function started() {
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  document.getElementById("who").textContent = me.user + " (" + me.role + ")";
  route();
}

function route() {
  if (refresh) { clearInterval(refresh); refresh = null; }
  if (!me) return signIn();
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", path.startsWith(a.getAttribute("href").slice(1)));
  }
  const parts = path.split("/").filter(Boolean);
  const page = {
    dashboard: dashboard, messages: messages, message: () => message(parts[1]),
    dlq: deadLetters, destinations: destinations, audit: audit, refused: refused, alerts: alertsPage,
  }[parts[0] || "dashboard"] || dashboard;
  page(params).catch((e) => show(errorLine(e)));
}

// ---- dashboard

function sparkline(points) {
  const w = 120, hgt = 24, NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  if (points.length > 1) {
    const t0 = points[0].t, t1 = points[points.length - 1].t || t0 + 1;
    const top = Math.max(1, ...points.map((p) => p.v));
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#1f3a5f");
    line.setAttribute("points", points.map((p) =>
      ((p.t - t0) / Math.max(1, t1 - t0) * w).toFixed(1) + "," + (hgt - 1 - p.v / top * (hgt - 2)).toFixed(1)).join(" "));
    svg.append(line);
  }
  return svg;
}

// niceMax is the chart scale's top: v rounded up to 1, 2 or 5 × 10^k.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const fmtNum = (v) => (v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k" : v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1));

// chart draws values (oldest first, step minutes apart, the last one
// now) as an SVG line with a time axis and a value scale.
function chart(title, values, step) {
  const W = 340, H = 130, L = 40, R = 10, T = 20, B = 20, NS = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const span = step === 1 ? 60 : 24 * 60; // minutes shown
  const top = niceMax(Math.max(0, ...values));
  const x = (ago) => L + (W - L - R) * (1 - ago / span);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = el("svg", { class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title });
  svg.append(el("text", { x: L, y: 13, class: "chart-title" }, title));
  for (const v of [0, top / 2, top]) {
    svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "tick y-tick" }, fmtNum(v)));
  }
  const labels = step === 1 ? ["-60m", "-30m", "now"] : ["-24h", "-12h", "now"];
  [span, span / 2, 0].forEach((ago, i) => {
    svg.append(el("line", { x1: x(ago), x2: x(ago), y1: H - B, y2: H - B + 4, class: "axis" }));
    svg.append(el("text", { x: x(ago), y: H - 4, "text-anchor": i === 0 ? "start" : i === 2 ? "end" : "middle", class: "tick x-tick" }, labels[i]));
  });
  svg.append(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  svg.append(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  if (values.length > 1) {
    svg.append(el("polyline", { class: "series", fill: "none",
      points: values.map((v, i) => x((values.length - 1 - i) * step).toFixed(1) + "," + y(v).toFixed(1)).join(" ") }));
  } else {
    svg.append(el("text", { x: (L + W) / 2, y: (T + H - B) / 2, "text-anchor": "middle", class: "tick" }, "collecting samples…"));
  }
  return svg;
}

let chartSpan = "hour"; // the dashboard's charts: "hour" or "day"

// charts are the dashboard's charts: rates per listener and source, rate
// and queue depth per destination, over the last hour or day.
function charts(s) {
  const day = chartSpan === "day", step = day ? 5 : 1;
  const pick = (hour, dayValues) => (day ? dayValues : hour) || [];
  const toggle = h("p", { class: "chart-span" }, "Show: ",
    ["hour", "day"].map((span) => h("button", { type: "button", class: span === chartSpan ? "active" : undefined, "data-span": span,
      onclick: () => { chartSpan = span; route(); } }, "Last " + span)));
  return [h("h2", {}, "Charts"), toggle,
    h("div", { class: "charts", id: "charts" },
      s.listeners.map((l) => chart(l.name + ": received per second", pick(l.rate_last_hour, l.rate_last_day), step)),
      s.destinations.flatMap((d) => [chart(d.name + ": delivered per second", pick(d.rate_last_hour, d.rate_last_day), step),
        chart(d.name + ": queue depth", pick(d.queue_last_hour, d.queue_last_day), step)]))];
}

// series is the last hour's per-minute rates (from the broker) and the
// rate now, as points for a sparkline.
function series(lastHour, now) {
  const points = (lastHour || []).map((v, i) => ({ t: i, v }));
  points.push({ t: points.length, v: now });
  return points;
}

async function dashboard() {
  const draw = async () => {
    const s = await api("GET", "/api/v1/status");
    const problems = [];
    if (!s.storage.ok) problems.push("Storage: " + (s.storage.problem || "not OK"));
    if (s.config.last_reload && s.config.last_reload !== "applied") problems.push("Last config reload: " + s.config.last_reload + (s.config.problem ? " — " + s.config.problem : ""));
    let alertsNow = { items: [] };
    try { alertsNow = await api("GET", "/api/v1/alerts"); } catch (_) { /* shown on the Alerts page */ }
    for (const a of alertsNow.items.filter((a) => a.status === "firing")) {
      problems.push("Alert " + a.rule + (a.target ? " (" + a.target + ")" : "") + " firing since " + fmtTime(a.since) + ": " + a.detail + (a.silenced ? " [silenced]" : ""));
    }
    const dests = s.destinations.map((d) => {
      const state = d.state || (d.paused ? "paused" : "running");
      const stalled = d.oldest_undelivered_seconds > 60 && state === "running";
      if (state === "retrying") problems.push("Destination " + d.name + " is retrying: " + (d.state_reason || "its last attempt failed"));
      if (state === "stopped") problems.push("Destination " + d.name + " is stopped: " + (d.state_reason || ""));
      if (stalled) problems.push("Destination " + d.name + " has not delivered for " + Math.round(d.oldest_undelivered_seconds) + " s");
      if (d.dead_letters_now > 0) problems.push("Destination " + d.name + ": " + d.dead_letters_now + " in the dead-letter queue");
      return h("tr", { class: state === "retrying" || state === "stopped" || stalled ? "problem" : state === "paused" ? "warn" : undefined, "data-destination": d.name },
        h("td", {}, d.name), h("td", {}, d.type), h("td", { class: "state", title: d.state_reason || "" }, state),
        h("td", {}, d.queue_depth < 0 ? "?" : d.queue_depth), h("td", {}, d.delivered), h("td", {}, d.rate.toFixed(1), " ", sparkline(series(d.rate_last_hour, d.rate))),
        h("td", {}, d.failures), h("td", { class: "dlq-now" }, d.dead_letters_now > 0 ? h("a", { href: "#/dlq?destination=" + encodeURIComponent(d.name) }, d.dead_letters_now) : (d.dead_letters_now < 0 ? "?" : 0)),
        h("td", {}, d.oldest_undelivered_seconds ? Math.round(d.oldest_undelivered_seconds) + " s" : ""),
        h("td", { class: "last-error" }, d.last_error ? d.last_error + " (" + fmtTime(d.last_error_at) + ")" : ""));
    });
    show(
      h("h1", {}, "Dashboard"),
      problems.length ? h("ul", { class: "problems" }, problems.map((p) => h("li", { class: "bad" }, p))) : h("p", { class: "ok" }, "No problems."),
      h("h2", {}, "Listeners and sources"),
      h("table", { id: "listeners" }, h("tr", {}, ["Name", "Type", "Address", "Connections", "Received", "Rejected", "Messages/s"].map((c) => h("th", {}, c))),
        s.listeners.map((l) => h("tr", { "data-listener": l.name }, h("td", {}, l.name), h("td", {}, l.type || "mllp"), h("td", {}, l.addr || ""), h("td", {}, l.type && l.type !== "mllp" ? "" : l.connections),
          h("td", { class: "received" }, l.received), h("td", {}, l.rejected), h("td", {}, l.rate.toFixed(1), " ", sparkline(series(l.rate_last_hour, l.rate)))))),
      h("h2", {}, "Routes"),
      h("table", {}, h("tr", {}, ["Name", "To", "Matches"].map((c) => h("th", {}, c))),
        s.routes.map((r) => h("tr", {}, h("td", {}, r.name), h("td", {}, (r.to || []).join(", ")), h("td", {}, r.matches)))),
      h("h2", {}, "Destinations"),
      h("table", { id: "destinations" }, h("tr", {}, ["Name", "Type", "State", "Queue", "Delivered", "Delivered/s", "Failures", "In dead-letter queue", "Oldest waiting", "Last error"].map((c) => h("th", {}, c))), dests),
      ...charts(s),
      h("h2", {}, "Storage and cluster"),
      h("p", {}, "Durability ", s.storage.durability, "; NATS ", s.cluster.mode, s.cluster.connected ? " (" + s.cluster.connected + ")" : "", ", replicas ", s.cluster.replicas,
        s.cluster.leader ? ", HL7_IN leader " + s.cluster.leader : ""),
      h("table", {}, h("tr", {}, ["Stream", "Messages", "Bytes"].map((c) => h("th", {}, c))),
        Object.entries(s.storage.streams || {}).map(([n, st]) => h("tr", {}, h("td", {}, n), h("td", {}, st.messages), h("td", {}, st.bytes)))),
      h("h2", {}, "Configuration"),
      h("p", {}, s.config.file, ", loaded ", fmtTime(s.config.loaded_at), s.config.last_reload ? "; last reload: " + s.config.last_reload : ""),
    );
  };
  await draw();
  refresh = setInterval(() => draw().catch(() => {}), 5000);
}

// ---- messages

const statuses = ["", "received", "queued", "retrying", "delivered", "dead_lettered", "unrouted", "filtered", "purged"];

async function messages(params) {
  const field = (name, label, attrs) => h("label", {}, label, h("input", { name, value: params.get(name) || "", ...attrs }));
  const keyName = h("select", { name: "key" }, (me.search_keys || []).map((k) => h("option", { value: k, selected: params.get("key") === k }, k)));
  const form = h("form", {
    class: "filters", id: "search",
    onsubmit: (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
      if (!q.get("key_value")) q.delete("key");
      location.hash = "#/messages?" + q.toString();
    },
  }, field("control_id", "Control ID (MSH-10)"),
    me.content_search ? field("text", "Words in the message (all of them; end a word with * for a prefix)", { size: 30, id: "text" }) : null,
    (me.search_keys || []).length ? h("label", {}, "Search key", keyName) : null,
    (me.search_keys || []).length ? field("key_value", "Value (end with * for a prefix: ngu*)") : null,
    field("type", "Type", { size: 5 }), field("event", "Event", { size: 5 }), field("listener", "Listener", { size: 10 }),
    field("destination", "Destination", { size: 10 }),
    h("label", {}, "Status", h("select", { name: "status" }, statuses.map((s) => h("option", { value: s, selected: params.get("status") === s }, s || "any")))),
    field("from", "From", { type: "datetime-local" }), field("to", "To", { type: "datetime-local" }),
    h("button", { type: "submit" }, "Search"));
  const q = new URLSearchParams();
  for (const k of ["control_id", "text", "type", "event", "listener", "destination", "status", "cursor"]) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ["from", "to"]) if (params.get(k)) q.set(k, new Date(params.get(k)).toISOString());
  if (params.get("key") && params.get("key_value")) q.set("key." + params.get("key"), params.get("key_value"));
  q.set("limit", "50");
  const [page, saved] = await Promise.all([api("GET", "/api/v1/messages?" + q.toString()),
    api("GET", "/api/v1/searches").catch(() => ({ items: [] }))]);
  const next = new URLSearchParams(params);
  next.set("cursor", page.next_cursor);
  const save = h("button", {
    type: "button", id: "save-search",
    onclick: async () => {
      const name = prompt("Save this search as (only you see it):");
      if (!name) return;
      const query = new URLSearchParams(q);
      query.delete("cursor");
      query.delete("limit");
      try { await api("PUT", "/api/v1/searches/" + encodeURIComponent(name), { query: query.toString() }); route(); } catch (e) { alert(e.message); }
    },
  }, "Save this search");
  show(h("h1", {}, "Messages"), savedSearches(saved.items), form, save,
    h("table", { id: "results" }, h("tr", {}, ["Received", "Control ID", "Type", "Listener", ...(me.search_keys || []), "Status", "Last error"].map((c) => h("th", {}, c))),
      page.items.map((m) => h("tr", {},
        h("td", {}, fmtTime(m.received_at)), h("td", {}, h("a", { href: "#/message/" + encodeURIComponent(m.id) }, m.control_id || "(none)")),
        h("td", {}, m.type + "^" + m.event), h("td", { title: m.sending_application + " / " + m.sending_facility }, m.listener),
        ...(me.search_keys || []).map((k) => h("td", { class: "key" }, (m.keys || {})[k] || "")),
        h("td", {}, m.destination ? m.destination.status + " (" + m.destination.destination + ")" : m.status), h("td", { class: "error" }, m.last_error || "")))),
    page.items.length === 0 ? h("p", {}, "No message matches.") : null,
    page.next_cursor ? h("a", { href: "#/messages?" + next.toString() }, "Next page") : null);
}

// savedSearches lists the person's saved searches: each opens the
// messages page with its filters; × deletes it.
function savedSearches(items) {
  if (!items.length) return null;
  const asPage = (query) => { // the API's filters as this page's
    const out = new URLSearchParams();
    for (const [k, v] of new URLSearchParams(query)) {
      if (k.startsWith("key.")) { out.set("key", k.slice(4)); out.set("key_value", v); } else out.set(k, v);
    }
    return out.toString();
  };
  return h("p", { id: "saved-searches", class: "saved" }, "Saved searches: ", items.map((s) => h("span", { class: "saved-search", "data-name": s.name },
    h("a", { href: "#/messages?" + asPage(s.query) }, s.name),
    h("button", {
      type: "button", class: "remove", title: "Delete the saved search " + s.name,
      onclick: async () => {
        if (!confirm("Delete the saved search " + s.name + "?")) return;
        try { await api("DELETE", "/api/v1/searches/" + encodeURIComponent(s.name)); route(); } catch (e) { alert(e.message); }
      },
    }, "×"), " ")));
}

function journeyItem(e) {
  let what = e.kind;
  switch (e.kind) {
    case "received": what = (e.duplicate ? "received again (a resend)" : "received") + (e.listener ? " on " + e.listener : "") + (e.remote ? " from " + e.remote : "") + (e.ack ? ", ACK sent: " + e.ack : "") + (e.by ? ", replayed by " + e.by : "") + (e.problems ? ", " + e.problems.length + " validation problem" + (e.problems.length > 1 ? "s" : "") : ""); break;
    case "routed": what = e.unrouted ? "no route matched" : "routed by " + (e.routes || []).join(", ") + " to " + ((e.destinations || []).join(", ") || "no destination (filtered)"); break;
    case "attempt": what = "attempt " + e.attempt + " to " + e.destination + " failed (" + (e.outcome || "") + ")" + (e.code ? ", downstream answered " + e.code : "") + (e.reason ? ": " + e.reason : ""); break;
    case "delivered": what = "delivered to " + e.destination + " (attempt " + e.attempt + (e.code ? ", downstream ACK " + e.code : "") + ")"; break;
    case "dead_lettered": what = "dead-lettered for " + e.destination + (e.reason ? ": " + e.reason : "") + (e.dlq ? " (dead letter " + e.dlq + ")" : ""); break;
    case "replayed": what = "replayed by " + e.by + (e.destination ? " to " + e.destination : e.as ? " as message " + e.as : ""); break;
    case "purged": what = "dead letter " + e.dlq + " purged by " + e.by; break;
  }
  return h("li", { class: "event-" + e.kind }, h("span", { class: "at" }, fmtTime(e.at), " "), what, e.ms ? " (" + e.ms.toFixed(1) + " ms)" : "");
}

function copyLines(text, base) {
  const baseLines = new Set((base || "").split("\r"));
  return h("pre", { class: "hl7" }, (text || "").split("\r").filter((l) => l !== "").map((l) =>
    h("div", { class: baseLines.has(l) ? undefined : "changed" }, l)));
}

// fieldRow is a field with its name and data type (from the HL7 v2
// definitions of the message's version); a field with components or
// repetitions opens into them, each with its name, subcomponents below.
function fieldRow(f) {
  const named = (x) => [x.name || "", x.type ? h("span", { class: "type" }, " " + x.type) : null];
  let value = f.value;
  if (f.components && f.components.length) {
    value = h("details", { class: "components" }, h("summary", {}, f.value),
      h("table", {}, f.components.flatMap((c) => [
        h("tr", { "data-path": c.path }, h("td", {}, c.path), h("td", {}, ...named(c)), h("td", {}, c.value)),
        ...(c.subcomponents || []).map((sc) => h("tr", { class: "sub", "data-path": sc.path }, h("td", {}, sc.path), h("td", {}, ...named(sc)), h("td", {}, sc.value))),
      ])));
  }
  return h("tr", { "data-path": f.path }, h("td", {}, f.path), h("td", {}, ...named(f)), h("td", {}, value));
}

async function message(id) {
  let m;
  try {
    m = await api("GET", "/api/v1/messages/" + encodeURIComponent(id));
  } catch (e) {
    if (e.status === 403) return show(h("h1", {}, "Message " + id), h("p", { class: "error" },
      me.role === "viewer" ? "Your role (" + me.role + ") does not show message content." : e.message));
    throw e;
  }
  const replay = can("operator") ? h("button", {
    type: "button", id: "replay",
    onclick: async () => {
      if (!confirm("Replay message " + id + " through today's routes? It is stored again as a new message.")) return;
      const out = await api("POST", "/api/v1/messages/replay", { ids: [id] });
      alert("Replayed: " + out.done + ", failed: " + out.failed);
      route();
    },
  }, "Replay through today's routes") : null;
  show(h("h1", {}, "Message ", m.control_id, " (", m.type, "^", m.event, ")"),
    h("p", {}, "Received ", fmtTime(m.received_at), " on ", m.listener, " from ", m.sending_application, " / ", m.sending_facility, "; status ", h("strong", {}, m.status)), replay,
    h("h2", {}, "Journey"), h("ol", { class: "timeline", id: "journey" }, (m.journey || []).map(journeyItem)),
    (m.validation || []).length ? h("div", { id: "validation" }, h("h2", {}, "Validation"),
      h("p", {}, "Stored as received; against the HL7 definitions of its version it has " + m.validation.length + " problem" + (m.validation.length > 1 ? "s" : "") + ":"),
      h("table", {}, h("tr", {}, ["Where", "Code", "Why"].map((c) => h("th", {}, c))),
        m.validation.map((p) => h("tr", {}, h("td", {}, p.location), h("td", {}, String(p.code)), h("td", {}, p.reason))))) : null,
    h("h2", {}, "As received"), copyLines(m.message, m.message),
    h("h2", {}, "Segments and fields"),
    h("table", { id: "fields" }, h("tr", {}, ["Field", "Name", "Value"].map((c) => h("th", {}, c))),
      (m.segments || []).flatMap((s) => s.fields.map(fieldRow))),
    h("h2", {}, "Each destination's copy"),
    h("div", { class: "copies" }, (m.copies || []).map((c) => h("div", { class: "copy", "data-destination": c.destination },
      h("h3", {}, c.destination, ": ", c.status, c.changed ? " (changed by a transform: highlighted)" : ""),
      c.data ? copyLines(c.data, m.message) : h("p", {}, c.note || "not kept"),
      sentParts(c)))));
}

// sentParts: what a copy's latest attempt sent, when the destination made
// something else of the copy (JSON, a FHIR Bundle, SQL row values, ER7
// with other line ends), the file it wrote, and what came back.
function sentParts(c) {
  const parts = [];
  if (c.sent_name) parts.push(h("p", { class: "sent-name" }, "Written to ", h("code", {}, c.sent_name)));
  if (c.sent && c.sent !== c.data) {
    parts.push(h("h4", {}, "Sent", c.sent_size ? " (the first " + c.sent.length + " of " + c.sent_size + " bytes)" : "", c.sent_encoding ? " (" + c.sent_encoding + ", not UTF-8)" : ""),
      h("pre", { class: "payload sent" }, readable(c.sent)));
  } else if (c.sent) {
    parts.push(h("p", { class: "sent-same" }, "Sent as shown above."));
  }
  if (c.response) {
    parts.push(h("h4", {}, "Response", c.response_encoding ? " (" + c.response_encoding + ", not UTF-8)" : ""),
      h("pre", { class: "payload response" }, readable(c.response)));
  }
  return parts;
}

// readable: JSON indented, HL7 one segment a line, anything else as is.
function readable(text) {
  const t = text.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try { return JSON.stringify(JSON.parse(t), null, 2); } catch (_) { /* shown as it came */ }
  }
  return text.replace(/\r\n?/g, "\n");
}

// ---- dead letters

async function deadLetters(params) {
  const dest = params.get("destination") || "";
  const q = new URLSearchParams({ limit: "100" });
  if (dest) q.set("destination", dest);
  if (params.get("cursor")) q.set("cursor", params.get("cursor"));
  const page = await api("GET", "/api/v1/dlq?" + q.toString());
  const checks = [];
  const selected = () => checks.filter((c) => c.checked).map((c) => c.value);
  const act = async (what, body, question) => {
    if (!confirm(question)) return;
    try {
      const out = await api("POST", "/api/v1/dlq/" + what, body);
      alert(what + ": " + out.done + " done, " + out.failed + " failed");
    } catch (e) { alert(e.message); }
    route();
  };
  const buttons = can("operator") ? h("p", {},
    h("button", { type: "button", id: "replay-selected", onclick: () => act("replay", { ids: selected() }, "Replay " + selected().length + " dead letter(s) to their destination?") }, "Replay selected"), " ",
    dest ? h("button", { type: "button", id: "replay-all", onclick: () => act("replay", { all: true, destination: dest }, "Replay every dead letter of " + dest + "?") }, "Replay all of " + dest) : null, " ",
    can("admin") ? h("button", { type: "button", id: "purge-selected", onclick: () => act("purge", { ids: selected() }, "Purge " + selected().length + " dead letter(s)? They cannot be replayed afterwards.") }, "Purge selected") : null, " ",
    can("admin") && dest ? h("button", { type: "button", id: "purge-all", onclick: () => act("purge", { all: true, destination: dest }, "Purge every dead letter of " + dest + "? They cannot be replayed afterwards.") }, "Purge all of " + dest) : null) : null;
  const filter = h("form", { class: "filters", onsubmit: (ev) => { ev.preventDefault(); location.hash = "#/dlq?destination=" + encodeURIComponent(new FormData(ev.target).get("destination")); } },
    h("label", {}, "Destination", h("input", { name: "destination", value: dest })), h("button", { type: "submit" }, "Show"));
  show(h("h1", {}, "Dead letters"), filter, buttons,
    h("table", { id: "dlq" }, h("tr", {}, ["", "Id", "Destination", "Message", "Control ID", "Type", "Attempts", "Reason", "At"].map((c) => h("th", {}, c))),
      page.items.map((d) => {
        const box = h("input", { type: "checkbox", value: d.id, "aria-label": "select dead letter " + d.id });
        checks.push(box);
        return h("tr", { "data-dlq": d.id }, h("td", {}, box), h("td", {}, d.id), h("td", {}, d.destination),
          h("td", {}, h("a", { href: "#/message/" + encodeURIComponent(d.message_id) }, d.message_id)), h("td", {}, d.control_id),
          h("td", {}, d.type + "^" + d.event), h("td", {}, d.attempts), h("td", {}, d.reason), h("td", {}, fmtTime(d.at)));
      })),
    page.items.length === 0 ? h("p", {}, "No dead letters.") : null,
    page.next_cursor ? h("a", { href: "#/dlq?" + new URLSearchParams({ destination: dest, cursor: page.next_cursor }) }, "Next page") : null);
}

// ---- destinations

async function destinations() {
  const list = await api("GET", "/api/v1/destinations");
  const items = list.items || list;
  show(h("h1", {}, "Destinations"),
    h("table", { id: "dests" }, h("tr", {}, ["Name", "Type", "State", "Queue", ""].map((c) => h("th", {}, c))),
      items.map((d) => h("tr", { "data-destination": d.name }, h("td", {}, d.name), h("td", {}, d.type), h("td", { class: "state" }, d.paused ? "paused" : "running"),
        h("td", {}, d.queue_depth < 0 ? "?" : d.queue_depth),
        h("td", {}, can("operator") ? h("button", {
          type: "button", class: d.paused ? "resume" : "pause",
          onclick: async () => {
            const verb = d.paused ? "resume" : "pause";
            if (!confirm(verb + " " + d.name + "?")) return;
            try { await api("POST", "/api/v1/destinations/" + encodeURIComponent(d.name) + "/" + verb); } catch (e) { alert(e.message); }
            route();
          },
        }, d.paused ? "Resume" : "Pause") : null)))));
}

// ---- alerts

async function alertsPage() {
  const draw = async () => {
    const page = await api("GET", "/api/v1/alerts");
    const row = (a) => h("tr", { class: a.status === "firing" ? "problem" : a.status === "pending" ? "warn" : undefined, "data-rule": a.rule, "data-target": a.target || "" },
      h("td", {}, a.rule), h("td", { class: "status" }, a.status, a.silenced ? " (silenced)" : ""), h("td", {}, a.target || "—"), h("td", {}, a.severity),
      h("td", {}, fmtTime(a.since)), h("td", {}, a.detail || ""));
    const head = () => h("tr", {}, ["Rule", "Status", "Target", "Severity", "Since", "Detail"].map((c) => h("th", {}, c)));
    const firing = page.items.filter((a) => a.status === "firing");
    const resolved = page.items.filter((a) => a.status === "resolved");
    const silenceForm = (r) => h("form", {
      class: "filters silence",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = new FormData(ev.target);
        try { await api("POST", "/api/v1/alerts/" + encodeURIComponent(r.name) + "/silence", { for: f.get("for"), reason: f.get("reason") }); } catch (e) { alert(e.message); }
        route();
      },
    }, h("label", {}, "For", h("select", { name: "for" }, ["30m", "1h", "2h", "4h", "8h", "24h", "72h"].map((d) => h("option", { value: d }, d)))),
      h("label", {}, "Reason", h("input", { name: "reason", required: true, placeholder: "why (kept in the audit trail)" })),
      h("button", { type: "submit" }, "Silence"));
    const lift = (r) => h("button", {
      type: "button", class: "unsilence",
      onclick: async () => {
        try { await api("DELETE", "/api/v1/alerts/" + encodeURIComponent(r.name) + "/silence"); } catch (e) { alert(e.message); }
        route();
      },
    }, "Lift silence");
    show(h("h1", {}, "Alerts"),
      h("h2", {}, "Firing"),
      firing.length ? h("table", { id: "firing" }, head(), firing.map(row)) : h("p", { class: "ok" }, "Nothing fires."),
      page.pending.length ? [h("h2", {}, "Pending"), h("p", {}, "The condition holds, not yet for the rule's duration."), h("table", { id: "pending" }, head(), page.pending.map(row))] : null,
      h("h2", {}, "Resolved in the last day"),
      resolved.length ? h("table", { id: "resolved" }, head(), resolved.map(row)) : h("p", {}, "None."),
      h("h2", {}, "Rules"),
      page.rules.length ? h("table", { id: "rules" }, h("tr", {}, ["Rule", "Kind", "Target", "Severity", "Silenced", ""].map((c) => h("th", {}, c))),
        page.rules.map((r) => h("tr", { "data-rule": r.name }, h("td", {}, r.name), h("td", {}, r.kind), h("td", {}, r.target || "each"), h("td", {}, r.severity),
          h("td", { class: "silenced" }, r.silenced ? "until " + fmtTime(r.silenced.until) + " by " + r.silenced.by + ": " + r.silenced.reason : ""),
          h("td", {}, can("operator") ? (r.silenced ? lift(r) : silenceForm(r)) : null))))
        : h("p", {}, "No rules: add them under alerts: in the config (docs/alerts.md)."));
  };
  await draw();
  refresh = setInterval(() => { if (!document.activeElement || document.activeElement.tagName !== "INPUT") draw().catch(() => {}); }, 5000);
}

// ---- audit

async function audit(params) {
  const q = new URLSearchParams({ limit: "100" });
  for (const k of ["user", "action", "cursor"]) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ["from", "to"]) if (params.get(k)) q.set(k, new Date(params.get(k)).toISOString());
  if (params.get("key") && params.get("key_value")) q.set("key." + params.get("key"), params.get("key_value"));
  const page = await api("GET", "/api/v1/audit?" + q.toString());
  const next = new URLSearchParams(params);
  next.set("cursor", page.next_cursor);
  const csv = new URLSearchParams(q);
  csv.delete("limit");
  csv.delete("cursor");
  csv.set("format", "csv");
  const keyName = h("select", { name: "key" }, (me.search_keys || []).map((k) => h("option", { value: k, selected: params.get("key") === k }, k)));
  const form = h("form", { class: "filters", id: "audit-filters", onsubmit: (ev) => { ev.preventDefault(); const f = new URLSearchParams(); for (const [k, v] of new FormData(ev.target)) if (v) f.set(k, v); if (!f.get("key_value")) f.delete("key"); location.hash = "#/audit?" + f; } },
    h("label", {}, "User", h("input", { name: "user", value: params.get("user") || "" })),
    h("label", {}, "Action", h("input", { name: "action", value: params.get("action") || "" })),
    (me.search_keys || []).length ? h("label", {}, "Patient key", keyName) : null,
    (me.search_keys || []).length ? h("label", {}, "Value", h("input", { name: "key_value", value: params.get("key_value") || "" })) : null,
    h("label", {}, "From", h("input", { name: "from", type: "datetime-local", value: params.get("from") || "" })),
    h("label", {}, "To", h("input", { name: "to", type: "datetime-local", value: params.get("to") || "" })),
    h("button", { type: "submit" }, "Search"));
  const keysText = (k) => Object.keys(k || {}).sort().map((n) => n + ": " + k[n].join(", ")).join("; ");
  show(h("h1", {}, "Audit"), form,
    h("p", {}, h("a", { id: "audit-csv", href: "/api/v1/audit?" + csv.toString(), download: "hl7broker-audit.csv" }, "Export these entries as CSV")),
    h("table", { id: "audit" }, h("tr", {}, ["At", "User", "Action", "Result", "Messages", "Patients", "Detail"].map((c) => h("th", {}, c))),
      page.items.map((a) => h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, a.user), h("td", {}, a.action), h("td", {}, a.result),
        h("td", {}, (a.ids || []).join(", ")), h("td", { class: "keys" }, keysText(a.keys)), h("td", {}, a.detail || "")))),
    page.next_cursor ? h("a", { href: "#/audit?" + next.toString() }, "Next page") : null);
}

// ---- refused: messages the broker did not store (no content: there is none)

async function refused(params) {
  const q = new URLSearchParams({ limit: "100" });
  for (const k of ["listener", "control_id", "cursor"]) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ["from", "to"]) if (params.get(k)) q.set(k, new Date(params.get(k)).toISOString());
  const page = await api("GET", "/api/v1/refused?" + q.toString());
  const next = new URLSearchParams(params);
  next.set("cursor", page.next_cursor);
  const form = h("form", { class: "filters", onsubmit: (ev) => { ev.preventDefault(); const f = new URLSearchParams(); for (const [k, v] of new FormData(ev.target)) if (v) f.set(k, v); location.hash = "#/refused?" + f; } },
    h("label", {}, "Listener", h("input", { name: "listener", value: params.get("listener") || "" })),
    h("label", {}, "Control ID", h("input", { name: "control_id", value: params.get("control_id") || "" })),
    h("label", {}, "From", h("input", { name: "from", type: "datetime-local", value: params.get("from") || "" })),
    h("label", {}, "To", h("input", { name: "to", type: "datetime-local", value: params.get("to") || "" })),
    h("button", { type: "submit" }, "Search"));
  show(h("h1", {}, "Refused messages"),
    h("p", {}, "Messages the broker did not store: their sender got AR or CR (refused), or AE or CE (not stored, to be resent). Only what could be read of the header is kept, never the content."),
    form,
    h("table", { id: "refused" }, h("tr", {}, ["At", "Listener", "From", "Type", "Control ID", "ACK", "Code", "Reason", "Bytes"].map((c) => h("th", {}, c))),
      page.items.map((r) => h("tr", {}, h("td", {}, fmtTime(r.at)), h("td", {}, r.listener), h("td", {}, r.remote_addr || ""),
        h("td", {}, r.type ? r.type + "^" + r.event : ""), h("td", {}, r.control_id || "(unreadable)"), h("td", {}, r.ack), h("td", {}, r.code),
        h("td", {}, r.reason), h("td", {}, String(r.size))))),
    page.next_cursor ? h("a", { href: "#/refused?" + next.toString() }, "Next page") : null);
}

// ---- start

document.getElementById("signout").addEventListener("click", async () => {
  try { await api("POST", "/ui/logout"); } catch (_) { /* signed out anyway */ }
  me = null;
  signIn();
});
window.addEventListener("hashchange", route);
api("GET", "/ui/session").then((s) => { me = s; started(); }).catch(() => signIn());
