// The REST client: one `api(path, options)` per signed-in token, its error type, and
// the paging and concurrency helpers built on it.

import { has, lang, t } from "./i18n.js";

/** What an HTTP status means, in this page's language ("error.409"); the server's own
 * sentence (English) stays with it as the detail. */
export function errorSummary(status) {
  return t(has(`error.${status}`) ? `error.${status}` : "error.other", { status });
}

export class ApiError extends Error {
  constructor(status, detail, { transport = false } = {}) {
    // In English the server's sentence says it all; in another language, the status's
    // meaning comes first and the server's sentence follows.
    const said = describeDetail(detail);
    const summary = errorSummary(status);
    super(lang === "en" || said === summary ? said : `${summary}: ${said}`);
    this.summary = summary;
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


/** The value of a cookie of this page's origin (the session's CSRF token). */
export function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A client of /api/v1: with a token (`getToken()`), sent as a bearer header; without
 * one, the browser's session cookie goes along, and every write carries the session's
 * CSRF token as `X-CSRF-Token`.
 */
export function makeApi(getToken) {
  // `as: "text"` answers the body as text (a CSV, say) instead of parsing JSON.
  return async function api(path, { method = "GET", body, headers = {}, as = "json" } = {}) {
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
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch {
      throw new ApiError(0, t("error.0"), {
        transport: true,
      });
    }
    if (response.status === 204) return null;
    if (as === "text" && response.ok) return response.text();
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
