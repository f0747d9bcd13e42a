// The manager console: declare an incident from a playbook, edit its severity, title and
// description, raise extra requests and edit them, accept or decline claims, cancel requests
// and close it.

import { h, keepTyped, patch, syncList, throttled } from "./dom.js";
import { eachLimited, fetchAll } from "./api.js";
import { IncidentBook } from "./store.js";
import {
  claimMoves,
  isEndedClaim,
  isFinalRequest,
  PRIORITIES,
  priorityRank,
  SEVERITIES,
} from "./vocabulary.js";
import { catalogue, cityName, inText, liveTime, placeOf, priorityLabel, reportToText, resourceLabel, severityLabel, statusLabel, typeLabel, unitsOf } from "./format.js";
import { t, tOr } from "./i18n.js";
import { askDetails, busy, confirmAction, notify } from "./notices.js";
import { startPage } from "./shell.js";
import { NoteThreads } from "./notes.js";
import { OfferPanel } from "./offers.js";
import { Alerts } from "./alerts.js";
import { dryRunView } from "./dryrun.js";
import { placeField, stagingPoints } from "./map.js";
import { sitrepPanel } from "./sitreps.js";
import { peopleSection } from "./people.js";
import { Outbox, describeOutbox, moveLabel, sendAction } from "./outbox.js";
import { tokensSection } from "./tokens.js";
import {
  answersBlock,
  badge,
  checklistsBlock,
  claimArrival,
  claimChip,
  exerciseBadge,
  incidentItem,
  incidentLine,
  journeyLine,
  legend,
  needsAttention,
  progressBar,
  requestTiming,
  requestTitle,
  severityBadge,
  webhookBanner,
} from "./views.js";

startPage({
  hint: t("manage.hint"),
  start: startConsole,
});

const CLOSED_PAGE = 10;

async function startConsole({ api, me, city, cities, main, connect }) {
  const book = new IncidentBook();
  /** The title a declaration gets when none is typed: "Nairobi flood". */
  const defaultTitle = (type) => t("manage.default_title", { city: city.name, type: inText(typeLabel(type)) });
  let selected = Number(new URLSearchParams(location.hash.slice(1)).get("incident")) || null;
  let live = null;
  let sitreps = null; // the selected incident's situation reports panel
  const playbooks = await api("/playbooks");

  const incidentList = h("ul", { class: "incident-list", id: "incident-list" });
  // The city's closed incidents are history: the newest few, older ones a page at a time.
  let closedNext = 0; // offset of the next page of closed incidents; null when none is left
  const closedMore = h("button", { type: "button", class: "secondary small", id: "closed-more", hidden: true, onclick: (e) => busy(e.currentTarget, loadClosed) }, t("manage.show_older"));
  const detail = h("div", { class: "manage-detail", id: "incident-detail" });
  const declareBox = h("details", { class: "declare", id: "declare" },
    h("summary", {}, t("manage.declare_summary")),
    declareForm(),
  );
  const banner = webhookBanner(api, me.city_id);
  const alerts = new Alerts({ me, cities, kinds: ["waiting", "lapse", "escalated"] });
  const people = peopleSection(api, me);
  // Accepting, declining and standing down claims, request and incident edits, closing,
  // cancelling, checklist ticks and notes go through the outbox (outbox.js): one key per
  // intended action, kept across reloads, sent in order.
  const outboxNote = h("p", { class: "outbox", id: "outbox", role: "status", hidden: true });
  const editAnswers = new Map(); // request id -> what its open edit form does with an answer
  const incidentEditAnswers = new Map(); // incident id -> the same, for its edit box
  const outbox = new Outbox({
    // Per person: a signed-in account's own, else the token's; never another person's.
    storageKey: `aidmesh.outbox.manage.${me.user_id ? `user-${me.user_id}` : me.token_id ?? `city-${me.city_id}`}`,
    send: (action) => sendAction({ live, api }, action),
    onAnswer: answered,
    onChange: () => render(),
  });
  const tokens = tokensSection(api);
  const offers = new OfferPanel({ api, me, cities });
  main.append(
    outboxNote,
    alerts.panel,
    banner.el,
    people.el,
    tokens.el,
    h("div", { class: "console manage" },
      h("section", { class: "panel col-incidents", "aria-labelledby": "mine-title" },
        h("h1", { id: "mine-title" }, t("manage.incidents_of", { city: city.name })),
        declareBox,
        incidentList,
        closedMore,
      ),
      h("section", { class: "panel col-main", "aria-label": t("board.selected_incident") }, detail),
    ),
  );

  const threads = new NoteThreads(api, () => render(), outbox);
  const render = throttled(() => {
    renderOutbox();
    renderIncidents();
    renderDetail();
  });

  const mine = () =>
    [...book.incidents.values()]
      .filter((e) => e.incident && e.incident.city_id === me.city_id)
      .sort(
        (a, b) =>
          (a.incident.status === "closed") - (b.incident.status === "closed") ||
          String(b.incident.declared_at).localeCompare(String(a.incident.declared_at)),
      );

  function renderOutbox() {
    const text = describeOutbox(outbox);
    outboxNote.hidden = !text;
    outboxNote.textContent = text ? `${text}: ${outbox.pending().map((a) => a.label).join("; ")}.` : "";
  }

  /** The move of this claim waiting in the outbox, if any: one at a time per claim. */
  function pendingMove(claimId) {
    return outbox.find((action) => action.kind === "move" && action.body.claim_id === claimId);
  }

  const pendingKeys = (claims) => claims.map((c) => pendingMove(c.id)?.key ?? null);

  /** The waiting action of `kind` whose body has `field` equal to `id`, if any. */
  const pendingOf = (kind, field, id) => outbox.find((a) => a.kind === kind && a.body[field] === id);

  /** The checklist ticks of this incident waiting in the outbox, oldest first. */
  const pendingTicks = (incidentId) => outbox.pending().filter((a) => a.kind === "tick" && a.body.incident_id === incidentId);

  function queueMove(claim, request, status, extra = {}) {
    if (pendingMove(claim.id)) return; // already on its way: the same intended move
    const what = request ? `${cityName(cities, claim.city_id)}, ${unitsOf(request.resource, claim.quantity)}` : cityName(cities, claim.city_id);
    outbox.add("move", { claim_id: claim.id, incident_id: claim.incident_id, status, extra }, moveLabel(claim, status, what));
  }

  const waitingNote = (action) => h("span", { class: "queued" }, t("manage.waiting_note", { label: action.label }));

  /** Keep an incident as an answer gave it, unless the page already has a newer one. */
  function keepIncident(incident) {
    const entry = book.entry(incident.id);
    if (incident.last_seq >= entry.lastSeq) entry.incident = { ...entry.incident, ...incident };
  }

  function answered(action, result, refusal) {
    const notDone = () => notify(t("outbox.not_done", { label: action.label, error: refusal.message || String(refusal) }));
    if (action.kind === "note") return threads.answered(book, action, result, refusal);
    if (action.kind === "incident-edit") {
      if (!refusal) {
        keepIncident(result);
        notify(t("manage.saved_incident", { title: result.title }), "ok");
      }
      const box = incidentEditAnswers.get(action.body.incident_id);
      if (box) box(action, refusal);
      else if (refusal) notify(t("outbox.not_saved", { label: action.label, error: refusal.message || String(refusal) }));
    } else if (action.kind === "close") {
      if (refusal) notDone();
      else keepIncident(result);
    } else if (action.kind === "cancel") {
      if (refusal) notDone();
      else {
        const entry = book.entry(result.incident_id);
        const known = entry.requests.get(result.id);
        if (!known || String(known.updated_at) <= String(result.updated_at)) entry.requests.set(result.id, result);
      }
    } else if (action.kind === "tick") {
      if (refusal) notDone();
      else {
        const entry = book.entry(action.body.incident_id);
        entry.incident = { ...entry.incident, checklists: result };
      }
    } else if (action.kind === "move") {
      if (refusal) notify(t("outbox.not_done", { label: action.label, error: refusal.message }));
      else if (result?.incident_id) {
        const entry = book.entry(result.incident_id);
        const known = entry.claims.get(result.id);
        if (!known || String(known.updated_at) <= String(result.updated_at)) entry.claims.set(result.id, result);
      }
    } else if (action.kind === "request-edit") {
      const form = editAnswers.get(action.body.request_id);
      if (!refusal) {
        const entry = book.entry(result.incident_id);
        const known = entry.requests.get(result.id);
        // The event brings the same request; until it arrives, show what was saved.
        if (!known || String(known.updated_at) <= String(result.updated_at)) entry.requests.set(result.id, result);
        notify(t("manage.saved_request", { resource: inText(resourceLabel(result.resource)), id: result.id }), "ok");
      }
      if (form) form(action, refusal);
      else if (refusal) notify(t("outbox.not_saved", { label: action.label, error: refusal.message || String(refusal) }));
    }
    render();
  }

  function select(id) {
    selected = id;
    history.replaceState(null, "", `#incident=${id}`);
    render();
    refreshHelpers();
    const entry = book.incidents.get(id);
    if (!entry?.incident || entry.partial) openIncident(id);
  }

  /** Load an incident in full: a closed one listed from its summary, or one named by the address. */
  async function openIncident(id) {
    try {
      await book.fetch(api, id);
      book.entry(id).partial = false;
    } catch (error) {
      notify(t("board.load_incident_failed", { id, error: error.message }));
    }
    render();
  }

  async function loadClosed() {
    if (closedNext === null) return;
    const page = await api(`/incidents?status=closed&city_id=${me.city_id}&limit=${CLOSED_PAGE}&offset=${closedNext}`);
    for (const incident of page.data) {
      const entry = book.entry(incident.id);
      if (entry.incident) continue;
      entry.incident = incident;
      entry.partial = true; // its requests and claims are read when it is opened
    }
    closedNext = page.next_offset ?? null;
    render();
  }

  // Declaring ----------------------------------------------------------------------

  function declareForm() {
    const type = h("select", { id: "declare-playbook", name: "playbook", required: true },
      playbooks.map((p) => h("option", { value: p.incident_type }, t("manage.playbook_option", { type: typeLabel(p.incident_type), title: p.title }))),
    );
    const title = h("input", { id: "declare-title", name: "title", required: true, maxlength: 200, autocomplete: "off" });
    const severity = h("select", { id: "declare-severity", name: "severity" },
      SEVERITIES.map((s) => h("option", { value: s }, severityLabel(s))),
    );
    const description = h("textarea", { id: "declare-description", name: "description", rows: 2, maxlength: 5000 });
    const exercise = h("input", { id: "declare-exercise", name: "exercise", type: "checkbox" });
    const where = placeField({
      idPrefix: "declare",
      legend: t("manage.where_optional"),
      hint: t("manage.where_hint", { city: city.name }),
      cities,
      center: city,
      kind: "incident",
    });
    const preview = h("div", { class: "preview", id: "playbook-preview", "aria-live": "polite" });
    const submit = h("button", { type: "submit", class: "primary" }, t("manage.declare"));
    const dryRun = h("div", { class: "preview", id: "dry-run", "aria-live": "polite" });
    const previewButton = h("button", { type: "button", class: "secondary", id: "declare-preview" }, t("manage.preview"));
    previewButton.addEventListener("click", () =>
      busy(previewButton, async () => {
        const run = await api("/incidents/dry-run", { method: "POST", body: declaration() });
        dryRun.replaceChildren(dryRunView(run));
      }),
    );
    /** The playbook's requests as chosen: null when every one is raised as written. */
    function chosenRequests() {
      const items = [...preview.querySelectorAll("li.choice")];
      const chosen = items
        .filter((li) => li.querySelector(".choice-raise").checked)
        .map((li) => ({
          index: Number(li.dataset.index),
          quantity: Number(li.querySelector(".choice-quantity").value),
          priority: li.querySelector(".choice-priority").value,
        }));
      const asWritten =
        chosen.length === items.length &&
        chosen.every((c, i) => c.quantity === Number(items[i].dataset.quantity) && c.priority === items[i].dataset.priority);
      return asWritten ? null : chosen;
    }
    function declaration() {
      const chosen = chosenRequests();
      const place = where.value();
      return {
        ...(chosen ? { playbook_requests: chosen } : {}),
        ...(place ? { lat: place.lat, lon: place.lon } : {}),
        incident_type: type.value,
        playbook: type.value,
        title: title.value.trim() || defaultTitle(type.value),
        severity: severity.value,
        description: description.value.trim(),
        exercise: exercise.checked,
      };
    }
    let titleTouched = false;
    title.addEventListener("input", () => (titleTouched = true));

    async function showPreview() {
      const chosen = type.value;
      if (!titleTouched) title.value = defaultTitle(chosen);
      preview.replaceChildren(h("p", { class: "muted" }, t("manage.loading_playbook")));
      try {
        const { playbook, origin } = await api(`/playbooks/${encodeURIComponent(chosen)}`);
        if (type.value !== chosen) return;
        severity.value = playbook.default_severity;
        preview.replaceChildren(
          h("h3", {}, t("manage.it_raises", { count: playbook.requests.length }), origin === "city" ? badge(t("manage.own_playbook", { city: city.name }), "exercise") : null),
          h("p", { class: "fine" }, t("manage.untick")),
          h("ul", { class: "preview-list", id: "playbook-requests" },
            playbook.requests.map((r, index) => {
              const label = resourceLabel(r.resource);
              return h("li", { class: "choice", dataset: { index, quantity: r.quantity, priority: r.priority } },
                h("input", { type: "checkbox", class: "choice-raise", checked: true, "aria-label": t("manage.raise_label", { resource: label }) }),
                h("select", { class: "choice-priority", "aria-label": t("manage.priority_of", { resource: label }) },
                  PRIORITIES.map((p) => h("option", { value: p, selected: p === r.priority }, priorityLabel(p))),
                ),
                h("input", { type: "number", class: "choice-quantity", min: 1, max: 10000, value: r.quantity, required: true, inputmode: "numeric", "aria-label": t("manage.units_of", { resource: label }) }),
                h("span", { class: "resource" }, `${unitsOf(r.resource, r.quantity).replace(/^[0-9]+ /, "")} · ${label}`),
                h("span", { class: "muted" }, t("manage.within", { span: r.needed_within })),
              );
            }),
          ),
          h("p", { class: "fine" },
            t("manage.escalation", {
              km: playbook.escalation.ring0_radius_km,
              intervals: playbook.escalation.ring_intervals.join(t("manage.then")),
              timeout: playbook.claim_acceptance_timeout,
            })),
        );
      } catch (error) {
        preview.replaceChildren(h("p", { class: "form-error" }, error.message));
      }
    }
    type.addEventListener("change", showPreview);
    const form = h("form", { class: "stack", id: "declare-form" },
      field(t("manage.playbook"), type),
      h("div", { class: "row" }, field(t("manage.title"), title, "grow"), field(t("manage.severity"), severity)),
      field(t("manage.what_optional"), description),
      where.element,
      h("div", { class: "check" }, exercise, h("label", { for: "declare-exercise" }, t("manage.exercise"))),
      preview,
      dryRun,
      h("div", { class: "actions" }, submit, previewButton),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(submit, async () => {
        const created = await api("/incidents", {
          method: "POST",
          body: { ...declaration(), title: title.value.trim() },
        });
        if (created.last_seq >= book.entry(created.id).lastSeq) book.load(created);
        notify(t("manage.declared", { title: created.title, count: created.requests.length }), "ok");
        titleTouched = false;
        description.value = "";
        exercise.checked = false;
        where.set(null);
        dryRun.replaceChildren();
        declareBox.open = false;
        select(created.id);
      });
    });
    queueMicrotask(showPreview);
    return form;
  }

  // Incidents and their requests ---------------------------------------------------

  function renderIncidents() {
    closedMore.hidden = closedNext === null;
    const list = mine();
    if (!list.length) {
      incidentList.replaceChildren(h("li", { class: "empty" }, t("manage.no_incidents")));
      return;
    }
    incidentList.querySelector(".empty")?.remove();
    syncList(
      incidentList,
      list,
      (e) => e.id,
      (e) => h("li", {}, h("button", { type: "button", class: "incident-item", dataset: { focus: "item" }, onclick: () => select(e.id) })),
      (li, e) => {
        const waiting = [...e.claims.values()].filter((c) => c.status === "claimed").length;
        li.dataset.incidentId = e.id;
        li.firstChild.setAttribute("aria-pressed", String(e.id === selected));
        patch(li.firstChild, JSON.stringify([e.incident, waiting]), () =>
          incidentItem(e.incident, cities, waiting ? badge(t("manage.to_accept", { count: waiting }), "waiting") : null),
        );
      },
    );
  }

  // Who could help: each open request's lenders from the rosters of the cities it targets,
  // read again after the incident's events (and every 15 s: other incidents' claims use
  // the same packages).
  const helpers = new Map();
  let helpersFor = null;
  let helpersTimer = null;
  async function loadHelpers() {
    const incidentId = selected;
    if (!incidentId || book.incidents.get(incidentId)?.incident?.city_id !== me.city_id) return;
    try {
      const page = await api(`/incidents/${incidentId}/matches?limit=500`);
      if (incidentId !== selected) return;
      helpers.clear();
      for (const found of page.data) helpers.set(found.request_id, found);
      helpersFor = incidentId;
      render();
    } catch (error) {
      if (!error.transport) notify(t("manage.helpers_failed", { error: error.message }));
    }
  }
  function refreshHelpers() {
    clearTimeout(helpersTimer);
    helpersTimer = setTimeout(loadHelpers, 300);
  }
  setInterval(loadHelpers, 15_000);

  function whoCouldHelp(request) {
    const found = helpersFor === selected ? helpers.get(request.id) : null;
    if (!found || isFinalRequest(request) || request.remaining_quantity < 1) return null;
    return h("div", { class: "who-could-help", dataset: { requestId: request.id } },
      h("p", { class: "label" }, t("manage.who_could_help")),
      found.lenders.length
        ? h("ul", { class: "lenders" },
            found.lenders.slice(0, 5).map((x) => h("li", { dataset: { cityId: x.city_id, packageId: x.package_id } },
              h("strong", {}, cityName(cities, x.city_id)),
              ` · ${t("manage.lender", { package: x.package_name, units: unitsOf(request.resource, x.remaining_quantity), hours: x.readiness_hours, km: x.distance_km })}`,
              x.reached ? "" : ` · ${t("manage.not_reached", { ring: x.ring })}`,
            )),
          )
        : h("p", { class: "muted small" }, t("manage.no_lenders")),
    );
  }

  function renderDetail() {
    const entry = selected ? book.incidents.get(selected) : null;
    if (!entry?.incident || entry.incident.city_id !== me.city_id) {
      detail.dataset.incident = "";
      detail.replaceChildren(
        h("h2", {}, t("board.none_selected")),
        h("p", { class: "muted" }, t("manage.choose_incident")),
      );
      return;
    }
    if (detail.dataset.incident !== String(entry.id)) {
      detail.dataset.incident = entry.id;
      detail.dataset.sig = "";
      detail.replaceChildren(
        h("div", { class: "incident-head" }),
        editBox(entry.id),
        h("section", { class: "to-accept", id: "to-accept", "aria-live": "polite" }),
        h("div", { class: "checklists-box" }),
        h("div", { class: "section-head" }, h("h3", {}, t("board.requests")), legend()),
        h("ul", { class: "request-list manage-requests" }),
        h("details", { class: "raise" }, h("summary", {}, t("manage.raise_another")), raiseForm(entry.id)),
      );
      sitreps = sitrepPanel(api, entry.incident);
      detail.append(offers.el, sitreps.el);
      offers.show(entry.incident).catch((error) => notify(t("offers.read_failed", { error: error.message })));
      sitreps.refresh();
    }
    const incident = entry.incident;
    const [head, edit, queue, checks, , list, raiseBox] = detail.children;
    const ticks = pendingTicks(incident.id);
    patch(checks, JSON.stringify([incident.checklists, incident.status, ticks.map((a) => a.key)]), () =>
      checklistsBlock(
        incident,
        cities,
        incident.status === "active" ? (c, i, done) => queueTick(incident, c, i, done) : null,
        (c, i) => ticks.findLast((a) => a.body.checklist === c && a.body.item === i) ?? null,
      ),
    );
    raiseBox.hidden = incident.status !== "active";
    edit.hidden = incident.status !== "active";
    if (!edit.open) edit.fill(incident);
    edit.showWaiting();
    const closing = pendingOf("close", "incident_id", incident.id);
    patch(head, JSON.stringify([incident, closing?.key ?? null]), () => [
      h("div", { class: "head-line" },
        h("h2", { id: "incident-title" }, incident.title),
        severityBadge(incident.severity),
        exerciseBadge(incident),
        incident.status === "closed" ? badge(statusLabel("closed"), "closed") : null,
        closing
          ? h("span", { class: "push", id: "close-waiting" }, waitingNote(closing))
          : incident.status === "active"
            ? h("button", { type: "button", class: "danger-outline push", id: "close-incident", dataset: { focus: "close" }, onclick: () => closeIncident(incident) }, t("manage.close_incident"))
            : null,
      ),
      h("p", { class: "meta" }, incidentLine(incident, cities), h("span", {}, `#${incident.id}`), incident.playbook ? h("span", {}, t("manage.playbook_name", { name: incident.playbook })) : null),
      incident.description ? h("p", { class: "description", id: "incident-description" }, incident.description) : null,
      h("p", { class: "fine" }, h("a", { href: `/board#incident=${incident.id}` }, t("manage.open_on_board"))),
    ]);
    renderQueue(queue, entry);
    const requests = [...entry.requests.values()].sort(
      (a, b) => isFinalRequest(a) - isFinalRequest(b) || needsAttention(b) - needsAttention(a) || priorityRank(a.priority) - priorityRank(b.priority) || a.id - b.id,
    );
    if (!requests.length) list.replaceChildren(h("li", { class: "empty" }, t("manage.no_requests")));
    else {
      list.querySelector(".empty")?.remove();
      // The card is redrawn as events arrive; the edit form beside it is not, so what is
      // being typed into it survives them.
      syncList(list, requests, (r) => r.id, (r) => h("li", { class: "request" }, h("div", { class: "request-card" }), requestEditBox(r.id)), (li, request) => {
        const claims = [...entry.claims.values()].filter((c) => c.request_id === request.id);
        const [card, edit] = li.children;
        li.dataset.requestId = request.id;
        li.classList.toggle("attention", needsAttention(request));
        li.classList.toggle("final", isFinalRequest(request));
        edit.hidden = incident.status !== "active" || isFinalRequest(request);
        if (!edit.open) edit.fill(request);
        const found = helpersFor === selected ? helpers.get(request.id) : null;
        const cancelling = pendingOf("cancel", "request_id", request.id);
        patch(card, JSON.stringify([request, claims, pendingKeys(claims), cancelling?.key ?? null, incident.status, found, threads.signature(entry, request.id)]), () => requestCard(entry, request, claims, cancelling));
      });
    }
  }

  /** Claims waiting for this manager's decision, oldest first: the console's to-do list. */
  function renderQueue(queue, entry) {
    const waiting = [...entry.claims.values()]
      .filter((c) => c.status === "claimed")
      .sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
    queue.hidden = entry.incident.status !== "active" || waiting.length === 0;
    const place = placeOf(cities, entry.incident.city_id);
    patch(queue, JSON.stringify([waiting, pendingKeys(waiting)]), () => [
      h("h3", {}, t("manage.waiting_decision", { count: waiting.length })),
      h("ul", { class: "queue" },
        waiting.map((claim) => {
          const request = entry.requests.get(claim.request_id);
          const resource = request ? resourceLabel(request.resource) : t("feed.on_request", { id: claim.request_id });
          return h("li", { dataset: { claimId: claim.id } },
            h("span", { class: "queue-what" },
              h("strong", {}, cityName(cities, claim.city_id)),
              ` · ${t("manage.units_of_resource", { units: request ? unitsOf(request.resource, claim.quantity) : claim.quantity, resource })}`,
            ),
            h("span", { class: "queue-when" }, t("manage.claimed"), " ", liveTime(claim.created_at, "ago", "", place),
              claim.expires_at ? [` · ${t("manage.lapses")} `, liveTime(claim.expires_at, "until", "", place)] : null),
            pendingMove(claim.id)
              ? h("span", { class: "row-actions" }, waitingNote(pendingMove(claim.id)))
              : h("span", { class: "row-actions" },
                  h("button", { type: "button", class: "primary small", dataset: { focus: `q-accept-${claim.id}` }, onclick: () => queueMove(claim, request, "accepted") }, t("manage.accept")),
                  h("button", { type: "button", class: "secondary small", dataset: { focus: `q-decline-${claim.id}` }, onclick: () => declineClaim(request, claim, t("manage.decline")) }, t("manage.decline")),
                ),
          );
        }),
      ),
    ]);
  }

  function requestCard(entry, request, claims, cancelling) {
    const active = entry.incident.status === "active";
    const shown = claims.filter((c) => !isEndedClaim(c)).concat(claims.filter(isEndedClaim)).slice(0, 12);
    const cancel =
      cancelling ? h("span", { class: "push cancel-waiting" }, waitingNote(cancelling))
      : active && !isFinalRequest(request)
        ? h("button", { type: "button", class: "secondary small push", dataset: { focus: "cancel" }, onclick: () => cancelRequest(request) }, t("manage.cancel_request"))
        : null;
    const timing = requestTiming(request, placeOf(cities, entry.incident.city_id));
    if (cancel) timing.append(cancel);
    return [
      requestTitle(request),
      progressBar(entry, request),
      answersBlock(entry, request, cities),
      whoCouldHelp(request),
      timing,
      reportToText(request) ? h("p", { class: "detail report-to" }, h("span", { class: "label" }, `${t("manage.report_to")} `), reportToText(request)) : null,
      shown.length
        ? h("table", { class: "claims-table" },
            h("caption", { class: "visually-hidden" }, t("manage.claims_on", { resource: resourceLabel(request.resource) })),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("manage.col.city")), h("th", { scope: "col" }, t("manage.units")), h("th", { scope: "col" }, t("manage.col.status")), h("th", { scope: "col" }, t("manage.col.arrival")), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("manage.col.actions"))))),
            h("tbody", {}, shown.map((claim) => claimRow(request, claim, active))),
          )
        : h("p", { class: "muted small" }, t("manage.no_claims")),
      threads.view(entry, request, cities, { writable: active, claims }),
    ];
  }

  function claimRow(request, claim, active) {
    const buttons = [];
    const moves = claimMoves(request.kind, claim.status, "requester");
    const queued = pendingMove(claim.id);
    if (queued) buttons.push(waitingNote(queued));
    else if (active && moves.includes("accepted")) {
      buttons.push(h("button", { type: "button", class: "primary small", dataset: { focus: `accept-${claim.id}` }, onclick: () => queueMove(claim, request, "accepted") }, t("manage.accept")));
    }
    if (!queued && active && moves.includes("declined")) {
      const label = claim.status === "claimed" ? t("manage.decline") : t("manage.stand_down");
      buttons.push(h("button", { type: "button", class: "secondary small", dataset: { focus: `decline-${claim.id}` }, onclick: () => declineClaim(request, claim, label) }, label));
    }
    return h("tr", { dataset: { claimId: claim.id, status: claim.status } },
      h("td", {}, cityName(cities, claim.city_id)),
      h("td", {}, String(claim.quantity)),
      h("td", {}, claimChip(request, claim)),
      h("td", { class: "claim-arrival" }, claimArrival(claim), " ", journeyLine(claim), claim.end_reason ? h("span", { class: "end-reason" }, claim.end_reason) : null),
      h("td", { class: "row-actions" }, buttons),
    );
  }

  /**
   * A place to edit in a box that opens and closes (`box`): its field and map are made
   * only once the box is first opened (a console with many boxes does not draw a hidden
   * map for each on every event), then kept with the box's other fields: set again as the
   * box closes, and as it opens only when the place changed meanwhile. `placeOf(thing)`
   * is the {lat, lon} it has (or null), `centerOf(thing)` what to centre the map on.
   */
  function boxedPlace(box, slot, { idPrefix, legend, kind, placeOf, centerOf }) {
    let place = null; // the field, once made
    const show = (thing) => {
      place ??= placeField({ idPrefix, legend, cities, center: centerOf(thing), kind });
      if (place.element.parentNode !== slot) slot.replaceChildren(place.element);
      place.set(placeOf(thing), centerOf(thing));
    };
    const changed = (thing) => {
      let shown;
      try {
        shown = place.value();
      } catch {
        return true;
      }
      const wanted = placeOf(thing);
      return (shown?.lat ?? null) !== (wanted?.lat ?? null) || (shown?.lon ?? null) !== (wanted?.lon ?? null);
    };
    return {
      /** Called by the box's toggle handler with what the box edits, as it is now. */
      toggled(thing) {
        if (!box.open) {
          if (place) show(thing);
        } else if (!place || changed(thing)) {
          show(thing);
        }
      },
      /** The place given ({lat, lon} or null), undefined before the box was opened; throws
       * a message when only one coordinate is given. */
      value() {
        return place ? place.value() : undefined;
      },
    };
  }

  /**
   * "Edit": severity, title, description and location of the selected incident. The fields show the
   * incident as it is whenever the form is opened; only the fields changed are sent.
   */
  function editBox(incidentId) {
    const severity = h("select", { id: "edit-severity", name: "severity" },
      SEVERITIES.map((s) => h("option", { value: s }, severityLabel(s))),
    );
    const title = h("input", { id: "edit-title", name: "title", required: true, maxlength: 200, autocomplete: "off" });
    const description = h("textarea", { id: "edit-description", name: "description", rows: 3, maxlength: 5000 });
    const error = h("p", { class: "form-error", id: "edit-error", role: "alert" });
    const queuedNote = h("p", { class: "queued", id: "edit-queued", role: "status" });
    const submit = h("button", { type: "submit", class: "primary", id: "edit-save" }, t("manage.save_changes"));
    const whereSlot = h("div", { class: "edit-where" });
    const form = h("form", { class: "stack", id: "edit-form" },
      h("div", { class: "row" }, field(t("manage.title"), title, "grow"), field(t("manage.severity"), severity)),
      field(t("manage.what"), description),
      whereSlot,
      h("p", { class: "fine" }, t("manage.edit_fine")),
      error,
      submit,
    );
    const box = h("details", { class: "edit", id: "edit-incident" }, h("summary", {}, t("manage.edit")), form, queuedNote);
    const current = () => book.entry(incidentId).incident;
    // Drawn from the outbox on every render, so a box drawn again while its edit waits says so.
    box.showWaiting = () => {
      queuedNote.textContent = pendingOf("incident-edit", "incident_id", incidentId) ? t("manage.edit_waiting") : "";
    };
    incidentEditAnswers.set(incidentId, (action, refusal) => {
      if (!refusal) box.open = false;
      else if (box.open) error.textContent = t("manage.not_saved", { error: refusal.message || String(refusal) });
      else notify(t("outbox.not_saved", { label: action.label, error: refusal.message || String(refusal) }));
    });
    box.fill = (incident) => {
      severity.value = incident.severity;
      title.value = incident.title;
      description.value = incident.description;
      error.textContent = "";
    };
    const where = boxedPlace(box, whereSlot, {
      idPrefix: "edit",
      legend: t("manage.edit_where"),
      kind: "incident",
      placeOf: (incident) => ({ lat: incident.lat, lon: incident.lon }),
      centerOf: (incident) => incident,
    });
    // Filled while closed (on every render, and as it closes), never as it opens: what is
    // typed the moment it opens is not written over.
    box.addEventListener("toggle", () => {
      if (!box.open) box.fill(current());
      where.toggled(current());
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const incident = current();
      const asked = { severity: severity.value, title: title.value.trim(), description: description.value.trim() };
      const body = Object.fromEntries(Object.entries(asked).filter(([name, value]) => value !== incident[name]));
      let point;
      try {
        point = where.value();
      } catch (failure) {
        error.textContent = failure.message;
        return;
      }
      // An incident always has a place: cleared fields keep the one it has.
      if (point && (point.lat !== incident.lat || point.lon !== incident.lon)) {
        Object.assign(body, { lat: point.lat, lon: point.lon });
      }
      if (!asked.title) {
        error.textContent = t("manage.give_title");
        title.focus();
        return;
      }
      if (!Object.keys(body).length) {
        error.textContent = t("manage.nothing_incident");
        return;
      }
      error.textContent = "";
      // On its way: answered at once when the link is up, else when it returns.
      outbox.add("incident-edit", { incident_id: incidentId, changes: body }, t("manage.action_incident_edit", { title: incident.title }));
      box.showWaiting();
    });
    return box;
  }

  /**
   * "Edit request": units (never fewer than are claimed), priority, needed by and report to.
   * The fields show the request as it is whenever the form is opened; only what changed is sent.
   */
  function requestEditBox(requestId) {
    const id = (name) => `req-${requestId}-${name}`;
    const quantity = h("input", { id: id("quantity"), class: "edit-quantity", type: "number", min: 1, max: 10000, required: true, inputmode: "numeric" });
    const priority = h("select", { id: id("priority"), class: "edit-priority" }, PRIORITIES.map((p) => h("option", { value: p }, priorityLabel(p))));
    const neededBy = h("input", { id: id("needed-by"), class: "edit-needed-by", type: "datetime-local" });
    const reportTo = h("input", { id: id("report-to"), class: "edit-report-to", maxlength: 500, autocomplete: "off" });
    const stagingSlot = h("div", { class: "edit-staging" });
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || t("manage.local_time");
    const floor = h("p", { class: "fine edit-floor" });
    const error = h("p", { class: "form-error edit-error", role: "alert" });
    const queuedNote = h("p", { class: "queued edit-queued", role: "status" });
    // Drawn from the outbox, so a box drawn again while its edit waits still says so.
    if (outbox.find((a) => a.kind === "request-edit" && a.body.request_id === requestId)) {
      queuedNote.textContent = t("manage.edit_waiting");
    }
    const submit = h("button", { type: "submit", class: "primary small edit-save" }, t("manage.save_request"));
    const form = h("form", { class: "stack request-edit-form" },
      h("div", { class: "row" },
        field(t("manage.units"), quantity),
        field(t("manage.priority"), priority),
        field(t("manage.needed_by", { zone }), neededBy),
      ),
      field(t("manage.report_to"), reportTo),
      stagingSlot,
      floor,
      error,
      submit,
    );
    const box = h("details", { class: "edit request-edit" }, h("summary", {}, t("manage.edit_request")), form, queuedNote);
    const current = () => {
      for (const entry of book.incidents.values()) {
        if (entry.requests.has(requestId)) return entry.requests.get(requestId);
      }
      return null;
    };
    box.fill = (request) => {
      quantity.value = request.quantity;
      quantity.min = Math.max(1, request.claimed_quantity);
      priority.value = request.priority;
      neededBy.value = request.needed_by ? localInput(request.needed_by) : "";
      reportTo.value = request.report_to;
      floor.textContent = request.claimed_quantity
        ? t("manage.floor", { units: unitsOf(request.resource, request.claimed_quantity) })
        : "";
      error.textContent = "";
    };
    const staging = boxedPlace(box, stagingSlot, {
      idPrefix: id("report"),
      legend: t("manage.staging_legend"),
      kind: "staging",
      placeOf: (request) => (request.report_lat == null ? null : { lat: request.report_lat, lon: request.report_lon }),
      centerOf: (request) => book.entry(request.incident_id).incident ?? city,
    });
    // Filled while closed (on every render, and as it closes), never as it opens: what is
    // typed the moment it opens is not written over.
    box.addEventListener("toggle", () => {
      const request = current();
      if (!request) return;
      if (!box.open) box.fill(request);
      staging.toggled(request);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const request = current();
      const body = {};
      const units = Number(quantity.value);
      if (!Number.isInteger(units) || units < 1) {
        error.textContent = t("manage.units_whole");
        return quantity.focus();
      }
      if (units !== request.quantity) body.quantity = units;
      if (priority.value !== request.priority) body.priority = priority.value;
      if (reportTo.value.trim() !== request.report_to) body.report_to = reportTo.value.trim();
      let point;
      try {
        point = staging.value();
      } catch (failure) {
        error.textContent = failure.message;
        return;
      }
      const moved = (point?.lat ?? null) !== request.report_lat || (point?.lon ?? null) !== request.report_lon;
      if (point !== undefined && moved) {
        Object.assign(body, { report_lat: point?.lat ?? null, report_lon: point?.lon ?? null });
      }
      if (neededBy.value && neededBy.value !== (request.needed_by ? localInput(request.needed_by) : "")) {
        // The browser's local time, sent with its zone (as UTC).
        body.needed_by = new Date(neededBy.value).toISOString();
      }
      if (!Object.keys(body).length) {
        error.textContent = t("manage.nothing_request");
        return;
      }
      error.textContent = "";
      const what = Object.keys(body).map((k) => t(`manage.edit_field.${k}`)).join(", ");
      const action = outbox.add("request-edit", { request_id: requestId, changes: body }, t("manage.edit_label", { what, id: requestId }));
      // On its way: answered at once when the link is up, else when it returns.
      if (outbox.find((a) => a.key === action.key)) {
        queuedNote.textContent = t("manage.edit_waiting");
      }
    });
    editAnswers.set(requestId, (action, refusal) => {
      queuedNote.textContent = "";
      if (!refusal) box.open = false;
      else if (box.open) error.textContent = t("manage.not_saved", { error: refusal.message || String(refusal) });
      else notify(t("outbox.not_saved", { label: action.label, error: refusal.message || String(refusal) }));
    });
    return box;
  }

  function raiseForm(incidentId) {
    const groups = {};
    for (const resource of catalogue.values()) (groups[resource.kind] ||= []).push(resource);
    const resource = h("select", { id: "raise-resource", required: true },
      Object.entries(groups).map(([kind, items]) =>
        h("optgroup", { label: t(`request_kind.${kind}`) },
          items.map((r) => h("option", { value: r.id, title: r.description }, t("manage.per_unit", { resource: resourceLabel(r.id), unit: tOr(`unit_name.${r.unit}`, r.unit) }))),
        ),
      ),
    );
    const describe = h("p", { class: "fine", id: "raise-description" });
    const showDescription = () => (describe.textContent = catalogue.get(resource.value)?.description ?? "");
    resource.addEventListener("change", showDescription);
    showDescription();
    const quantity = h("input", { id: "raise-quantity", type: "number", min: 1, max: 10000, value: 1, required: true, inputmode: "numeric", dataset: { keep: "q" }, oninput: keepTyped });
    const priority = h("select", { id: "raise-priority" }, PRIORITIES.map((p) => h("option", { value: p, selected: p === "normal" }, priorityLabel(p))));
    const within = h("input", { id: "raise-within", type: "number", min: 1, max: 720, placeholder: t("manage.hours"), inputmode: "numeric" });
    const reportTo = h("input", { id: "raise-report-to", maxlength: 500, autocomplete: "off" });
    const incident = book.entry(incidentId).incident;
    const staging = placeField({
      idPrefix: "raise-report",
      legend: t("manage.staging_legend_optional"),
      hint: t("manage.staging_hint"),
      cities,
      center: incident ?? city,
      points: () => stagingPoints([...book.entry(incidentId).requests.values()]),
    });
    const notes = h("textarea", { id: "raise-notes", rows: 2, maxlength: 2000 });
    const submit = h("button", { type: "submit", class: "primary" }, t("manage.raise_request"));
    const form = h("form", { class: "stack", id: "raise-form" },
      field(t("manage.resource"), resource),
      describe,
      h("div", { class: "row" }, field(t("manage.units"), quantity), field(t("manage.priority"), priority), field(t("manage.needed_within"), within)),
      field(t("manage.report_to"), reportTo),
      staging.element,
      field(t("notes.title"), notes),
      submit,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(submit, async () => {
        const body = {
          resource: resource.value,
          quantity: Number(quantity.value),
          priority: priority.value,
          report_to: reportTo.value.trim(),
          notes: notes.value.trim(),
        };
        const point = staging.value();
        if (point) Object.assign(body, { report_lat: point.lat, report_lon: point.lon });
        if (within.value) body.needed_by = new Date(Date.now() + Number(within.value) * 3_600_000).toISOString();
        const request = await api(`/incidents/${incidentId}/requests`, { method: "POST", body });
        book.entry(incidentId).requests.set(request.id, request);
        notify(t("manage.raised", { units: unitsOf(request.resource, request.quantity), resource: inText(resourceLabel(request.resource)) }), "ok");
        form.reset();
        staging.set(null);
        showDescription();
        render();
      });
    });
    return form;
  }

  // Commands ------------------------------------------------------------------------

  /** Decline or stand down a claim, saying why: the responding city sees the reason. */
  async function declineClaim(request, claim, label) {
    const asked = await askDetails(
      t("manage.decline_question", { action: label, city: cityName(cities, claim.city_id), units: unitsOf(request.resource, claim.quantity) }),
      label,
      [["reason", t("manage.why", { city: cityName(cities, claim.city_id) }), { tag: "textarea", rows: 2, maxlength: 500, required: true }]],
      t("manage.decline_detail"),
    );
    if (asked) queueMove(claim, request, "declined", asked);
  }

  /** Tick or untick one checklist item: the box shows the state asked for while it waits. */
  function queueTick(incident, checklist, item, done) {
    const text = incident.checklists?.[checklist]?.items?.[item]?.text ?? "";
    const label = t(done ? "manage.action_tick" : "manage.action_untick", { item: text });
    outbox.add("tick", { incident_id: incident.id, checklist, item, done }, label);
  }

  async function cancelRequest(request) {
    const units = unitsOf(request.resource, request.quantity);
    const resource = inText(resourceLabel(request.resource));
    const ok = await confirmAction(
      t("manage.cancel_question", { units, resource }),
      t("manage.cancel_request"),
      t("manage.cancel_detail"),
    );
    if (!ok || pendingOf("cancel", "request_id", request.id)) return; // one intended cancel
    outbox.add("cancel", { request_id: request.id }, t("manage.action_cancel", { units, resource, id: request.id }));
  }

  async function closeIncident(incident) {
    const ok = await confirmAction(
      t("manage.close_question", { title: incident.title }),
      t("manage.close_incident"),
      t("manage.close_detail"),
    );
    if (!ok || pendingOf("close", "incident_id", incident.id)) return; // one intended close
    outbox.add("close", { incident_id: incident.id }, t("manage.action_close", { title: incident.title }));
  }

  async function loadIncident(id) {
    try {
      if (await book.fetch(api, id)) render();
    } catch (error) {
      notify(t("board.load_incident_failed", { id, error: error.message }));
    }
  }

  // Every incident the city can see gets its seq, so a resume replays only what is new;
  // only the city's own are shown, and loaded in full.
  const active = await fetchAll(api, "/incidents?status=active");
  if (!active.some((incident) => incident.city_id === me.city_id)) declareBox.open = true;
  for (const incident of active) {
    const entry = book.entry(incident.id);
    entry.incident = incident;
    entry.lastSeq = incident.last_seq;
  }
  const own = active.filter((incident) => incident.city_id === me.city_id);
  await eachLimited(own, 6, async (incident) => book.load(await api(`/incidents/${incident.id}`)));
  await loadClosed();
  // The address names an incident: that one, closed or not.
  if (selected && (!book.incidents.get(selected)?.incident || book.incidents.get(selected).partial)) {
    await openIncident(selected);
  }
  if (!selected || !book.incidents.get(selected)?.incident) selected = mine()[0]?.id ?? null;
  loadHelpers();
  live = connect({
    onStatus(state) {
      if (state === "live") outbox.flush();
      render();
    },
    scopes: () => [`city:${me.city_id}`],
    since: () => book.since(),
    onEvent(event) {
      const known = book.incidents.get(event.incident_id)?.incident;
      book.apply(event);
      offers.apply(event);
      alerts.consider(event);
      if (event.type === "sitrep.published" && event.incident_id === selected) sitreps?.refresh();
      const entry = book.entry(event.incident_id);
      if (!entry.incident) loadIncident(event.incident_id);
      else if (!known && entry.incident.city_id === me.city_id && !selected) select(entry.id);
      if (event.incident_id === selected) refreshHelpers();
      render();
    },
    onReset(message) {
      book.load(message.snapshot);
      render();
    },
    onNotice(notice) {
      if (notice.kind === "webhook.disabled") banner.refresh();
    },
  });
  // Claims of the city's own incidents still waiting for acceptance: warn before they lapse.
  const waitingClaims = () =>
    [...book.incidents.values()]
      .filter((entry) => entry.incident?.city_id === me.city_id)
      .flatMap((entry) => [...entry.claims.values()].filter((c) => c.status === "claimed").map((c) => [c, entry.requests.get(c.request_id)]))
      .filter(([, request]) => request);
  setInterval(() => alerts.checkLapses(waitingClaims()), 1000);
  banner.refresh();
  people.load().catch((error) => notify(error.message || String(error)));
  outbox.flush(); // what a reload (or another tab) left waiting
  tokens.load().catch((error) => notify(error.message || String(error)));
  render();
}

/** An ISO time as a datetime-local input's value, in the browser's time zone. */
function localInput(iso) {
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

function field(label, control, extra = "") {
  return h("div", { class: `field ${extra}` }, h("label", { for: control.id }, label), control);
}

