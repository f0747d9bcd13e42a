// The responder console: the city's inbox (requests aimed at it, most urgent and
// newest first), claiming part or all of one, and moving the city's own claims along.
// Claims, claim moves, passes and notes go through the outbox (outbox.js): one key per
// intended action, sent until answered.

import { h, keepTyped, patch, syncList, throttled } from "./dom.js";
import { ApiError, eachLimited, fetchAll } from "./api.js";
import { byUrgency, IncidentBook } from "./store.js";
import { claimMoves, isEndedClaim, isFinalRequest } from "./vocabulary.js";
import { cityName, inText, liveTime, placeOf, reportToText, resourceLabel, statusLabel, unitsOf } from "./format.js";
import { t } from "./i18n.js";
import { askDetails, notify } from "./notices.js";
import { startPage } from "./shell.js";
import { NoteThreads } from "./notes.js";
import { Alerts } from "./alerts.js";
import { OfferPanel } from "./offers.js";
import { Outbox, describeOutbox, fateUnknown, moveLabel, sendAction } from "./outbox.js";
import { answersBlock, badge, claimArrival, claimChip, exerciseBadge, journeyLine, requestTiming, requestTitle, severityBadge } from "./views.js";

startPage({
  hint: t("respond.hint"),
  start: startConsole,
});

// The button of each step forward the claiming city can take (which steps it may take
// when is the domain's rule: claimMoves).
const STEP_LABELS = { en_route: "status.en_route", on_site: "status.on_site", released: "respond.release" };

async function startConsole({ api, me, city, cities, main, connect }) {
  const book = new IncidentBook();
  const inbox = new Set(); // ids of requests aimed at this city
  let live = null;

  const inboxList = h("ul", { class: "inbox", id: "inbox" });
  const claimList = h("ul", { class: "claims", id: "my-claims" });
  const doneList = h("ul", { class: "claims done", id: "done-claims" });
  const inboxCount = h("span", { class: "count" });
  const jumpInboxCount = h("span", { class: "count" });
  const claimCount = h("span", { class: "count" });
  const outboxNote = h("p", { class: "outbox", id: "outbox", role: "status", hidden: true });
  const outbox = new Outbox({
    // Per person (a signed-in account, else the token), in localStorage: a reload or a
    // new tab still sends it, and another person signing in on this browser never does.
    storageKey: `aidmesh.outbox.${me.user_id ? `user-${me.user_id}` : me.token_id ?? `city-${me.city_id}`}`,
    send: (action) => (action.kind === "claim" ? sendClaim(action) : sendAction({ live, api }, action)),
    onAnswer: answered,
    onChange: () => render(),
  });
  const alerts = new Alerts({ me, cities, kinds: ["critical", "ended"] });
  // Offer help to an incident the city can see, unasked, and follow the offers made.
  const offers = new OfferPanel({ api, me, cities, canOffer: true });
  const offerIncident = h("select", { id: "offer-incident", onchange: () => showOffers() });
  main.append(
    alerts.panel,
    outboxNote,
    h("nav", { class: "jump", "aria-label": t("respond.on_this_page") },
      h("a", { href: "#inbox-title" }, t("respond.inbox"), jumpInboxCount),
      h("a", { href: "#claims-title" }, t("respond.claims"), claimCount),
    ),
    h("div", { class: "console" },
      h("section", { class: "panel col-main", "aria-labelledby": "inbox-title" },
        h("div", { class: "section-head" },
          h("h1", { id: "inbox-title" }, t("respond.inbox_of", { city: city.name }), inboxCount),
          h("p", { class: "muted" }, t("respond.inbox_lead")),
        ),
        inboxList,
      ),
      h("section", { class: "panel col-claims", "aria-labelledby": "claims-title" },
        h("h2", { id: "claims-title" }, t("respond.claims_of", { city: city.name })),
        claimList,
        h("details", { class: "done-box" }, h("summary", {}, t("respond.finished")), doneList),
      ),
    ),
    h("div", { class: "offer-help", id: "offer-help" },
      h("label", {}, `${t("respond.offer_help_to")} `, offerIncident),
      offers.el,
    ),
  );

  function showOffers() {
    const incident = book.incidents.get(Number(offerIncident.value))?.incident ?? null;
    offers.show(incident).catch((error) => notify(t("offers.read_failed", { error: error.message })));
  }

  /** The active incidents of other cities this city can see, to offer help to. */
  function renderOfferChoices() {
    const choices = [...book.incidents.values()]
      .map((e) => e.incident)
      .filter((i) => i && i.status === "active" && i.city_id !== me.city_id)
      .sort((a, b) => b.id - a.id);
    const sig = JSON.stringify(choices.map((i) => [i.id, i.title]));
    if (offerIncident.dataset.sig === sig) return;
    offerIncident.dataset.sig = sig;
    const chosen = offerIncident.value;
    offerIncident.replaceChildren(
      ...choices.map((i) => h("option", { value: i.id }, `${i.title} · ${cityName(cities, i.city_id)}`)),
    );
    if (choices.some((i) => String(i.id) === chosen)) offerIncident.value = chosen;
    showOffers();
  }

  const threads = new NoteThreads(api, () => render(), outbox);
  const render = throttled(() => {
    renderOutbox();
    renderInbox();
    renderClaims();
    renderOfferChoices();
  });

  function renderOutbox() {
    const text = describeOutbox(outbox);
    outboxNote.hidden = !text;
    const waiting = outbox.pending().map((action) => action.label);
    outboxNote.textContent = text ? `${text}: ${waiting.join("; ")}.` : "";
  }

  const isLive = () => live?.state === "live";

  // Requests the city passed on: they stay in the inbox, marked, without claim or pass.
  const passedByMe = new Set();

  // The city's roster: a claim may be made from one of its packages holding the resource.
  let packages = new Map();
  async function loadRoster() {
    try {
      const page = await api(`/cities/${me.city_id}/roster?limit=200`);
      packages = new Map(page.data.map((p) => [p.id, p]));
    } catch (error) {
      notify(t("respond.roster_failed", { error: error.message }));
    }
  }

  /** The packages that can lend `resource` now, with the units they have left for it. */
  function packagesFor(resource) {
    const found = [];
    for (const p of packages.values()) {
      const item = p.items.find((i) => i.resource === resource);
      if (item && p.available_now) found.push({ id: p.id, name: p.name, left: item.remaining_quantity });
    }
    return found;
  }

  // Events of different incidents may arrive out of commit order (a replay resumes each
  // incident by itself): shortly after a package's event, read the roster as it is.
  let reconciling = null;
  function reconcileRoster() {
    clearTimeout(reconciling);
    reconciling = setTimeout(() => loadRoster().then(render), 500);
  }

  /** A claim's event carries its package's units as the claim left them. */
  function applyPackage(state) {
    const p = packages.get(state?.id);
    if (!p) return;
    const items = p.items.map((i) => (i.resource === state.resource
      ? { ...i, committed_quantity: state.committed_quantity, remaining_quantity: state.remaining_quantity }
      : i));
    packages.set(p.id, { ...p, items });
  }

  function pendingClaim(requestId) {
    return outbox.find((action) => action.kind === "claim" && action.body.request_id === requestId);
  }

  /** The pass on this request waiting in the outbox, if any: a city passes once. */
  function pendingPass(requestId) {
    return outbox.find((action) => action.kind === "pass" && action.body.request_id === requestId);
  }

  /** The move of this claim waiting in the outbox, if any: one at a time per claim. */
  function pendingMove(claimId) {
    return outbox.find((action) => action.kind === "move" && action.body.claim_id === claimId);
  }

  function requestOf(requestId) {
    for (const entry of book.incidents.values()) {
      if (entry.requests.has(requestId)) return [entry, entry.requests.get(requestId)];
    }
    return [null, null];
  }

  function myClaims() {
    const claims = [];
    for (const entry of book.incidents.values()) {
      for (const claim of entry.claims.values()) if (claim.city_id === me.city_id) claims.push([entry, claim]);
    }
    return claims.sort(([, a], [, b]) => String(b.updated_at).localeCompare(String(a.updated_at)));
  }

  function renderInbox() {
    const items = [...inbox]
      .map((id) => requestOf(id))
      .filter(([entry, request]) => entry?.incident && request && !isFinalRequest(request))
      // What can still be claimed first; within that, most urgent and newest first.
      .sort(([, a], [, b]) => (b.remaining_quantity > 0) - (a.remaining_quantity > 0) || byUrgency(a, b));
    inboxCount.textContent = ` (${items.length})`;
    jumpInboxCount.textContent = inboxCount.textContent;
    if (!items.length) {
      inboxList.replaceChildren(h("li", { class: "empty" }, t("respond.inbox_empty")));
      return;
    }
    inboxList.querySelector(".empty")?.remove();
    syncList(
      inboxList,
      items,
      ([, r]) => r.id,
      () => h("li", { class: "request card" }),
      (li, [entry, request]) => {
        li.dataset.requestId = request.id;
        const mine = [...entry.claims.values()].filter(
          (c) => c.request_id === request.id && c.city_id === me.city_id && !isEndedClaim(c),
        );
        li.classList.toggle("attention", request.priority === "critical" && request.remaining_quantity > 0);
        const answers = [...entry.claims.values()].filter((c) => c.request_id === request.id && c.answer);
        const waiting = pendingClaim(request.id);
        patch(
          li,
          JSON.stringify([request, entry.incident.title, entry.incident.status, mine, answers, waiting?.key ?? null, pendingPass(request.id)?.key ?? null, isLive(), packagesFor(request.resource), passedByMe.has(request.id), threads.signature(entry, request.id)]),
          () => inboxCard(entry, request, mine, waiting),
        );
        // A waiting claim goes from waiting to sending and back on every retry: its
        // button says so in place, the same element, so a click never lands on one gone.
        if (waiting) {
          const button = li.querySelector("form.claim-form button[type=submit]");
          if (button) button.textContent = claimButtonLabel(waiting);
        }
      },
    );
  }

  function claimButtonLabel(waiting) {
    return outbox.stateOf(waiting) === "sending" ? t("respond.sending") : t("respond.waiting_send");
  }

  function inboxCard(entry, request, mine, waiting) {
    const incident = entry.incident;
    const left = request.remaining_quantity;
    const closed = left < 1 || incident.status !== "active";
    // One intended claim at a time per request: a second click is not a second claim.
    const blocked = closed || Boolean(waiting);
    const quantity = h("input", {
      type: "number",
      min: 1,
      max: Math.max(1, left),
      // One unit, never "everything left": claiming it all is the explicit "Claim all".
      value: waiting ? waiting.body.quantity : 1,
      id: `qty-${request.id}`,
      class: "qty",
      inputmode: "numeric",
      dataset: { keep: "qty", focus: "qty" },
      oninput: keepTyped,
      disabled: blocked,
    });
    const lenders = packagesFor(request.resource);
    const fromPackage = lenders.length
      ? h("select", {
          id: `package-${request.id}`,
          class: "from-package",
          dataset: { keep: "package", focus: "package" },
          onchange: keepTyped,
          disabled: blocked,
        },
          h("option", { value: "" }, t("respond.no_package")),
          lenders.map((p) => h("option", { value: p.id, disabled: p.left < 1 }, t("respond.from_package", { name: p.name, count: p.left }))),
        )
      : null;
    const label = waiting ? claimButtonLabel(waiting) : isLive() ? t("respond.claim") : t("respond.queue_claim");
    const claimButton = h(
      "button",
      { type: "submit", class: "primary", dataset: { focus: "claim" }, disabled: blocked, "aria-busy": waiting ? "true" : null },
      label,
    );
    const form = h(
      "form",
      { class: "claim-form", "aria-label": t("respond.claim_label", { resource: resourceLabel(request.resource) }) },
      h("label", { for: `qty-${request.id}` }, t("manage.units")),
      quantity,
      h("span", { class: "of" }, t("respond.of_left", { count: left })),
      fromPackage,
      claimButton,
      left > 1 && !waiting
        ? h("button", {
            type: "button",
            class: "secondary",
            dataset: { focus: "all" },
            disabled: blocked,
            onclick: () => queueClaim(request, left, chosenPackage()),
          }, t("respond.claim_all", { count: left }))
        : null,
      waiting
        ? h("p", { class: "queued" }, t("respond.claim_queued", { units: unitsOf(request.resource, waiting.body.quantity) }))
        : !isLive() && !closed
          ? h("p", { class: "queued" }, t("respond.not_connected"))
          : null,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const wanted = Number(quantity.value);
      if (!Number.isInteger(wanted) || wanted < 1 || wanted > left) {
        notify(t("respond.claim_between", { count: left }));
        quantity.focus();
        return;
      }
      queueClaim(request, wanted, chosenPackage());
    });
    function chosenPackage() {
      return fromPackage && fromPackage.value ? Number(fromPackage.value) : null;
    }
    return [
      requestTitle(request),
      h("p", { class: "meta" },
        h("span", { class: "incident-name" }, incident.title),
        h("span", {}, cityName(cities, request.city_id)),
        severityBadge(incident.severity),
        exerciseBadge(incident),
      ),
      h("p", { class: "quantities" },
        h("strong", {}, unitsOf(request.resource, request.quantity)), ` ${t("respond.requested")} · `,
        h("strong", {}, t("respond.left", { count: left })), ` ${t("respond.to_claim")}`,
        request.delivered_quantity ? ` · ${t("respond.delivered", { count: request.delivered_quantity })}` : "",
      ),
      lenders.length
        ? h("p", { class: "roster-has" }, badge(t("respond.roster_has"), "waiting"), " ",
            lenders.map((p) => `${p.name}: ${t("respond.left", { count: p.left })}`).join(" · "))
        : null,
      requestTiming(request, placeOf(cities, incident.city_id)),
      answersBlock(entry, request, cities),
      reportToText(request) ? h("p", { class: "detail report-to" }, h("span", { class: "label" }, `${t("manage.report_to")} `), reportToText(request)) : null,
      request.notes ? h("p", { class: "detail" }, request.notes) : null,
      mine.length
        ? h("p", { class: "mine" }, t("respond.your_city_has", { list: mine.map((c) => `${c.quantity} ${inText(statusLabel(c.status))}`).join(", ") }))
        : null,
      passedByMe.has(request.id)
        ? h("p", { class: "mine passed" }, t("respond.passed_this"))
        : left > 0 && incident.status === "active" ? [form, passForm(request)] : null,
      threads.view(entry, request, cities, { writable: incident.status === "active", claims: mine }),
    ];
  }

  function renderClaims() {
    const all = myClaims();
    const open = all.filter(([, c]) => !isEndedClaim(c) && c.status !== "released");
    const done = all.filter(([, c]) => isEndedClaim(c) || c.status === "released").slice(0, 30);
    claimCount.textContent = ` (${open.length})`;
    if (!open.length) claimList.replaceChildren(h("li", { class: "empty" }, t("respond.no_claims")));
    else {
      claimList.querySelector(".empty")?.remove();
      syncList(claimList, open, ([, c]) => c.id, () => h("li", { class: "claim card" }), updateClaim);
    }
    syncList(doneList, done, ([, c]) => c.id, () => h("li", { class: "claim card" }), updateClaim);
  }

  function updateClaim(li, [entry, claim]) {
    const request = entry.requests.get(claim.request_id);
    li.dataset.claimId = claim.id;
    li.dataset.status = claim.status;
    const waiting = pendingMove(claim.id);
    patch(li, JSON.stringify([claim, request?.status, entry.incident?.title, waiting?.key ?? null]), () => claimCard(entry, claim, request, waiting));
  }

  function claimCard(entry, claim, request, queued) {
    const info = request?.kind === "information";
    // A move waiting to be sent is the claim's next step: no second one until it is answered.
    const moves = queued ? [] : claimMoves(request?.kind, claim.status, "responder");
    const actions = [];
    if (info && moves.includes("released")) {
      const answer = h("textarea", {
        id: `answer-${claim.id}`,
        rows: 3,
        required: true,
        maxlength: 20000,
        dataset: { keep: "answer", focus: "answer" },
        oninput: keepTyped,
      });
      const send = h("button", { type: "submit", class: "primary", dataset: { focus: "send" } }, t("respond.send_answer"));
      const form = h("form", { class: "answer-form" }, h("label", { for: `answer-${claim.id}` }, t("respond.answer")), answer, send);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (!answer.value.trim()) return answer.focus();
        queueMove(claim, request, "released", { answer: answer.value.trim() });
      });
      actions.push(form);
    } else {
      for (const status of moves.filter((s) => s in STEP_LABELS)) {
        const label = t(STEP_LABELS[status]);
        actions.push(
          h("button", {
            type: "button",
            class: "primary",
            dataset: { focus: status },
            onclick: (event) =>
              status === "en_route" ? setOff(claim, request) : queueMove(claim, request, status),
          }, label),
        );
      }
    }
    if (moves.includes("withdrawn")) {
      actions.push(
        h("button", {
          type: "button",
          class: "secondary",
          dataset: { focus: "withdraw" },
          onclick: async (event) => {
            const asked = await askDetails(
              t("respond.withdraw_question", { id: claim.id }),
              t("respond.withdraw"),
              [["reason", t("respond.withdraw_why"), { tag: "textarea", rows: 2, maxlength: 500 }]],
              t("respond.withdraw_detail", { units: unitsOf(request?.resource ?? "", claim.quantity) }),
            );
            if (asked) queueMove(claim, request, "withdrawn", asked);
          },
        }, t("respond.withdraw")),
      );
    }
    const waiting =
      claim.status === "claimed"
        ? h("p", { class: "waiting" }, t("respond.waiting_accept", { city: cityName(cities, entry.incident?.city_id) }),
            claim.expires_at ? [` (${t("manage.lapses")} `, liveTime(claim.expires_at, "until", "", placeOf(cities, entry.incident?.city_id)), ")"] : null)
        : null;
    return [
      h("div", { class: "req-title" },
        h("span", { class: "resource" }, request ? resourceLabel(request.resource) : t("feed.on_request", { id: claim.request_id })),
        h("span", { class: "qty-text" }, request ? unitsOf(request.resource, claim.quantity) : claim.quantity),
        claimChip(request, claim),
      ),
      h("p", { class: "meta" }, h("span", {}, t("respond.claim_number", { id: claim.id })), h("span", {}, entry.incident?.title ?? "")),
      reportToText(request) ? h("p", { class: "detail report-to" }, h("span", { class: "label" }, `${t("manage.report_to")} `), reportToText(request)) : null,
      waiting,
      claim.status === "en_route" ? h("p", { class: "detail arrival" }, h("span", { class: "label" }, `${t("respond.eta")} `), claimArrival(claim), " ", journeyLine(claim)) : null,
      claim.end_reason ? h("p", { class: "detail end-reason" }, h("span", { class: "label" }, `${t("respond.reason")} `), claim.end_reason) : null,
      claim.answer ? h("p", { class: "detail answer" }, h("span", { class: "label" }, `${t("respond.answer")} `), claim.answer) : null,
      queued ? h("p", { class: "queued" }, t("respond.queued_move", { label: queued.label })) : null,
      actions.length ? h("div", { class: "actions" }, actions) : null,
    ];
  }

  /**
   * "We cannot help with this one", with an optional reason; once per request. A pass
   * waiting in the outbox shows its reason and says it waits, with no second pass.
   */
  function passForm(request) {
    const waiting = pendingPass(request.id);
    const reason = h("input", {
      id: `pass-reason-${request.id}`,
      class: "pass-reason",
      maxlength: 500,
      placeholder: t("respond.reason_optional"),
      dataset: waiting ? {} : { keep: "pass-reason", focus: "pass-reason" },
      oninput: keepTyped,
      value: waiting ? waiting.body.reason : null,
      disabled: Boolean(waiting),
    });
    const button = h("button", {
      type: "submit",
      class: "secondary small",
      id: `pass-${request.id}`,
      dataset: { focus: "pass" },
      disabled: Boolean(waiting),
      "aria-busy": waiting ? "true" : null,
    }, waiting ? t("respond.waiting_send") : t("respond.pass"));
    const form = h("form", { class: "pass-form", "aria-label": t("respond.pass_on", { resource: resourceLabel(request.resource) }) },
      reason,
      button,
      waiting ? h("p", { class: "queued pass-queued" }, t("respond.pass_queued")) : null,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (pendingPass(request.id)) return; // already on its way: the same intended pass
      const label = t("respond.action_pass", { resource: inText(resourceLabel(request.resource)), id: request.id });
      outbox.add("pass", { request_id: request.id, reason: reason.value.trim(), city_id: me.city_id }, label);
    });
    return form;
  }

  /** En route: ask when the team arrives (required) and who is coming (optional). */
  async function setOff(claim, request) {
    const local = (date) => new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    const soon = new Date(Date.now() + 60_000);
    const asked = await askDetails(
      t("respond.set_off_question", { units: unitsOf(request?.resource ?? "", claim.quantity) }),
      t("respond.set_off"),
      [
        ["eta", t("respond.eta_field"), { type: "datetime-local", required: true, min: local(soon) }],
        ["team_lead", t("respond.team_lead"), { maxlength: 200, autocomplete: "name" }],
        ["team_size", t("respond.team_size"), { type: "number", min: 1, max: 10000, inputmode: "numeric" }],
        ["vehicle", t("respond.vehicle"), { maxlength: 200 }],
        ["contact", t("respond.contact"), { maxlength: 200, autocomplete: "tel" }],
      ],
      reportToText(request) ? t("respond.report_to_detail", { place: reportToText(request) }) : "",
    );
    if (!asked) return;
    const extra = { ...asked, eta: new Date(asked.eta).toISOString() };
    if (extra.team_size) extra.team_size = Number(extra.team_size);
    queueMove(claim, request, "en_route", extra);
  }

  // Commands: over the websocket when live, else REST; a claim keeps its key across both,
  // and across reloads, since the outbox stores it before the first attempt.

  function queueClaim(request, quantity, packageId = null) {
    if (pendingClaim(request.id)) return; // already on its way: the same intended claim
    const what = t(packageId !== null ? "respond.action_claim_from" : "respond.action_claim", {
      units: unitsOf(request.resource, quantity),
      resource: inText(resourceLabel(request.resource)),
      id: request.id,
      package: packageId !== null ? packages.get(packageId)?.name ?? `#${packageId}` : "",
    });
    const body = { request_id: request.id, quantity, resource: request.resource };
    if (packageId !== null) body.package_id = packageId;
    outbox.add("claim", body, what);
  }

  /** Queue a move of one of the city's claims: one key per intended move, sent in order. */
  function queueMove(claim, request, status, extra = {}) {
    if (pendingMove(claim.id)) return; // already on its way: the same intended move
    const what = request ? unitsOf(request.resource, claim.quantity) : "";
    const body = { claim_id: claim.id, incident_id: claim.incident_id, status, extra };
    outbox.add("move", body, moveLabel(claim, status, what));
  }

  async function sendClaim(action) {
    const { request_id: requestId, quantity, package_id: packageId } = action.body;
    const from = packageId ? { package_id: packageId } : {};
    try {
      if (!live) throw new ApiError(0, "not connected", { transport: true });
      return await live.command("claim", { request_id: requestId, quantity, idempotency_key: action.key, ...from });
    } catch (error) {
      if (!(error instanceof ApiError) || !fateUnknown(error)) throw error;
      return api(`/requests/${requestId}/claims`, {
        method: "POST",
        body: { quantity, ...from },
        headers: { "Idempotency-Key": action.key },
      });
    }
  }

  function answered(action, result, refusal) {
    if (action.kind === "note") {
      threads.answered(book, action, result, refusal);
      return;
    }
    if (action.kind === "pass") {
      if (refusal) notify(t("outbox.not_done", { label: action.label, error: refusal.message }));
      else {
        passedByMe.add(action.body.request_id);
        notify(result.escalated_to_ring !== null && result.escalated_to_ring !== undefined
          ? t("respond.passed_escalated", { ring: result.escalated_to_ring })
          : t("respond.passed"), "ok");
      }
      render();
      return;
    }
    if (action.kind === "move") {
      if (refusal) notify(t("outbox.not_done", { label: action.label, error: refusal.message }));
      else keepClaim(result);
      render();
      return;
    }
    const { quantity, resource } = action.body;
    if (refusal) {
      notify(t("respond.not_claimed", { action: action.label, error: refusal.message }));
    } else {
      keepClaim(result);
      notify(t("respond.claimed", { units: unitsOf(resource, quantity), resource: inText(resourceLabel(resource)) }), "ok");
    }
    render();
  }

  /** A claim as an answer gave it: the event brings the same; until then, show this. */
  function keepClaim(claim) {
    if (!claim?.incident_id) return;
    const entry = book.entry(claim.incident_id);
    if (!entry.claims.has(claim.id) || entry.claims.get(claim.id).updated_at <= claim.updated_at) {
      entry.claims.set(claim.id, claim);
    }
  }

  async function loadIncident(id) {
    try {
      if (await book.fetch(api, id)) render();
    } catch (error) {
      notify(t("board.load_incident_failed", { id, error: error.message }));
    }
  }

  await loadRoster();
  async function loadPasses() {
    await eachLimited([...inbox], 6, async (id) => {
      const page = await api(`/requests/${id}/passes?limit=500`);
      if (page.data.some((p) => p.city_id === me.city_id)) passedByMe.add(id);
    });
  }
  // The snapshot: seqs first, then the inbox, so replay covers anything in between.
  const active = await fetchAll(api, "/incidents?status=active");
  await eachLimited(active, 6, async (incident) => book.load(await api(`/incidents/${incident.id}`)));
  for (const request of await fetchAll(api, "/requests")) {
    inbox.add(request.id);
    const entry = book.entry(request.incident_id);
    entry.requests.set(request.id, request);
    if (!entry.incident) loadIncident(request.incident_id);
  }
  await loadPasses().catch((error) => notify(t("respond.passes_failed", { error: error.message })));
  live = connect({
    onStatus(state) {
      if (state === "live") outbox.flush();
      render();
    },
    scopes: () => [`city:${me.city_id}`],
    since: () => book.since(),
    onEvent(event) {
      book.apply(event);
      offers.apply(event);
      if (event.data?.pass?.city_id === me.city_id) passedByMe.add(event.data.pass.request_id);
      if (event.data?.package?.city_id === me.city_id) {
        applyPackage(event.data.package);
        reconcileRoster();
      }
      alerts.consider(event);
      const request = event.data?.request;
      if (request && request.city_id !== me.city_id && (event.audience?.cities || []).includes(me.city_id)) {
        inbox.add(request.id);
      }
      if (!book.entry(event.incident_id).incident) loadIncident(event.incident_id);
      render();
    },
    onReset(message) {
      book.load(message.snapshot);
      render();
    },
  });
  outbox.flush(); // what a reload (or another tab) left waiting
  render();
}
