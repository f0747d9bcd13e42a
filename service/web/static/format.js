// Formatting for people: status and resource labels, units, clock times, times that
// keep themselves current ("4 min ago", "in 12:04") and one line per event for the feed.

import { h } from "./dom.js";

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

// Where a status reads better than its slug spelled out.
const WORDING = { partially_claimed: "Partly claimed" };

/** "en_route" → "En route". */
export const statusLabel = (status) =>
  WORDING[status] || capitalise(String(status ?? "").replaceAll("_", " ")) || status;

export const typeLabel = (slug) => capitalise(String(slug).replaceAll("-", " "));

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
  const name = inSentence(resourceLabel(resourceId));
  const unit = catalogue.get(resourceId)?.unit || "unit";
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
  return new Date(iso).toLocaleTimeString([], { ...CLOCK, timeZoneName: "short" });
}

/** "2024-05-01 14:03:07 GMT+3": a moment with its zone, in the reader's locale (a
 * different `timeZone`, an IANA name, shows it there instead). */
export function zonedTime(iso, timeZone = undefined) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], { ...DATED, timeZoneName: "short", timeZone });
}

/** Where an incident's local time is told: its city's zone and name, or null. */
export function placeOf(cities, cityId) {
  const city = cities?.get(cityId);
  return city?.time_zone ? { zone: city.time_zone, name: city.name } : null;
}

/** The hover text of a time: the viewer's, the incident's local time, and UTC (ISO 8601). */
export function timeTitle(iso, place = null) {
  const lines = [`${zonedTime(iso)} (your time)`];
  if (place) {
    try {
      lines.push(`${zonedTime(iso, place.zone)} in ${place.name} (local time)`);
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

/** An ISO time as reports print it: date and time in UTC, seconds included. */
export function utc(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, " UTC") : "—";
}

/** Seconds as a duration: "45 s", "10 min", "10 min 5 s", "1 h 5 min". */
export function seconds(value) {
  if (value === null || value === undefined) return "—";
  const s = Math.round(value);
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return s % 60 ? `${minutes} min ${s % 60} s` : `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
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
  return ms > 0 ? `overdue ${ms < 60_000 ? "<1 min" : spell(ms)}` : `arrives ${until(iso, now)}`;
}

/** A <time> for an ETA that keeps itself current and turns `overdue` when it passes. */
export function etaTime(iso) {
  if (!iso) return null;
  const el = h("time", { class: "eta", datetime: iso, title: `ETA ${new Date(iso).toLocaleString()}`, dataset: { eta: iso } });
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

/** What a `request.updated` event changed, in words: "quantity 4 → 6, priority normal → critical". */
function describeRequestChanges(changes) {
  const words = [];
  const time = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "none");
  if (changes.quantity) words.push(`units ${changes.quantity.old} → ${changes.quantity.new}`);
  if (changes.priority) words.push(`priority ${changes.priority.old} → ${changes.priority.new}`);
  if (changes.needed_by) words.push(`needed by ${time(changes.needed_by.new)}`);
  if (changes.report_to) words.push(changes.report_to.new ? `report to “${changes.report_to.new}”` : "report-to removed");
  const lat = changes.report_lat;
  const lon = changes.report_lon;
  if (lat || lon) {
    const [before, after] = [(lat ?? lon).old, (lat ?? lon).new];
    words.push(after == null ? "staging point removed from the map" : before == null ? "staging point set on the map" : "staging point moved on the map");
  }
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
    case "request.updated":
      return `${by} edited ${name}: ${describeRequestChanges(d.changes || {})}`;
    case "request.escalated": {
      const names = (d.reached_city_ids || []).map((id) => cityName(cities, id));
      const why = d.cause === "passes" ? " (every city of its ring passed)" : "";
      return `${name} moved to ring ${d.to_ring}${why}${names.length ? `, reaching ${names.join(", ")}` : ""}`;
    }
    case "request.passed":
      return `${cityName(cities, d.pass.city_id)} passed on ${name}${d.pass.reason ? `: “${d.pass.reason}”` : ""}`;
    case "request.cancelled":
      return `${name} cancelled`;
    case "request.expired":
      return `${name} expired unfilled`;
    case "request.fulfilled":
      return `${name} ${req.kind === "information" ? "answered" : "fulfilled"}`;
    case "claim.made":
      return `${cityName(cities, d.claim.city_id)} claimed ${unitsOf(req.resource, d.claim.quantity)} of ${name}`;
    case "claim.changed":
      if (req.kind === "information" && d.claim.answer && d.claim.status === "released") {
        return `${cityName(cities, d.claim.city_id)} answered ${name}`;
      }
      return `${cityName(cities, d.claim.city_id)}: ${unitsOf(req.resource, d.claim.quantity)} of ${name} ${statusLabel(d.claim.status).toLowerCase()}`;
    case "checklist.ticked":
      return `${by} ${d.done ? "ticked off" : "unticked"} “${d.text}” (${d.title})`;
    case "note.added": {
      const on = d.note.claim_id ? `claim #${d.note.claim_id}` : `request #${d.note.request_id}`;
      return `${cityName(cities, d.note.city_id)} on ${on}: “${d.note.body}”`;
    }
    case "claim.reminder":
      return `Claim #${d.claim.id} by ${cityName(cities, d.claim.city_id)} is waiting for acceptance`;
    case "sitrep.published":
      return `${by} published situation report ${d.sitrep.number}`;
    case "offer.made":
    case "offer.countered":
    case "offer.accepted":
    case "offer.declined":
    case "offer.withdrawn":
    case "offer.expired": {
      const o = d.offer;
      const what = `${cityName(cities, o.city_id)}'s offer of ${unitsOf(o.resource, o.quantity)} of ${resourceLabel(o.resource)} (#${o.id})`;
      if (event.type === "offer.made") return `${what} made`;
      if (event.type === "offer.countered") return `${what} countered: ${unitsOf(o.resource, o.counter_quantity)}`;
      return `${what} ${event.type.slice("offer.".length)}${o.end_reason ? `: ${o.end_reason}` : ""}`;
    }
    default:
      return event.type;
  }
}
