// The REST client: one `api(path, options)` per signed-in token, its error type, and
// the paging and concurrency helpers built on it.

import { t } from "./i18n.js";
import { errorSummary, refusalText } from "./refusals.js";

export { errorSummary };

/** A refusal of the server (or no answer at all, status 0): its message is worded in this
 * page's language from the answer's `code` and `params` (refusals.js). */
export class ApiError extends Error {
  constructor(status, detail, { transport = false, code = null, params = {} } = {}) {
    super(refusalText(status, detail, code, params));
    this.summary = errorSummary(status);
    this.status = status;
    this.detail = detail;
    this.code = code;
    this.params = params;
    this.transport = transport;
  }
}


/** The value of a cookie of this page's origin (the session's CSRF token). */
export function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// The last answer to each GET a page read, kept per person in the browser's Cache Storage
// (the release's "aidmesh-data-…" cache, which a new release's service worker replaces),
// so a page opened without a network shows the last known state, marked with its age.
// Sign-out forgets every kept answer (forgetCopies).
const COPY_LIMIT = 400; // answers kept at most; the oldest go first
const COPY_MAX_CHARS = 4_000_000; // a larger answer is not kept
const WHO_KEY = "aidmesh.offline.who";

function dataCache() {
  const shell = document.getElementById("aidmesh-shell");
  const release = shell ? JSON.parse(shell.textContent).release : "";
  return `aidmesh-data-${release || "dev"}`;
}

async function copyAddress(token, path) {
  // A token's answers under a digest of it; the browser session's under "session".
  let who = "session";
  if (token) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
    who = Array.from(new Uint8Array(digest).slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return `${location.origin}/offline-copy/${who}/api/v1${path}`;
}

const copiesUsable = () => typeof caches !== "undefined" && Boolean(globalThis.crypto?.subtle);

async function keepCopy(token, path, data) {
  if (!copiesUsable()) return;
  const text = JSON.stringify({ stored_at: new Date().toISOString(), data });
  if (text.length > COPY_MAX_CHARS) return;
  const cache = await caches.open(dataCache());
  const address = await copyAddress(token, path);
  await cache.delete(address);
  await cache.put(address, new Response(text, { headers: { "Content-Type": "application/json" } }));
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - COPY_LIMIT))) await cache.delete(old);
}

async function readCopy(token, path) {
  if (!copiesUsable()) return null;
  const cache = await caches.open(dataCache());
  const found = await cache.match(await copyAddress(token, path));
  return found ? found.json() : null;
}

/** Forget every kept answer, of every person (sign-out, a session that ended). */
export async function forgetCopies() {
  localStorage.removeItem(WHO_KEY);
  if (typeof caches === "undefined") return;
  const names = await caches.keys();
  await Promise.all(names.filter((n) => n.startsWith("aidmesh-data-")).map((n) => caches.delete(n)));
}

/**
 * Who is signed in now (`who`, any string naming the person): a different person than
 * the one whose answers are kept makes the browser forget them first; true when it did.
 */
export async function keepCopiesOf(who) {
  const before = localStorage.getItem(WHO_KEY);
  if (before === who) return false;
  if (before !== null) await forgetCopies();
  localStorage.setItem(WHO_KEY, who);
  return before !== null;
}

/**
 * A client of /api/v1: with a token (`getToken()`), sent as a bearer header; without
 * one, the browser's session cookie goes along, and every write carries the session's
 * CSRF token as `X-CSRF-Token`.
 */
export function makeApi(getToken, { onCopy } = {}) {
  // `as: "text"` answers the body as text (a CSV, say) instead of parsing JSON. A GET the
  // service cannot answer (no link, 503) is answered from its kept copy, if any, unless
  // `fresh`; `onCopy(storedAt)` then hears how old that copy is.
  async function fromCopy(token, path, error) {
    const copy = await readCopy(token, path).catch(() => null);
    if (!copy) throw error;
    onCopy?.(copy.stored_at);
    return copy.data;
  }
  return async function api(path, { method = "GET", body, headers = {}, as = "json", fresh = false } = {}) {
    const token = getToken();
    const auth = token
      ? { Authorization: `Bearer ${token}` }
      : SAFE_METHODS.has(method)
        ? {}
        : { "X-CSRF-Token": cookie("aidmesh_csrf") };
    const init = {
      method,
      headers: { Accept: "application/json", ...auth, ...headers },
      cache: "no-store",
      credentials: "same-origin",
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const copyable = method === "GET" && as === "json" && !fresh;
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch {
      const error = new ApiError(0, t("error.0"), {
        transport: true,
      });
      if (copyable) return fromCopy(token, path, error);
      throw error;
    }
    if (response.status === 204) return null;
    if (as === "text" && response.ok) return response.text();
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new ApiError(response.status, data?.detail ?? response.statusText, {
        transport: response.status === 503,
        code: data?.code ?? null,
        params: data?.params ?? {},
      });
      if (copyable && response.status === 503) return fromCopy(token, path, error);
      throw error;
    }
    if (copyable) keepCopy(token, path, data).catch(() => null);
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
