// View pieces the pages share: badges, the claim-state progress bar, request lines.

import { h } from "./dom.js";
import { claimBreakdown } from "./store.js";
import { isEndedClaim, isFinalRequest } from "./vocabulary.js";
import { between, cityName, etaTime, liveTime, placeOf, priorityLabel, resourceLabel, severityLabel, statusLabel, typeLabel, unitsOf } from "./format.js";
import { t } from "./i18n.js";

// Claim states as the progress bar counts them (an answer is a released information claim).
const STATES = ["answered", "on_site", "en_route", "accepted", "claimed"];

/** A claim state as the progress bar words it: "2 en route". */
const stateWord = (key) => t(`views.state.${key}`);

export function badge(text, kind, title) {
  return h("span", { class: `badge ${kind}`, title }, text);
}

const priorityBadge = (priority) =>
  badge(priorityLabel(priority), `priority-${priority}`, t("views.priority_title", { priority: priorityLabel(priority) }));
export const severityBadge = (severity) =>
  badge(severityLabel(severity), `severity-${severity}`, t("views.severity_title", { severity: severityLabel(severity) }));
export const exerciseBadge = (incident) =>
  incident.exercise ? badge(t("views.exercise"), "exercise", t("views.exercise_title")) : null;
export const statusChip = (status) => h("span", { class: `chip status-${status}` }, statusLabel(status));

/** An information request is answered, not delivered: its claims end with an answer. */
export const isInformation = (request) => request?.kind === "information";

/** The status a person reads: a fulfilled information request is "Answered". */
export function shownStatus(request) {
  return isInformation(request) && request.status === "fulfilled" ? "answered" : request.status;
}

/** A claim's chip: an information claim released with its answer reads "Answered". */
export function claimChip(request, claim) {
  return statusChip(isInformation(request) && claim.status === "released" && claim.answer ? "answered" : claim.status);
}

/**
 * The answers an information request received, each with who answered and when, as text
 * (never markup): null when there is none yet.
 */
export function answersBlock(entry, request, cities) {
  if (!isInformation(request)) return null;
  const answers = [...entry.claims.values()]
    .filter((c) => c.request_id === request.id && c.answer)
    .sort((a, b) => String(a.updated_at).localeCompare(String(b.updated_at)) || a.id - b.id);
  if (!answers.length) return null;
  return h("section", { class: "answers", "aria-label": t("views.answers_to", { resource: resourceLabel(request.resource) }) },
    h("h4", { class: "answers-title" }, t("views.answers", { count: answers.length })),
    answers.map((claim) =>
      h("figure", { class: "answer-item", dataset: { claimId: claim.id } },
        h("blockquote", { class: "answer answer-text" }, claim.answer),
        h("figcaption", { class: "fine" }, cityName(cities, claim.city_id), " · ", liveTime(claim.updated_at, "ago")),
      ),
    ),
  );
}

/** Who travels with a claim en route, in words: "lead Wanjiru · 6 people · truck · +254…". */
export function journeyLine(claim) {
  const parts = [
    claim.team_lead ? t("views.lead", { name: claim.team_lead }) : null,
    claim.team_size ? t("unit.person", { count: claim.team_size }) : null,
    claim.vehicle,
    claim.contact,
  ].filter(Boolean);
  return parts.length ? h("span", { class: "journey" }, parts.join(" · ")) : null;
}

/** When a claim's units arrive: its ETA while en route (overdue once passed). */
export function claimArrival(claim) {
  if (claim.status !== "en_route") return null;
  return claim.eta_at ? etaTime(claim.eta_at) : h("span", { class: "eta muted" }, t("views.no_eta"));
}

/**
 * Who is coming, and when: each city responding to a request with its units, status
 * and ETA, soonest arrival first; null when no claim is active.
 */
export function respondersBlock(entry, request, cities) {
  const claims = [...entry.claims.values()]
    .filter((c) => c.request_id === request.id && !isEndedClaim(c) && c.status !== "released")
    .sort((a, b) => String(a.eta_at ?? "~").localeCompare(String(b.eta_at ?? "~")) || a.id - b.id);
  if (!claims.length || isInformation(request)) return null;
  return h("ul", { class: "responders", "aria-label": t("views.who_is_coming", { resource: resourceLabel(request.resource) }) },
    claims.map((claim) =>
      h("li", { class: "responder", dataset: { claimId: claim.id, status: claim.status } },
        h("span", { class: "responder-city" }, cityName(cities, claim.city_id)),
        h("span", { class: "responder-units" }, unitsOf(request.resource, claim.quantity)),
        claimChip(request, claim),
        claimArrival(claim),
        journeyLine(claim),
      ),
    ),
  );
}

/**
 * The incident's checklists (copied from its playbook), each item ticked off or not; with
 * `onTick(checklist, item, done)` the items are checkboxes, else read only; `waitingTick(
 * checklist, item)` gives the tick of that item waiting to be sent, if any. Null when none.
 */
export function checklistsBlock(incident, cities, onTick = null, waitingTick = () => null) {
  const lists = incident.checklists || [];
  if (!lists.length) return null;
  const done = lists.reduce((n, c) => n + c.items.filter((i) => i.done).length, 0);
  const total = lists.reduce((n, c) => n + c.items.length, 0);
  return h("details", { class: "checklists", id: "checklists", open: true },
    h("summary", {}, t("views.checklists", { done, total })),
    lists.map((list, c) =>
      h("section", { class: "checklist", dataset: { checklist: c } },
        h("h4", {}, list.title),
        h("ul", { class: "checklist-items" },
          list.items.map((item, i) => {
            const by = item.done ? ` (${cityName(cities, item.done_by_city_id)})` : "";
            // A tick waiting to be sent: the box shows what was asked, and takes no other.
            const waiting = onTick ? waitingTick(c, i) : null;
            const box = onTick
              ? h("input", { type: "checkbox", id: `check-${c}-${i}`, checked: waiting ? waiting.body.done : item.done, disabled: Boolean(waiting), dataset: { focus: `check-${c}-${i}` }, onchange: (e) => onTick(c, i, e.currentTarget.checked, e.currentTarget) })
              : h("span", { class: "tick", "aria-hidden": "true" }, item.done ? "☑" : "☐");
            return h("li", { class: `checklist-item${item.done ? " done" : ""}`, dataset: { item: i, done: item.done } },
              onTick ? h("label", { class: "check", for: `check-${c}-${i}` }, box, ` ${item.text}`) : [box, ` ${item.text}`],
              item.done ? h("span", { class: "fine" }, by, " ", liveTime(item.done_at, "ago")) : null,
              waiting ? h("span", { class: "queued tick-waiting" }, t("views.tick_waiting")) : null,
              !onTick ? h("span", { class: "visually-hidden" }, ` (${t(item.done ? "views.done" : "views.not_done")})`) : null,
            );
          }),
        ),
      ),
    ),
  );
}

/** An unclaimed critical request: the one thing an operator must not miss. */
export function needsAttention(request) {
  return (
    request.priority === "critical" &&
    !isFinalRequest(request) &&
    request.remaining_quantity > 0
  );
}

/** Units by claim state over the quantity, as a bar with its numbers in words beside it. */
export function progressBar(entry, request) {
  const parts = claimBreakdown(entry, request.id);
  if (isInformation(request)) {
    // An information claim is released with its answer: nothing is "on site".
    parts.answered = parts.on_site;
    parts.on_site = 0;
  }
  const committed = Object.values(parts).reduce((a, b) => a + b, 0);
  const words = STATES.filter((key) => parts[key]).map((key) => t("views.state_count", { count: parts[key], state: stateWord(key) }));
  const summary = t(words.length ? "views.committed_of_states" : "views.committed_of", {
    committed,
    units: unitsOf(request.resource, request.quantity),
    states: words.join(", "),
  });
  const figure = `${committed}/${request.quantity}`;
  const bar = h("div", {
    class: "bar",
    role: "img",
    "aria-label": summary,
    dataset: {
      quantity: request.quantity,
      committed,
      claimed: parts.claimed,
      accepted: parts.accepted,
      enRoute: parts.en_route,
      onSite: parts.on_site,
      answered: parts.answered,
    },
  });
  for (const key of STATES) {
    if (!parts[key]) continue;
    const segment = h("span", { class: `seg seg-${key}` });
    segment.style.width = `${(100 * parts[key]) / request.quantity}%`;
    bar.append(segment);
  }
  return h(
    "div",
    { class: "progress" },
    bar,
    h("span", { class: "progress-text" }, h("strong", {}, figure), ` ${words.length ? words.join(" · ") : t("views.none_claimed")}`),
  );
}

/** Ring, time to the next ring, needed by (`place`: the incident's, see placeOf). */
export function requestTiming(request, place = null) {
  const items = [h("span", { class: "ring", title: t("views.ring_title") }, t("views.ring", { ring: request.ring }))];
  if (!isFinalRequest(request)) {
    if (request.next_escalation_at && request.remaining_quantity > 0) {
      items.push(h("span", { class: "next-ring" }, t("views.next_ring"), " ", liveTime(request.next_escalation_at, "until", "", place)));
    } else if (request.ring >= 2) {
      items.push(h("span", { class: "next-ring" }, t("views.widest_ring")));
    }
    if (request.needed_by) items.push(h("span", {}, t("views.needed"), " ", liveTime(request.needed_by, "until", "", place)));
  }
  return h("div", { class: "timing" }, items);
}

/**
 * A request's clocks, for every watcher: the time since it was raised (running until it
 * ends), the time to its first claim (running until there is one), and each claim's
 * countdown to acceptance while it waits for the requesting manager.
 */
export function requestClocks(request, claims, cities) {
  const final = isFinalRequest(request);
  const first = claims.reduce((a, c) => (a === null || c.created_at < a ? c.created_at : a), null);
  const raised = final
    ? h("span", { class: "clock clock-raised" }, t("views.raised_ended", { span: between(request.created_at, request.updated_at) }))
    : h("span", { class: "clock clock-raised" }, t("views.raised_before"), " ", liveTime(request.created_at, "since"), " ", t("views.raised_after"));
  const toFirst = first
    ? h("span", { class: "clock clock-first-claim", dataset: { seconds: Math.round((new Date(first) - new Date(request.created_at)) / 1000) } },
        t("views.first_claim_after", { span: between(request.created_at, first) }))
    : final
      ? h("span", { class: "clock clock-first-claim" }, t("views.never_claimed"))
      : h("span", { class: "clock clock-first-claim" }, t("views.first_claim_waiting"), " ", liveTime(request.created_at, "since"));
  const waiting = claims
    .filter((c) => c.status === "claimed" && c.expires_at)
    .sort((a, b) => String(a.expires_at).localeCompare(String(b.expires_at)))
    .map((c) =>
      h("li", { class: "clock clock-acceptance", dataset: { claimId: c.id } },
        t("views.accept_within", { city: cityName(cities, c.city_id), units: unitsOf(request.resource, c.quantity) }),
        " ",
        liveTime(c.expires_at, "until"),
      ),
    );
  return h("div", { class: "clocks", "aria-label": t("views.clocks") },
    raised,
    toFirst,
    waiting.length ? h("ul", { class: "acceptance-clocks" }, waiting) : null,
  );
}

export function requestTitle(request) {
  return h(
    "div",
    { class: "req-title" },
    priorityBadge(request.priority),
    h("span", { class: "resource", title: request.resource }, resourceLabel(request.resource)),
    h("span", { class: "kind" }, t(`request_kind.${request.kind}`)),
    statusChip(shownStatus(request)),
  );
}

/** The title, badges and one-line summary of an incident in a list. */
export function incidentItem(incident, cities, extraBadge = null) {
  return [
    h("span", { class: "item-title" }, incident.title),
    h("span", { class: "item-badges" },
      severityBadge(incident.severity),
      exerciseBadge(incident),
      incident.status === "closed" ? badge(statusLabel("closed"), "closed") : null,
      extraBadge,
    ),
    h("span", { class: "item-meta" }, incidentLine(incident, cities)),
  ];
}

export function incidentLine(incident, cities) {
  return [
    h("span", {}, typeLabel(incident.incident_type)),
    h("span", {}, cities.get(incident.city_id)?.name ?? t("format.city", { id: incident.city_id })),
    h("span", {}, t("views.declared"), " ", liveTime(incident.declared_at, "ago", "", placeOf(cities, incident.city_id))),
  ];
}

export function legend() {
  return h(
    "ul",
    { class: "bar-legend", "aria-label": t("views.legend") },
    STATES.filter((key) => key !== "answered").map((key) => h("li", {}, h("span", { class: `seg-key seg-${key}` }), statusLabel(key))),
  );
}

/**
 * A banner naming the city's disabled webhook endpoints, for its manager: loaded once,
 * refreshed on a `webhook.disabled` notice. Returns the element and its refresh.
 */
export function webhookBanner(api, cityId) {
  const el = h("div", { id: "webhook-banner", class: "banner", role: "alert", hidden: true });
  async function refresh() {
    try {
      const page = await api(`/webhooks?city_id=${cityId}&status=disabled&limit=20`);
      el.hidden = page.data.length === 0;
      el.replaceChildren(
        ...page.data.map((e) =>
          h("p", {}, h("strong", {}, t("views.webhook_stopped"), " "), t("views.webhook_disabled", { url: e.url, reason: e.status_reason }), " ",
            h("a", { href: "/webhooks" }, t("views.webhook_open")), " ", t("views.webhook_fix")),
        ),
      );
    } catch {
      // Not a manager's token, or aidmesh unreachable: the banner stays as it was.
    }
  }
  return { el, refresh };
}
