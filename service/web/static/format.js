// Formatting for people: status and resource labels, units, clock times, times that
// keep themselves current ("4 min ago", "in 12:04") and one line per event for the feed.

import { h } from "./dom.js";
import { dateTime, lang, locale, t, tOr } from "./i18n.js";

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

// Where a status reads better than its slug spelled out.
const WORDING = { partially_claimed: "Partly claimed" };

/** "en_route" → "En route", in this page's language. */
export const statusLabel = (status) =>
  tOr(`status.${status}`, WORDING[status] || capitalise(String(status ?? "").replaceAll("_", " ")) || status);

/** An incident type: "power-grid-failure" → "Power grid failure". */
export const typeLabel = (slug) => tOr(`incident_type.${slug}`, capitalise(String(slug).replaceAll("-", " ")));

/** A label inside a sentence: English lowers its capital ("power grid failure");
 * languages that capitalise nouns keep it. */
export const inText = (label) => (lang === "en" ? String(label).toLowerCase() : label);

/** An event type: "incident.declared" → "Incident declared". */
export const eventTypeLabel = (type) =>
  tOr(`event_type.${type}`, capitalise(String(type).replace(".", " ").replaceAll("-", " ")));

/** A priority ("critical") or a severity ("severe") in this page's language. */
export const priorityLabel = (priority) => tOr(`priority.${priority}`, priority);
export const severityLabel = (severity) => tOr(`severity.${severity}`, severity);

/** A catalogue of resources by id, filled once from GET /resources. */
export const catalogue = new Map();

export async function loadCatalogue(api) {
  for (const resource of await api("/resources")) catalogue.set(resource.id, resource);
}

const SPELLINGS = [
  [/\bgis\b/g, "GIS"],
  [/\b(\d+)kw\b/g, "$1 kW"],
  [/^swift water\b/, "swift-water"],
];

/** "generator-100kw" → "Generator 100 kW"; the catalogue's name in this page's language. */
export function resourceLabel(id) {
  const named = tOr(`resource.${id}`, null);
  if (named !== null) return named;
  let text = String(id).replaceAll("-", " ");
  for (const [pattern, spelling] of SPELLINGS) text = text.replace(pattern, spelling);
  return capitalise(text);
}

export function unitsOf(resourceId, quantity) {
  const unit = catalogue.get(resourceId)?.unit || "unit";
  const counted = tOr(`unit.${unit}`, null, { count: quantity });
  if (counted !== null) return counted;
  if (quantity === 1) return `1 ${unit}`;
  const plural = unit === "person" ? "people" : `${unit}s`;
  return `${quantity} ${plural}`;
}

/** A resource's name inside a sentence: "bottled water", but "GIS analyst" keeps its capitals. */
function inSentence(label) {
  return /^[A-Z]{2}/.test(label) ? label : label.charAt(0).toLowerCase() + label.slice(1);
}

/**
 * Units of one resource, as a person says them: "15 pallets of bottled water", "1 team of
 * swift-water rescue team"; a resource counted in plain units is named by itself ("150 cots",
 * "2 excavators", "2 generator 100 kW").
 */
export function unitsOfResource(resourceId, quantity) {
  const unit = catalogue.get(resourceId)?.unit || "unit";
  if (lang !== "en") {
    // English's grammar (a plural s, a lower-case name) is below; other languages say it
    // by their catalogue's pattern.
    const resource = resourceLabel(resourceId);
    return unit !== "unit"
      ? t("units.of_resource", { units: unitsOf(resourceId, quantity), resource })
      : t("units.counted", { count: quantity, resource });
  }
  const name = inSentence(resourceLabel(resourceId));
  if (unit !== "unit") return `${unitsOf(resourceId, quantity)} of ${name}`;
  const counted = quantity === 1 || /(s|[^a-z])$/.test(name) ? name : `${name}s`;
  return `${quantity} ${counted}`;
}

/** Units per resource, never added across resources: "15 pallets of bottled water, 150 cots". */
/** Coordinates as people write them: "1.2921° S, 36.8219° E". */
export function formatPoint(lat, lon) {
  const ns = lat < 0 ? "S" : "N";
  const ew = lon < 0 ? "W" : "E";
  return `${Math.abs(lat).toFixed(4)}° ${ns}, ${Math.abs(lon).toFixed(4)}° ${ew}`;
}

/** Where to report, in words: the report-to and, when it has them, its coordinates. */
export function reportToText(request) {
  if (!request) return "";
  const point = request.report_lat == null ? "" : formatPoint(request.report_lat, request.report_lon);
  if (!point) return request.report_to || "";
  return request.report_to ? `${request.report_to} (${point})` : point;
}

export function unitsByResource(units) {
  return [...units.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([resourceId, quantity]) => unitsOfResource(resourceId, quantity))
    .join(", ");
}

// Every time a page shows carries its zone: the viewer's own (as the browser names it,
// "CET", "GMT+3"), and on hover the incident's local time where its city has a zone.

const CLOCK = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
const DATED = { year: "numeric", month: "2-digit", day: "2-digit", ...CLOCK };

/** "14:03:07 CET": a clock time with the viewer's zone. */
export function clockTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString(locale, { ...CLOCK, timeZoneName: "short" });
}

/** "2024-05-01 14:03:07 GMT+3": a moment with its zone, in the reader's locale (a
 * different `timeZone`, an IANA name, shows it there instead). */
export function zonedTime(iso, timeZone = undefined) {
  if (!iso) return "";
  return dateTime(iso, { ...DATED, timeZoneName: "short", timeZone });
}

/** Where an incident's local time is told: its city's zone and name, or null. */
export function placeOf(cities, cityId) {
  const city = cities?.get(cityId);
  return city?.time_zone ? { zone: city.time_zone, name: city.name } : null;
}

/** The hover text of a time: the viewer's, the incident's local time, and UTC (ISO 8601). */
export function timeTitle(iso, place = null) {
  const lines = [t("time.yours", { time: zonedTime(iso) })];
  if (place) {
    try {
      lines.push(t("time.local", { time: zonedTime(iso, place.zone), place: place.name }));
    } catch {
      // A zone this browser does not know: the viewer's time and UTC still say it.
    }
  }
  lines.push(new Date(iso).toISOString());
  return lines.join("\n");
}

/** A <time> showing the clock time with its zone, the rest on hover. */
export function clockElement(iso, place = null, attrs = {}) {
  if (!iso) return "";
  return h("time", { ...attrs, datetime: iso, title: timeTitle(iso, place) }, clockTime(iso));
}

function spell(ms) {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return t("time.s", { n: Math.max(0, Math.floor(ms / 1000)) });
  if (minutes < 60) return t("time.min", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return minutes % 60 ? t("time.h_min", { h: hours, min: minutes % 60 }) : t("time.h", { n: hours });
  }
  return t("time.d", { n: Math.floor(hours / 24) });
}

export function ago(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  return ms < 45_000 ? t("time.just_now") : t("time.ago", { span: spell(ms) });
}

export function until(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  if (ms <= 0) return t("time.due_now");
  if (ms < 3_600_000) {
    const s = Math.floor(ms / 1000);
    return t("time.in", { span: `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` });
  }
  return t("time.in", { span: spell(ms) });
}

/** An ISO time as reports print it: date and time in UTC, seconds included. */
export function utc(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, " UTC") : "—";
}

/** Seconds as a duration: "45 s", "10 min", "10 min 5 s", "1 h 5 min". */
export function seconds(value) {
  if (value === null || value === undefined) return "—";
  const s = Math.round(value);
  if (s < 60) return t("time.s", { n: s });
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return s % 60 ? t("time.min_s", { min: minutes, s: s % 60 }) : t("time.min", { n: minutes });
  return t("time.h_min", { h: Math.floor(minutes / 60), min: minutes % 60 });
}

/** A span of time as a clock: "4:05", "1:02:03"; never negative. */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hours ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** The time from `fromIso` to `toIso` as a clock. */
export const between = (fromIso, toIso) => clock(new Date(toIso).getTime() - new Date(fromIso).getTime());

/** The time since `iso` as a running clock. */
export const since = (iso, now = Date.now()) => clock(now - new Date(iso).getTime());

const LIVE_TEXT = { ago, until, since };

/** A <time> that keeps itself current ("4 min ago", "in 12:04", "12:04" since): see
 * tick(). On hover: the moment in the viewer's zone, in the incident's (`place`, see
 * placeOf) and in UTC. */
export function liveTime(iso, mode, prefix = "", place = null) {
  if (!iso) return null;
  return h(
    "time",
    { datetime: iso, title: timeTitle(iso, place), dataset: { [mode]: iso, prefix } },
    prefix + LIVE_TEXT[mode](iso),
  );
}

/** An arrival time: "arrives in 12:04", or "overdue 5 min" once passed (see tick()). */
export function arrival(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  return ms > 0
    ? t("time.overdue", { span: ms < 60_000 ? t("time.under_min") : spell(ms) })
    : t("time.arrives", { when: until(iso, now) });
}

/** A <time> for an ETA that keeps itself current and turns `overdue` when it passes. */
export function etaTime(iso) {
  if (!iso) return null;
  const el = h("time", { class: "eta", datetime: iso, title: t("time.eta", { time: dateTime(iso) }), dataset: { eta: iso } });
  showArrival(el, Date.now());
  return el;
}

function showArrival(el, now) {
  el.textContent = arrival(el.dataset.eta, now);
  el.classList.toggle("overdue", new Date(el.dataset.eta).getTime() < now);
}

/** Bring every live <time> of the page up to date: the shell runs it each second. */
export function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-eta]")) showArrival(el, now);
  for (const el of document.querySelectorAll("[data-ago]")) {
    el.textContent = (el.dataset.prefix || "") + ago(el.dataset.ago, now);
  }
  for (const el of document.querySelectorAll("[data-until]")) {
    el.textContent = (el.dataset.prefix || "") + until(el.dataset.until, now);
  }
  for (const el of document.querySelectorAll("[data-since]")) {
    el.textContent = (el.dataset.prefix || "") + since(el.dataset.since, now);
  }
}

export function cityName(cities, id) {
  return cities.get(id)?.name ?? t("format.city", { id });
}

/** What an `incident.updated` event changed, in words: severity old → new, the new title,
 * a new description, a move. */
function describeChanges(changes) {
  const words = [];
  if (changes.severity) {
    words.push(t("feed.change.severity", { old: severityLabel(changes.severity.old), new: severityLabel(changes.severity.new) }));
  }
  if (changes.title) words.push(t("feed.change.title", { title: changes.title.new }));
  if (changes.description) words.push(t(changes.description.new ? "feed.change.description" : "feed.change.description_removed"));
  if (changes.lat || changes.lon) words.push(t("feed.change.moved"));
  return words.join(", ") || t("feed.change.none");
}

/** What a `request.updated` event changed, in words: "quantity 4 → 6, priority normal → critical". */
function describeRequestChanges(changes) {
  const words = [];
  const time = (iso) => (iso ? dateTime(iso, { dateStyle: "medium", timeStyle: "short" }) : t("feed.change.no_time"));
  if (changes.quantity) words.push(t("feed.change.units", { old: changes.quantity.old, new: changes.quantity.new }));
  if (changes.priority) {
    words.push(t("feed.change.priority", { old: priorityLabel(changes.priority.old), new: priorityLabel(changes.priority.new) }));
  }
  if (changes.needed_by) words.push(t("feed.change.needed_by", { time: time(changes.needed_by.new) }));
  if (changes.report_to) {
    words.push(changes.report_to.new ? t("feed.change.report_to", { place: changes.report_to.new }) : t("feed.change.report_to_removed"));
  }
  const lat = changes.report_lat;
  const lon = changes.report_lon;
  if (lat || lon) {
    const [before, after] = [(lat ?? lon).old, (lat ?? lon).new];
    words.push(t(after == null ? "feed.change.staging_removed" : before == null ? "feed.change.staging_set" : "feed.change.staging_moved"));
  }
  return words.join(", ") || t("feed.change.none");
}

/** One line of the feed for an event. */
export function describeEvent(event, cities) {
  const d = event.data || {};
  const by = event.actor_city_id ? cityName(cities, event.actor_city_id) : "aidmesh";
  const req = d.request;
  const name = req ? t("feed.request_name", { resource: resourceLabel(req.resource), id: req.id }) : "";
  switch (event.type) {
    case "incident.declared":
      return t(d.incident.exercise ? "feed.declared_exercise" : "feed.declared", {
        by,
        title: d.incident.title,
        type: inText(typeLabel(d.incident.incident_type)),
        severity: severityLabel(d.incident.severity),
      });
    case "incident.updated":
      return t("feed.updated", { by, changes: describeChanges(d.changes || {}) });
    case "incident.closed":
      return t("feed.closed", { by });
    case "request.raised":
      return t("feed.raised", { by, name, units: unitsOf(req.resource, req.quantity), priority: priorityLabel(req.priority) });
    case "request.updated":
      return t("feed.request_updated", { by, name, changes: describeRequestChanges(d.changes || {}) });
    case "request.escalated": {
      const names = (d.reached_city_ids || []).map((id) => cityName(cities, id));
      const why = d.cause === "passes" ? t("feed.escalated_passes") : "";
      const reach = names.length ? t("feed.escalated_reaching", { cities: names.join(", ") }) : "";
      return t("feed.escalated", { name, ring: d.to_ring, why, reach });
    }
    case "request.passed": {
      const city = cityName(cities, d.pass.city_id);
      return d.pass.reason ? t("feed.passed_because", { city, name, reason: d.pass.reason }) : t("feed.passed", { city, name });
    }
    case "request.cancelled":
      return t("feed.cancelled", { name });
    case "request.expired":
      return t("feed.expired", { name });
    case "request.fulfilled":
      return t(req.kind === "information" ? "feed.answered" : "feed.fulfilled", { name });
    case "claim.made":
      return t("feed.claimed", { city: cityName(cities, d.claim.city_id), units: unitsOf(req.resource, d.claim.quantity), name });
    case "claim.changed":
      if (req.kind === "information" && d.claim.answer && d.claim.status === "released") {
        return t("feed.claim_answered", { city: cityName(cities, d.claim.city_id), name });
      }
      return t("feed.claim_changed", {
        city: cityName(cities, d.claim.city_id),
        units: unitsOf(req.resource, d.claim.quantity),
        name,
        status: inText(statusLabel(d.claim.status)),
      });
    case "checklist.ticked":
      return t(d.done ? "feed.ticked" : "feed.unticked", { by, text: d.text, list: d.title });
    case "note.added": {
      const on = d.note.claim_id ? t("feed.on_claim", { id: d.note.claim_id }) : t("feed.on_request", { id: d.note.request_id });
      return t("feed.note", { city: cityName(cities, d.note.city_id), on, body: d.note.body });
    }
    case "claim.reminder":
      return t("feed.reminder", { id: d.claim.id, city: cityName(cities, d.claim.city_id) });
    case "sitrep.published":
      return t("feed.sitrep", { by, number: d.sitrep.number });
    case "offer.made":
    case "offer.countered":
    case "offer.accepted":
    case "offer.declined":
    case "offer.withdrawn":
    case "offer.expired": {
      const o = d.offer;
      const what = t("feed.offer.what", {
        city: cityName(cities, o.city_id), units: unitsOf(o.resource, o.quantity),
        resource: resourceLabel(o.resource), id: o.id,
      });
      if (event.type === "offer.made") return t("feed.offer.made", { what });
      if (event.type === "offer.countered") {
        return t("feed.offer.countered", { what, units: unitsOf(o.resource, o.counter_quantity) });
      }
      const status = t(`offer_status.${event.type.slice("offer.".length)}`);
      return o.end_reason ? t("feed.offer.ended_because", { what, status, reason: o.end_reason }) : t("feed.offer.ended", { what, status });
    }
    default:
      return event.type;
  }
}
