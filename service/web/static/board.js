// The live incident board: active incidents, the selected one's requests and
// their progress, its map and its event feed, all kept current by the websocket.

import { h, patch, syncList, throttled } from "./dom.js";
import { eachLimited, fetchAll } from "./api.js";
import { IncidentBook } from "./store.js";
import { clockTime, describeEvent, typeLabel } from "./format.js";
import { isEndedClaim, isFinalRequest, priorityRank } from "./vocabulary.js";
import { notify } from "./notices.js";
import { startPage } from "./shell.js";
import { drawMap } from "./map.js";
import {
  badge,
  exerciseBadge,
  incidentItem,
  incidentLine,
  legend,
  needsAttention,
  progressBar,
  requestTiming,
  requestTitle,
  severityBadge,
  webhookBanner,
} from "./views.js";

const FEED_LIMIT = 300;

startPage({
  hint: "Any aidmesh token opens the board: it shows the incidents your city can see (an admin token shows them all).",
  start: startBoard,
});

async function startBoard({ api, me, cities, main, connect }) {
  const book = new IncidentBook();
  let selected = Number(new URLSearchParams(location.hash.slice(1)).get("incident")) || null;

  const incidentList = h("ul", { class: "incident-list", id: "incident-list" });
  const head = h("div", { class: "incident-head", id: "incident-head" });
  const requestList = h("ul", { class: "request-list", id: "request-list" });
  const mapBox = h("div", { class: "map", id: "map" });
  const feedTitle = h("h2", { id: "feed-title" }, "Live feed");
  const feed = h("ol", { class: "feed", id: "feed", "aria-labelledby": "feed-title" });
  // A city's manager also sees its webhook endpoints that stopped delivering.
  const banner = me.role === "manager" ? webhookBanner(api, me.city_id) : null;
  main.append(
    banner?.el ?? "",
    h("div", { class: "board" },
      h("section", { class: "panel col-incidents", "aria-labelledby": "incidents-title" },
        h("h2", { id: "incidents-title" }, "Active incidents"),
        incidentList,
      ),
      h("section", { class: "panel col-detail", "aria-label": "Selected incident", tabindex: "0" },
        head,
        h("div", { class: "section-head" }, h("h2", {}, "Requests"), legend()),
        requestList,
      ),
      h("div", { class: "col-side" },
        h("section", { class: "panel", "aria-labelledby": "map-title" }, h("h2", { id: "map-title" }, "Map"), mapBox),
        h("section", { class: "panel feed-panel", "aria-labelledby": "feed-title", tabindex: "0" }, feedTitle, feed),
      ),
    ),
  );

  const render = throttled(() => {
    renderIncidents();
    renderSelected();
  });

  function entries() {
    return [...book.incidents.values()]
      .filter((e) => e.incident)
      .sort(
        (a, b) =>
          (a.incident.status === "closed") - (b.incident.status === "closed") ||
          String(b.incident.declared_at).localeCompare(String(a.incident.declared_at)),
      );
  }

  function select(id) {
    selected = id;
    history.replaceState(null, "", `#incident=${id}`);
    loadHistory(id);
    render();
  }

  function renderIncidents() {
    const list = entries();
    if (!list.length) {
      incidentList.replaceChildren(h("li", { class: "empty" }, "No active incidents. This board updates by itself."));
      return;
    }
    incidentList.querySelector(".empty")?.remove();
    syncList(
      incidentList,
      list,
      (e) => e.id,
      (e) => h("li", {}, h("button", { type: "button", class: "incident-item", dataset: { focus: "item" }, onclick: () => select(e.id) })),
      (li, e) => {
        const button = li.firstChild;
        const alerts = [...e.requests.values()].filter(needsAttention).length;
        li.dataset.incidentId = e.id;
        button.setAttribute("aria-pressed", String(e.id === selected));
        patch(button, JSON.stringify([e.incident, alerts]), () =>
          incidentItem(e.incident, cities, alerts ? badge(`${alerts} critical unclaimed`, "alert") : null),
        );
      },
    );
  }

  function renderSelected() {
    const entry = selected ? book.incidents.get(selected) : null;
    if (!entry?.incident) {
      head.replaceChildren(h("h2", {}, "No incident selected"), h("p", { class: "muted" }, "Choose an incident to see its requests."));
      requestList.replaceChildren();
      mapBox.replaceChildren();
      feed.replaceChildren();
      return;
    }
    const incident = entry.incident;
    patch(head, JSON.stringify(incident), () => [
      h("div", { class: "head-line" },
        h("h2", { id: "incident-title" }, incident.title),
        severityBadge(incident.severity),
        exerciseBadge(incident),
        incident.status === "closed" ? badge("Closed", "closed") : null,
      ),
      h("p", { class: "meta" }, incidentLine(incident, cities), h("span", {}, `#${incident.id}`)),
      incident.description ? h("p", { class: "description" }, incident.description) : null,
    ]);
    const requests = [...entry.requests.values()].sort(
      (a, b) => needsAttention(b) - needsAttention(a) || priorityRank(a.priority) - priorityRank(b.priority) || a.id - b.id,
    );
    if (!requests.length) requestList.replaceChildren(h("li", { class: "empty" }, "No requests raised yet."));
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
          patch(li, JSON.stringify([request, claims]), () => [
            requestTitle(request),
            needsAttention(request) ? h("p", { class: "attention-note" }, `Critical: ${request.remaining_quantity} still unclaimed`) : null,
            progressBar(entry, request),
            requestTiming(request),
          ]);
        },
      );
    }
    drawMapFor(entry);
    renderFeed(entry);
  }

  function drawMapFor(entry) {
    const reach = book.reach(entry.id);
    const claimers = new Map();
    for (const claim of entry.claims.values()) {
      if (isEndedClaim(claim)) continue;
      claimers.set(claim.city_id, (claimers.get(claim.city_id) || 0) + claim.quantity);
    }
    const signature = JSON.stringify([entry.id, [...reach], [...claimers]]);
    if (mapBox.dataset.sig === signature) return;
    mapBox.dataset.sig = signature;
    drawMap(mapBox, { cities, originId: entry.incident.city_id, reach, claimers });
  }

  function renderFeed(entry) {
    feedTitle.textContent = `Live feed · ${entry.incident.title}`;
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
          h("time", { class: "feed-time", datetime: event.occurred_at }, clockTime(event.occurred_at)),
          h("span", { class: "feed-type" }, typeLabel(event.type.replace(".", " "))),
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
      notify(`Could not load the event history: ${error.message}`);
    }
  }

  async function loadIncident(id) {
    try {
      if (!(await book.fetch(api, id))) return;
      if (!selected) select(id);
      render();
    } catch (error) {
      notify(`Could not load incident ${id}: ${error.message}`);
    }
  }

  // The snapshot, then the stream from its seqs on.
  const active = await fetchAll(api, "/incidents?status=active");
  await eachLimited(active, 6, async (incident) => book.load(await api(`/incidents/${incident.id}`)));
  if (!selected || !book.incidents.has(selected)) selected = entries()[0]?.id ?? null;
  connect({
    scopes: () => ["board"],
    since: () => book.since(),
    onEvent(event) {
      const known = book.incidents.get(event.incident_id)?.incident;
      book.apply(event);
      if (!known && !book.entry(event.incident_id).incident) loadIncident(event.incident_id);
      else if (!known) {
        // Declared just now: its whole history is this stream.
        book.entry(event.incident_id).history = event.seq === 1 ? "done" : "none";
        if (!selected) select(event.incident_id);
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

