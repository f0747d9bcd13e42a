// Shared by the three pages: DOM helpers, the API client, sign-in, the live
// websocket connection, the in-memory incident state and formatting.

// DOM --------------------------------------------------------------------------

/** Build an element: h("button", {class: "primary", onclick: fn}, "Claim"). */
export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Build an SVG element, attributes as in h(). */
export function svg(tag, props, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * Keep `container`'s children in the order of `items`, one element per key:
 * existing elements are kept (so focus stays where it is) and handed to `update`.
 */
export function syncList(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const el of container.children) existing.set(el.dataset.key, el);
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (wanted !== el) container.insertBefore(el, wanted);
    previous = el;
  }
  for (const el of existing.values()) el.remove();
}

/**
 * Rebuild an element's content when its data changed (`signature`), keeping the
 * values typed into [data-keep] fields and the focus on the [data-focus] control.
 */
export function patch(el, signature, build) {
  if (el.dataset.sig === signature) return;
  el.dataset.sig = signature;
  const active = document.activeElement;
  const focusKey = active && el.contains(active) ? active.dataset.focus : undefined;
  const kept = new Map();
  for (const field of el.querySelectorAll("[data-keep]")) {
    if (field.dataset.dirty) kept.set(field.dataset.keep, field.value);
  }
  el.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
  for (const field of el.querySelectorAll("[data-keep]")) {
    if (kept.has(field.dataset.keep)) {
      field.value = kept.get(field.dataset.keep);
      field.dataset.dirty = "1";
    }
  }
  if (focusKey) el.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`)?.focus();
}

/** Mark a field as typed into, so patch() keeps its value across re-renders. */
export function keepTyped(event) {
  if (event.target?.dataset?.keep) event.target.dataset.dirty = "1";
}

/** Run `fn` at most once per animation frame. */
export function throttled(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

// The API ------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, detail, { transport = false } = {}) {
    super(describeDetail(detail));
    this.status = status;
    this.detail = detail;
    this.transport = transport;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        const where = (d.loc || []).filter((p) => p !== "body").join(".");
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  return JSON.stringify(detail);
}

function makeApi(getToken) {
  return async function api(path, { method = "GET", body, headers = {} } = {}) {
    const init = {
      method,
      headers: { Accept: "application/json", Authorization: `Bearer ${getToken()}`, ...headers },
      cache: "no-store",
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch {
      throw new ApiError(0, "aidmesh cannot be reached; check the connection and retry", {
        transport: true,
      });
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, data?.detail ?? response.statusText, {
        transport: response.status === 503,
      });
    }
    return data;
  };
}

/** Every item of a paged list (`{data, next_offset}`). */
export async function fetchAll(api, path) {
  const items = [];
  const joiner = path.includes("?") ? "&" : "?";
  let offset = 0;
  while (offset !== null && offset !== undefined) {
    const page = await api(`${path}${joiner}limit=500&offset=${offset}`);
    items.push(...page.data);
    offset = page.next_offset;
  }
  return items;
}

/** Run `fn` over `items`, at most `limit` at a time. */
export async function eachLimited(items, limit, fn) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  });
  await Promise.all(workers);
}

// Live: the websocket ------------------------------------------------------------

const SILENCE_MS = 45_000; // three heartbeats (20 s) missed, give or take: the socket is dead
const OFFLINE_AFTER_MS = 30_000; // this long without a connection reads as "offline"
const SERVICE_RESTART = 1012; // close code of a replica shutting down (rolling restart)
// After a 1012 the service is expected back soon (another replica, or this one once it
// has restarted): retry this often, not with the growing backoff, for this long.
const RESTART_RETRY_MS = 400;
const RESTART_WINDOW_MS = 60_000;
const COMMAND_TIMEOUT_MS = 10_000;

/**
 * One websocket that stays up: ticket, connect, subscribe with the last seq of
 * each incident, apply what arrives; on loss, reconnect with backoff and resume.
 * States: connecting → live → reconnecting (→ offline after a while) → live.
 */
export class Live {
  constructor({ api, scopes, since, onEvent, onReset, onStatus, onAuthLost, onNotice }) {
    Object.assign(this, { api, scopes, since, onEvent, onReset, onStatus, onAuthLost, onNotice });
    this.state = "connecting";
    this.ws = null;
    this.failures = 0;
    this.downSince = Date.now();
    this.everLive = false;
    this.pending = new Map();
    this.nextRef = 1;
    this.lastHeard = Date.now();
    this.silenceMs = SILENCE_MS;
    this.retryTimer = null;
    this.restartUntil = 0;
    this.stopped = false;
  }

  start() {
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.wentOffline());
    this.watchdog = setInterval(() => this.checkSilence(), 2_000);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000, "signed out");
    }
    this.setState("offline");
  }

  retryNow() {
    if (this.stopped || this.ws || this.connecting) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /**
   * The browser says it has no network: whatever the socket last did, it cannot be
   * trusted to deliver, so drop it and say "Offline"; `online` reconnects and resumes.
   */
  wentOffline() {
    if (this.stopped) return;
    const ws = this.ws;
    if (ws) {
      ws.onclose = null;
      ws.close(4001, "browser offline");
      this.lost(ws);
    } else {
      this.setState("offline");
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onStatus?.(state, this);
  }

  async connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connecting = true;
    let ticket;
    try {
      ticket = await this.api("/ws-ticket", { method: "POST" });
    } catch (error) {
      if (error.status === 401) {
        this.stop();
        this.onAuthLost?.();
        return;
      }
      this.scheduleRetry();
      return;
    } finally {
      this.connecting = false;
    }
    if (this.stopped) return;
    const url = new URL(ticket.url, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this.ws = ws;
    this.lastHeard = Date.now();
    ws.onmessage = (message) => this.receive(ws, message);
    ws.onclose = (event) => this.lost(ws, event.code);
  }

  receive(ws, message) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    let msg;
    try {
      msg = JSON.parse(message.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case "welcome":
        this.silenceMs = Math.max(SILENCE_MS, (msg.heartbeat_s || 20) * 2250);
        ws.send(
          JSON.stringify({ op: "subscribe", scopes: this.scopes(), since: this.since(), ref: "subscribe" }),
        );
        break;
      case "subscribed":
        this.failures = 0;
        this.restartUntil = 0;
        this.everLive = true;
        this.setState("live");
        break;
      case "event":
        this.onEvent(msg.event);
        break;
      case "reset":
        this.onReset(msg);
        break;
      case "notice":
        // Not an incident's event: e.g. a city's webhook endpoint was disabled.
        this.onNotice?.(msg.notice);
        break;
      case "ack":
      case "error":
        this.settle(msg);
        break;
      default:
        break; // heartbeat, pong
    }
  }

  settle(msg) {
    const waiting = this.pending.get(msg.ref);
    if (!waiting) {
      if (msg.type === "error") console.warn("aidmesh websocket:", msg.status, msg.detail);
      return;
    }
    this.pending.delete(msg.ref);
    clearTimeout(waiting.timer);
    if (msg.type === "ack") waiting.resolve(msg.result);
    else waiting.reject(new ApiError(msg.status, msg.detail));
  }

  lost(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const [ref, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new ApiError(0, "the connection dropped", { transport: true }));
      this.pending.delete(ref);
    }
    if (this.state === "live") this.downSince = Date.now();
    if (code === SERVICE_RESTART) {
      // The replica is restarting on purpose and others are up (or it is back soon):
      // back at once, with a little jitter so its clients do not all arrive together.
      this.restartUntil = Date.now() + RESTART_WINDOW_MS;
      this.setState("reconnecting");
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), 100 + Math.random() * 300);
      return;
    }
    this.scheduleRetry();
  }

  checkSilence() {
    if (this.ws && Date.now() - this.lastHeard > this.silenceMs) {
      const ws = this.ws;
      ws.onclose = null;
      ws.close(4000, "no heartbeat");
      this.lost(ws);
    }
  }

  scheduleRetry() {
    if (this.stopped) return;
    this.failures += 1;
    const down = Date.now() - this.downSince;
    const offline = !navigator.onLine || (down > OFFLINE_AFTER_MS && this.failures > 2);
    this.setState(offline ? "offline" : this.everLive ? "reconnecting" : "connecting");
    const base =
      Date.now() < this.restartUntil
        ? RESTART_RETRY_MS
        : Math.min(15_000, 400 * 2 ** Math.min(this.failures - 1, 6));
    const delay = base * (0.8 + Math.random() * 0.4);
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Send a command op; resolves with the ack's result, rejects with an ApiError. */
  command(op, body) {
    const ws = this.ws;
    if (!ws || this.state !== "live" || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ApiError(0, "not connected", { transport: true }));
    }
    const ref = `c${this.nextRef++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ApiError(0, "no answer in time", { transport: true }));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
      ws.send(JSON.stringify({ op, ref, ...body }));
    });
  }
}

// Incidents in memory ------------------------------------------------------------

const FINAL_REQUEST = new Set(["fulfilled", "cancelled", "expired"]);
const ENDED_CLAIM = new Set(["withdrawn", "declined", "expired"]);
const PRIORITY_RANK = { critical: 0, high: 1, normal: 2, low: 3 };

export const isFinalRequest = (request) => FINAL_REQUEST.has(request.status);
export const isEndedClaim = (claim) => ENDED_CLAIM.has(claim.status);

/** Most urgent first, then newest. */
export function byUrgency(a, b) {
  return (
    (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) ||
    String(b.created_at).localeCompare(String(a.created_at)) ||
    b.id - a.id
  );
}

/**
 * What a page knows of each incident: the snapshot it loaded, folded forward
 * with every event after the snapshot's seq; and the events themselves, for the feed.
 */
export class IncidentBook {
  constructor() {
    this.incidents = new Map();
  }

  entry(id) {
    let entry = this.incidents.get(id);
    if (!entry) {
      entry = {
        id,
        incident: null,
        requests: new Map(),
        claims: new Map(),
        lastSeq: 0,
        events: new Map(),
        history: "none",
      };
      this.incidents.set(id, entry);
    }
    return entry;
  }

  /** Fetch an incident's snapshot, one fetch at a time; true when it was loaded. */
  async fetch(api, id) {
    const entry = this.entry(id);
    if (entry.loading) return false;
    entry.loading = true;
    try {
      const detail = await api(`/incidents/${id}`);
      if (detail.last_seq >= entry.lastSeq) this.load(detail);
      return true;
    } finally {
      entry.loading = false;
    }
  }

  /** Replace an incident's state with a snapshot (`IncidentDetail`). */
  load(detail) {
    const entry = this.entry(detail.id);
    const { requests, claims, ...incident } = detail;
    entry.incident = incident;
    entry.requests = new Map(requests.map((r) => [r.id, r]));
    entry.claims = new Map(claims.map((c) => [c.id, c]));
    entry.lastSeq = detail.last_seq;
    return entry;
  }

  /** Fold one event in; false when the state already had it. The feed keeps it either way. */
  apply(event) {
    const entry = this.entry(event.incident_id);
    entry.events.set(event.seq, event);
    if (event.seq <= entry.lastSeq) return false;
    entry.lastSeq = event.seq;
    const data = event.data || {};
    if (data.incident) entry.incident = { ...entry.incident, ...data.incident };
    if (data.request) entry.requests.set(data.request.id, data.request);
    if (data.claim) entry.claims.set(data.claim.id, data.claim);
    if (entry.incident && entry.incident.last_seq < event.seq) {
      entry.incident = { ...entry.incident, last_seq: event.seq };
    }
    return true;
  }

  /** The `since` of a subscribe: the last seq applied, per incident. */
  since() {
    const since = {};
    for (const entry of this.incidents.values()) {
      if (entry.lastSeq > 0) since[entry.id] = entry.lastSeq;
    }
    return since;
  }

  /** Load every event of an incident for its feed (once per incident). */
  async loadHistory(api, id) {
    const entry = this.entry(id);
    if (entry.history !== "none") return false;
    entry.history = "loading";
    try {
      let after = 0;
      for (;;) {
        const page = await api(`/incidents/${id}/events?after=${after}&limit=1000`);
        for (const event of page.data) this.apply(event);
        if (page.next_after === null || page.next_after === undefined) break;
        after = page.next_after;
      }
      entry.history = "done";
    } catch (error) {
      entry.history = "none";
      throw error;
    }
    return true;
  }

  /**
   * Cities each request reaches, with the ring that first reached them, from the
   * `request.raised` and `request.escalated` events (targets are not exposed otherwise).
   */
  reach(id) {
    const entry = this.entry(id);
    const reached = new Map();
    const home = entry.incident?.city_id;
    const note = (cityId, ring) => {
      if (cityId === home) return;
      if (!reached.has(cityId) || reached.get(cityId) > ring) reached.set(cityId, ring);
    };
    for (const event of entry.events.values()) {
      if (event.type === "request.raised") {
        for (const cityId of event.audience?.cities || []) note(cityId, event.data.request.ring);
      } else if (event.type === "request.escalated") {
        for (const cityId of event.data.reached_city_ids || []) note(cityId, event.data.to_ring);
        for (const cityId of event.audience?.cities || []) note(cityId, event.data.to_ring);
      }
    }
    return reached;
  }
}

/** Units of a request by the state of its claims: what the progress bars draw. */
export function claimBreakdown(entry, requestId) {
  const parts = { claimed: 0, accepted: 0, en_route: 0, on_site: 0 };
  for (const claim of entry.claims.values()) {
    if (claim.request_id !== requestId) continue;
    if (claim.status === "released") parts.on_site += claim.quantity;
    else if (claim.status in parts) parts[claim.status] += claim.quantity;
  }
  return parts;
}

// Formatting ------------------------------------------------------------------------

const LABELS = {
  open: "Open",
  partially_claimed: "Partly claimed",
  claimed: "Claimed",
  fulfilled: "Fulfilled",
  cancelled: "Cancelled",
  expired: "Expired",
  accepted: "Accepted",
  en_route: "En route",
  on_site: "On site",
  released: "Released",
  withdrawn: "Withdrawn",
  declined: "Declined",
  active: "Active",
  closed: "Closed",
};

export const statusLabel = (status) => LABELS[status] || status;

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

export const typeLabel = (slug) => capitalise(String(slug).replaceAll("-", " "));

/** A catalogue of resources by id, filled once from GET /resources. */
export const catalogue = new Map();

async function loadCatalogue(api) {
  for (const resource of await api("/resources")) catalogue.set(resource.id, resource);
}

const SPELLINGS = [
  [/\bgis\b/g, "GIS"],
  [/\b(\d+)kw\b/g, "$1 kW"],
  [/^swift water\b/, "swift-water"],
];

/** "generator-100kw" → "Generator 100 kW". */
export function resourceLabel(id) {
  let text = String(id).replaceAll("-", " ");
  for (const [pattern, spelling] of SPELLINGS) text = text.replace(pattern, spelling);
  return capitalise(text);
}

export function unitsOf(resourceId, quantity) {
  const unit = catalogue.get(resourceId)?.unit || "unit";
  if (quantity === 1) return `1 ${unit}`;
  const plural = unit === "person" ? "people" : `${unit}s`;
  return `${quantity} ${plural}`;
}

export function clockTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function spell(ms) {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return `${Math.max(0, Math.floor(ms / 1000))} s`;
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}

export function ago(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  return ms < 45_000 ? "just now" : `${spell(ms)} ago`;
}

export function until(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  if (ms <= 0) return "due now";
  if (ms < 3_600_000) {
    const s = Math.floor(ms / 1000);
    return `in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  return `in ${spell(ms)}`;
}

/** A <time> that keeps itself current ("4 min ago", "in 12:04"): see tick(). */
export function liveTime(iso, mode, prefix = "") {
  if (!iso) return null;
  return h(
    "time",
    { datetime: iso, title: new Date(iso).toUTCString(), dataset: { [mode]: iso, prefix } },
    prefix + (mode === "ago" ? ago(iso) : until(iso)),
  );
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-ago]")) {
    el.textContent = (el.dataset.prefix || "") + ago(el.dataset.ago, now);
  }
  for (const el of document.querySelectorAll("[data-until]")) {
    el.textContent = (el.dataset.prefix || "") + until(el.dataset.until, now);
  }
}

// Messages to the operator -------------------------------------------------------------

export function notify(message, kind = "error") {
  const region = document.getElementById("notices");
  const note = h(
    "div",
    { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, message),
    h("button", { type: "button", class: "quiet", "aria-label": "Dismiss", onclick: () => note.remove() }, "×"),
  );
  region.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 12_000 : 5_000);
}

/** A modal yes/no question; resolves true when confirmed. */
export function confirmAction(question, confirmLabel, details = "") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-q" },
      h("form", { method: "dialog" },
        h("p", { id: "confirm-q", class: "question" }, question),
        details ? h("p", { class: "muted" }, details) : null,
        h("div", { class: "actions" },
          h("button", { value: "no", class: "secondary", autofocus: true }, "Keep as is"),
          h("button", { value: "yes", class: "danger" }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Disable a button while `work` runs, and report its error. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    notify(error.message || String(error));
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// The page shell: header, sign-in, connection indicator ---------------------------------

const PAGES = [
  { id: "board", href: "/board", label: "Board" },
  { id: "respond", href: "/respond", label: "Respond" },
  { id: "manage", href: "/manage", label: "Manage" },
  { id: "webhooks", href: "/webhooks", label: "Webhooks" },
];

const STATE_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/**
 * Draw the shell of a page and sign in. `roles` lists the token roles the page
 * accepts; `start(ctx)` runs once signed in, with the API, who is signed in and
 * the cities, and returns nothing. The token stays in this tab's sessionStorage.
 */
export function startPage({ page, title, roles, needsCity = false, hint, start }) {
  const storageKey = `aidmesh.token.${page}`;
  const root = document.getElementById("root");
  const indicator = h(
    "div",
    { class: "conn", id: "conn", role: "status", dataset: { state: "offline" } },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "conn-label" }, "Not connected"),
  );
  const who = h("div", { class: "who", id: "who" });
  const signOut = h("button", { type: "button", class: "secondary small", id: "sign-out", hidden: true }, "Sign out");
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/" }, h("span", { class: "mark", "aria-hidden": "true" }), "aidmesh"),
    h(
      "nav",
      { "aria-label": "Pages" },
      PAGES.map((p) =>
        h("a", { href: p.href, "aria-current": p.id === page ? "page" : null }, p.label),
      ),
    ),
    h("div", { class: "topbar-end" }, who, indicator, signOut),
  );
  const main = h("main", { id: "main", class: `page page-${page}`, tabindex: "-1" });
  root.replaceChildren(
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    header,
    main,
    h("div", { id: "notices", class: "notices", "aria-live": "polite" }),
  );
  document.title = `${title} · aidmesh`;

  let token = sessionStorage.getItem(storageKey) || "";
  const api = makeApi(() => token);
  let live = null;

  function setIndicator(state, connection) {
    indicator.dataset.state = state;
    indicator.querySelector(".conn-label").textContent = STATE_LABELS[state] || state;
    indicator.title =
      state === "live"
        ? "Receiving events as they happen"
        : state === "offline"
          ? "No connection; retrying in the background"
          : "Connecting to the live stream";
    indicator.onclick = state === "offline" ? () => connection?.retryNow() : null;
  }

  function showSignIn(message = "") {
    live?.stop();
    live = null;
    who.textContent = "";
    signOut.hidden = true;
    setIndicator("offline");
    indicator.querySelector(".conn-label").textContent = "Signed out";
    const input = h("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      placeholder: "amk_…",
    });
    const error = h("p", { class: "form-error", id: "token-error", role: "alert" }, message);
    const form = h(
      "form",
      { class: "panel sign-in", id: "sign-in" },
      h("h1", {}, title),
      h("p", { class: "muted" }, hint),
      h("label", { for: "token" }, "Access token"),
      input,
      error,
      h("button", { type: "submit", class: "primary" }, "Sign in"),
      h(
        "p",
        { class: "fine" },
        "The token stays in this browser tab only (session storage) and is sent as a bearer header, never in an address.",
      ),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      token = input.value.trim();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await enter();
      } finally {
        button.disabled = false;
      }
    });
    main.replaceChildren(form);
    input.focus();
  }

  async function enter() {
    let me;
    try {
      me = await api("/me");
    } catch (error) {
      sessionStorage.removeItem(storageKey);
      showSignIn(error.status === 401 ? "That token is not valid (or was revoked)." : error.message);
      return;
    }
    if (roles && !roles.includes(me.role)) {
      sessionStorage.removeItem(storageKey);
      showSignIn(`This page needs a ${roles.join(" or ")} token; this one is a ${me.role} token.`);
      return;
    }
    if (needsCity && me.city_id === null) {
      sessionStorage.removeItem(storageKey);
      showSignIn("This page needs a token of a city.");
      return;
    }
    sessionStorage.setItem(storageKey, token);
    const cities = new Map((await fetchAll(api, "/cities")).map((c) => [c.id, c]));
    await loadCatalogue(api);
    const city = me.city_id !== null ? cities.get(me.city_id) : null;
    who.replaceChildren(
      h("span", { class: "who-city" }, city ? city.name : "All cities"),
      h("span", { class: "who-role" }, me.role),
    );
    signOut.hidden = false;
    main.replaceChildren();
    try {
      await start({
        api,
        me,
        city,
        cities,
        main,
        connect(options) {
          live = new Live({
            api,
            onAuthLost: () => showSignIn("The token is no longer valid; sign in again."),
            ...options,
            onStatus(state, connection) {
              setIndicator(state, connection);
              options.onStatus?.(state, connection);
            },
          });
          setIndicator("connecting", live);
          live.start();
          return live;
        },
      });
    } catch (error) {
      main.replaceChildren(
        h("div", { class: "panel sign-in", role: "alert" },
          h("h1", {}, "Could not load this page"),
          h("p", {}, error.message || String(error)),
          h("button", { type: "button", class: "primary", onclick: () => location.reload() }, "Try again"),
        ),
      );
    }
  }

  signOut.addEventListener("click", () => {
    sessionStorage.removeItem(storageKey);
    token = "";
    location.reload();
  });

  setInterval(tick, 1000);
  if (token) enter();
  else showSignIn();
}

export function cityName(cities, id) {
  return cities.get(id)?.name ?? `city ${id}`;
}

/** What an `incident.updated` event changed, in words: severity old → new, the new title. */
function describeChanges(changes) {
  const words = [];
  if (changes.severity) words.push(`severity ${changes.severity.old} → ${changes.severity.new}`);
  if (changes.title) words.push(`title “${changes.title.new}”`);
  if (changes.description) words.push(changes.description.new ? "new description" : "description removed");
  return words.join(", ") || "no change";
}

/** One line of the feed for an event. */
export function describeEvent(event, cities) {
  const d = event.data || {};
  const by = event.actor_city_id ? cityName(cities, event.actor_city_id) : "aidmesh";
  const req = d.request;
  const name = req ? `${resourceLabel(req.resource)} (#${req.id})` : "";
  switch (event.type) {
    case "incident.declared":
      return `${by} declared “${d.incident.title}”: ${typeLabel(d.incident.incident_type).toLowerCase()}, ${d.incident.severity}${d.incident.exercise ? ", exercise" : ""}`;
    case "incident.updated":
      return `${by} updated the incident: ${describeChanges(d.changes || {})}`;
    case "incident.closed":
      return `${by} closed the incident`;
    case "request.raised":
      return `${by} asked for ${name}: ${unitsOf(req.resource, req.quantity)}, ${req.priority}`;
    case "request.escalated": {
      const names = (d.reached_city_ids || []).map((id) => cityName(cities, id));
      return `${name} moved to ring ${d.to_ring}${names.length ? `, reaching ${names.join(", ")}` : ""}`;
    }
    case "request.cancelled":
      return `${name} cancelled`;
    case "request.expired":
      return `${name} expired unfilled`;
    case "request.fulfilled":
      return `${name} fulfilled`;
    case "claim.made":
      return `${cityName(cities, d.claim.city_id)} claimed ${unitsOf(req.resource, d.claim.quantity)} of ${name}`;
    case "claim.changed":
      return `${cityName(cities, d.claim.city_id)}: ${unitsOf(req.resource, d.claim.quantity)} of ${name} ${statusLabel(d.claim.status).toLowerCase()}`;
    case "claim.reminder":
      return `Claim #${d.claim.id} by ${cityName(cities, d.claim.city_id)} is waiting for acceptance`;
    default:
      return event.type;
  }
}
