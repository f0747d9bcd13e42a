// The pages' service worker, served at /sw.js (scope: the whole site) with the release
// and the shell's addresses filled in above this line by service/web/routes.py.
//
// It keeps the shell of every page and every static asset of this release, so a page
// opens without a network. Network first: what the service answers is shown and kept;
// the kept copy only when the service cannot be reached. The API is not its business:
// the pages keep their own last answers per person (api.js) and clear them on sign-out.
// Nothing but GETs of pages and assets goes through it; writes go straight out.
/* global RELEASE, PRECACHE */

const SHELL_CACHE = `aidmesh-shell-${RELEASE}`;
const DATA_CACHE = `aidmesh-data-${RELEASE}`;
const OURS = new Set([SHELL_CACHE, DATA_CACHE]);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) => cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

// A new release replaces the old one's caches: its shell, assets and kept answers.
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((n) => n.startsWith("aidmesh-") && !OURS.has(n)).map((n) => caches.delete(n))),
      )
      .then(() => self.clients.claim()),
  );
});

/** A page of the site or one of its assets: what this worker keeps. */
function kept(url) {
  if (url.origin !== self.location.origin) return false;
  const path = url.pathname;
  if (path.startsWith("/static/")) return true;
  if (path.startsWith("/api/") || path === "/ws" || path === "/sw.js") return false;
  if (path.startsWith("/docs") || path.startsWith("/openapi") || path.startsWith("/redoc")) return false;
  return !path.startsWith("/health") && !path.startsWith("/ready") && !path.startsWith("/metrics");
}

async function networkFirst(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") await cache.put(request, response.clone());
    return response;
  } catch (error) {
    // A page's address may carry a query; its shell is the same for every one.
    const copy = await cache.match(request, { ignoreSearch: request.mode === "navigate" });
    if (copy) return copy;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  if (!kept(new URL(request.url))) return;
  event.respondWith(networkFirst(request));
});
