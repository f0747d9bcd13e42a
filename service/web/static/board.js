// The live incident board: active incidents and the recently closed ones, the selected
// one's requests and their progress, its map and its event feed, all kept current by the
// websocket. `#incident=ID` opens exactly that incident, or says it cannot be shown.

import { h, patch, syncList, throttled } from "./dom.js";
import { ApiError, eachLimited, fetchAll } from "./api.js";
import { IncidentBook } from "./store.js";
import { clockElement, describeEvent, eventTypeLabel, placeOf, statusLabel } from "./format.js";
import { t } from "./i18n.js";
import { isEndedClaim, isFinalRequest, priorityRank } from "./vocabulary.js";
import { busy, notify } from "./notices.js";
import { startPage } from "./shell.js";
import { drawMap } from "./map.js";
import { NoteThreads } from "./notes.js";
import { OfferPanel } from "./offers.js";
import {
  answersBlock,
  badge,
  checklistsBlock,
  exerciseBadge,
  incidentItem,
  incidentLine,
  legend,
  needsAttention,
  progressBar,
  requestClocks,
  requestTiming,
  requestTitle,
  respondersBlock,
  severityBadge,
  webhookBanner,
} from "./views.js";

const FEED_LIMIT = 300;
// Closed incidents are history: the newest few, and older ones a page at a time on demand.
const CLOSED_PAGE = 10;

startPage({
  hint: t("board.hint"),
  start: startBoard,
});

async function startBoard({ api, me, cities, main, connect }) {
  const book = new IncidentBook();
  let selected = hashIncident();
  let unreachable = null; // an id asked for in the address that is not there or not visible
  const closedSeen = new Map(); // closed incidents listed from the API, by id
  let closedNext = 0; // offset of the next page of closed incidents; null when none is left

  const incidentList = h("ul", { class: "incident-list", id: "incident-list" });
  const closedList = h("ul", { class: "incident-list closed-list", id: "closed-list" });
  const closedMore = h("button", { type: "button", class: "secondary small", id: "closed-more", onclick: (e) => busy(e.currentTarget, loadClosed) }, t("board.show_older"));
  const head = h("div", { class: "incident-head", id: "incident-head" });
  const requestList = h("ul", { class: "request-list", id: "request-list" });
  const mapBox = h("div", { class: "map", id: "map" });
  const feedTitle = h("h2", { id: "feed-title" }, t("board.live_feed"));
  const feed = h("ol", { class: "feed", id: "feed", "aria-labelledby": "feed-title" });
  // A city's manager also sees its webhook endpoints that stopped delivering.
  const banner = me.role === "manager" ? webhookBanner(api, me.city_id) : null;
  const offers = new OfferPanel({ api, me, cities });
  main.append(
    banner?.el ?? "",
    h("div", { class: "board" },
      h("section", { class: "panel col-incidents", "aria-labelledby": "incidents-title" },
        h("h2", { id: "incidents-title" }, t("board.active_incidents")),
        incidentList,
        h("h2", { id: "closed-title", class: "closed-title" }, t("board.recently_closed")),
        closedList,
        closedMore,
      ),
      h("section", { class: "panel col-detail", "aria-label": t("board.selected_incident"), tabindex: "0" },
        head,
        h("div", { class: "section-head" }, h("h2", {}, t("board.requests")), legend()),
        requestList,
      ),
      h("div", { class: "col-side" },
        h("section", { class: "panel", "aria-labelledby": "map-title" }, h("h2", { id: "map-title" }, t("board.map")), mapBox),
        offers.el,
        h("section", { class: "panel feed-panel", "aria-labelledby": "feed-title", tabindex: "0" }, feedTitle, feed),
      ),
    ),
  );

  const threads = new NoteThreads(api, () => render());
  const render = throttled(() => {
    renderIncidents();
    renderSelected();
  });

  function hashIncident() {
    return Number(new URLSearchParams(location.hash.slice(1)).get("incident")) || null;
  }

  function entries() {
    return [...book.incidents.values()]
      .filter((e) => e.incident?.status === "active")
      .sort((a, b) => String(b.incident.declared_at).localeCompare(String(a.incident.declared_at)));
  }

  /** Closed incidents: those listed from the API and those that closed while the board was open. */
  function closedEntries() {
    const closed = new Map(closedSeen);
    for (const e of book.incidents.values()) {
      if (e.incident?.status === "closed") closed.set(e.id, e.incident);
    }
    // The API's order (newest declared first), so that "Show older" adds below.
    return [...closed.values()].sort(
      (a, b) => String(b.declared_at).localeCompare(String(a.declared_at)) || b.id - a.id,
    );
  }

  async function loadClosed() {
    if (closedNext === null) return;
    const page = await api(`/incidents?status=closed&limit=${CLOSED_PAGE}&offset=${closedNext}`);
    for (const incident of page.data) closedSeen.set(incident.id, incident);
    closedNext = page.next_offset ?? null;
    render();
  }

  /** Show incident `id`: from what the board holds, else fetched (a closed one, say). */
  async function select(id) {
    selected = id;
    unreachable = null;
    if (hashIncident() !== id) history.replaceState(null, "", `#incident=${id}`);
    render();
    if (!book.incidents.get(id)?.incident) {
      try {
        await book.fetch(api, id);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) {
          notify(t("board.load_incident_failed", { id, error: error.message }));
          return;
        }
        if (selected === id) unreachable = id;
        render();
        return;
      }
    }
    loadHistory(id);
    render();
  }

  function incidentButtons(container, list, empty) {
    if (!list.length) {
      container.replaceChildren(h("li", { class: "empty" }, empty));
      return;
    }
    container.querySelector(".empty")?.remove();
    syncList(
      container,
      list,
      (incident) => incident.id,
      (incident) => h("li", {}, h("button", { type: "button", class: "incident-item", dataset: { focus: "item" }, onclick: () => select(incident.id) })),
      (li, incident) => {
        const button = li.firstChild;
        const requests = book.incidents.get(incident.id)?.requests.values() ?? [];
        const alerts = incident.status === "active" ? [...requests].filter(needsAttention).length : 0;
        li.dataset.incidentId = incident.id;
        button.setAttribute("aria-pressed", String(incident.id === selected));
        patch(button, JSON.stringify([incident, alerts]), () =>
          incidentItem(incident, cities, alerts ? badge(t("board.critical_unclaimed", { count: alerts }), "alert") : null),
        );
      },
    );
  }

  function renderIncidents() {
    incidentButtons(incidentList, entries().map((e) => e.incident), t("board.no_active"));
    incidentButtons(closedList, closedEntries(), t("board.no_closed"));
    closedMore.hidden = closedNext === null;
  }

  function renderSelected() {
    const entry = selected ? book.incidents.get(selected) : null;
    offers.show(entry?.incident ?? null).catch((error) => notify(t("offers.read_failed", { error: error.message })));
    if (unreachable !== null && unreachable === selected) {
      head.replaceChildren(
        h("h2", { id: "incident-missing" }, t("board.cannot_show", { id: selected })),
        h("p", { class: "muted" }, t("board.cannot_show_detail")),
      );
      head.dataset.sig = "";
      requestList.replaceChildren();
      mapBox.replaceChildren();
      mapBox.dataset.sig = "";
      feed.replaceChildren();
      return;
    }
    if (!entry?.incident) {
      head.dataset.sig = "";
      head.replaceChildren(h("h2", {}, t("board.none_selected")), h("p", { class: "muted" }, t("board.choose_incident")));
      requestList.replaceChildren();
      mapBox.replaceChildren();
      mapBox.dataset.sig = "";
      feed.replaceChildren();
      return;
    }
    const incident = entry.incident;
    patch(head, JSON.stringify(incident), () => [
      h("div", { class: "head-line" },
        h("h2", { id: "incident-title" }, incident.title),
        severityBadge(incident.severity),
        exerciseBadge(incident),
        incident.status === "closed" ? badge(statusLabel("closed"), "closed") : null,
      ),
      h("p", { class: "meta" }, incidentLine(incident, cities), h("span", {}, `#${incident.id}`),
        h("a", { href: `/incidents/${incident.id}/report`, class: "report-link" }, t("page.report.title"))),
      incident.description ? h("p", { class: "description" }, incident.description) : null,
      checklistsBlock(incident, cities),
    ]);
    const requests = [...entry.requests.values()].sort(
      (a, b) => needsAttention(b) - needsAttention(a) || priorityRank(a.priority) - priorityRank(b.priority) || a.id - b.id,
    );
    if (!requests.length) requestList.replaceChildren(h("li", { class: "empty" }, t("board.no_requests")));
    else {
      requestList.querySelector(".empty")?.remove();
      syncList(
        requestList,
        requests,
        (r) => r.id,
        () => h("li", { class: "request" }),
        (li, request) => {
          li.dataset.requestId = request.id;
          li.classList.toggle("attention", needsAttention(request));
          li.classList.toggle("final", isFinalRequest(request));
          const claims = [...entry.claims.values()].filter((c) => c.request_id === request.id);
          patch(li, JSON.stringify([request, claims, threads.signature(entry, request.id)]), () => [
            requestTitle(request),
            needsAttention(request) ? h("p", { class: "attention-note" }, t("board.critical_note", { count: request.remaining_quantity })) : null,
            progressBar(entry, request),
            respondersBlock(entry, request, cities),
            answersBlock(entry, request, cities),
            requestTiming(request, placeOf(cities, incident.city_id)),
            threads.view(entry, request, cities),
            requestClocks(request, claims, cities),
          ]);
        },
      );
    }
    drawMapFor(entry);
    renderFeed(entry);
  }

  function drawMapFor(entry) {
    const reach = book.reach(entry.id);
    // city id → resource → units: units of unlike resources are never added together.
    const claimers = new Map();
    for (const claim of entry.claims.values()) {
      if (isEndedClaim(claim)) continue;
      const resource = entry.requests.get(claim.request_id)?.resource ?? "";
      const units = claimers.get(claim.city_id) ?? new Map();
      units.set(resource, (units.get(resource) || 0) + claim.quantity);
      claimers.set(claim.city_id, units);
    }
    const requests = [...entry.requests.values()].filter((r) => !isFinalRequest(r));
    const points = requests.map((r) => [r.id, r.report_to, r.report_lat, r.report_lon, r.quantity]);
    const place = [entry.incident.lat, entry.incident.lon, entry.incident.title];
    const signature = JSON.stringify([entry.id, [...reach], [...claimers].map(([id, units]) => [id, [...units]]), points, place]);
    if (mapBox.dataset.sig === signature) return;
    mapBox.dataset.sig = signature;
    drawMap(mapBox, { cities, originId: entry.incident.city_id, reach, claimers, incident: entry.incident, requests });
  }

  function renderFeed(entry) {
    feedTitle.textContent = t("board.live_feed_of", { title: entry.incident.title });
    const events = [...entry.events.values()].sort((a, b) => b.seq - a.seq).slice(0, FEED_LIMIT);
    if (feed.dataset.incident !== String(entry.id)) {
      feed.replaceChildren();
      feed.dataset.incident = entry.id;
    }
    const fresh = feed.children.length > 0;
    syncList(
      feed,
      events,
      (e) => e.seq,
      (event) => {
        const li = h("li", { class: `feed-item type-${event.type.replace(".", "-")}${fresh ? " fresh" : ""}`, dataset: { seq: event.seq } },
          h("span", { class: "feed-seq" }, `#${event.seq}`),
          clockElement(event.occurred_at, placeOf(cities, entry.incident.city_id), { class: "feed-time" }),
          h("span", { class: "feed-type" }, eventTypeLabel(event.type)),
          h("span", { class: "feed-text" }, describeEvent(event, cities)),
        );
        return li;
      },
      () => {},
    );
  }

  async function loadHistory(id) {
    try {
      if (await book.loadHistory(api, id)) render();
    } catch (error) {
      notify(t("board.history_failed", { error: error.message }));
    }
  }

  async function loadIncident(id) {
    try {
      if (!(await book.fetch(api, id))) return;
      if (!selected && unreachable === null) select(id);
      render();
    } catch (error) {
      notify(t("board.load_incident_failed", { id, error: error.message }));
    }
  }

  // The snapshot, then the stream from its seqs on.
  const active = await fetchAll(api, "/incidents?status=active");
  await eachLimited(active, 6, async (incident) => book.load(await api(`/incidents/${incident.id}`)));
  await loadClosed();
  // The address names an incident: that one, closed or not, and never another instead.
  if (!selected) selected = entries()[0]?.id ?? null;
  window.addEventListener("hashchange", () => {
    const asked = hashIncident();
    if (asked && asked !== selected) select(asked);
  });
  connect({
    scopes: () => ["board"],
    since: () => book.since(),
    onEvent(event) {
      const known = book.incidents.get(event.incident_id)?.incident;
      book.apply(event);
      offers.apply(event);
      if (!known && !book.entry(event.incident_id).incident) loadIncident(event.incident_id);
      else if (!known) {
        // Declared just now: its whole history is this stream.
        book.entry(event.incident_id).history = event.seq === 1 ? "done" : "none";
        if (!selected && unreachable === null) select(event.incident_id);
      }
      render();
    },
    onReset(message) {
      book.load(message.snapshot);
      book.entry(message.incident_id).history = "none";
      if (message.incident_id === selected) loadHistory(selected);
      render();
    },
    onNotice(notice) {
      if (notice.kind === "webhook.disabled" && notice.city_id === me.city_id) banner?.refresh();
    },
  });
  banner?.refresh();
  if (selected) select(selected);
  render();
}

