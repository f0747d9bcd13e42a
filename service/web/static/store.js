// What a page knows of the incidents it follows: snapshots folded forward with the
// events after them, the events themselves for the feed, and orderings over them.

import { priorityRank } from "./vocabulary.js";

/** Most urgent first, then newest. */
export function byUrgency(a, b) {
  return (
    priorityRank(a.priority) - priorityRank(b.priority) ||
    String(b.created_at).localeCompare(String(a.created_at)) ||
    b.id - a.id
  );
}

/**
 * What a page knows of each incident: the snapshot it loaded, folded forward
 * with every event after the snapshot's seq; and the events themselves, for the feed.
 */
export class IncidentBook {
  constructor() {
    this.incidents = new Map();
  }

  entry(id) {
    let entry = this.incidents.get(id);
    if (!entry) {
      entry = {
        id,
        incident: null,
        requests: new Map(),
        claims: new Map(),
        notes: new Map(), // by id, from `note.added` events and the threads read
        lastSeq: 0,
        events: new Map(),
        history: "none",
      };
      this.incidents.set(id, entry);
    }
    return entry;
  }

  /** Fetch an incident's snapshot, one fetch at a time; true when it was loaded. */
  async fetch(api, id) {
    const entry = this.entry(id);
    if (entry.loading) return false;
    entry.loading = true;
    try {
      const detail = await api(`/incidents/${id}`);
      if (detail.last_seq >= entry.lastSeq) this.load(detail);
      return true;
    } finally {
      entry.loading = false;
    }
  }

  /** Replace an incident's state with a snapshot (`IncidentDetail`). */
  load(detail) {
    const entry = this.entry(detail.id);
    const { requests, claims, ...incident } = detail;
    entry.incident = incident;
    entry.requests = new Map(requests.map((r) => [r.id, r]));
    entry.claims = new Map(claims.map((c) => [c.id, c]));
    entry.lastSeq = detail.last_seq;
    return entry;
  }

  /** Fold one event in; false when the state already had it. The feed keeps it either way. */
  apply(event) {
    const entry = this.entry(event.incident_id);
    entry.events.set(event.seq, event);
    // A note never changes once written: fold it in whenever it arrives, even from history.
    if (event.data?.note) entry.notes.set(event.data.note.id, event.data.note);
    if (event.seq <= entry.lastSeq) return false;
    entry.lastSeq = event.seq;
    const data = event.data || {};
    if (data.incident) entry.incident = { ...entry.incident, ...data.incident };
    if (data.checklists) entry.incident = { ...entry.incident, checklists: data.checklists };
    if (data.request) entry.requests.set(data.request.id, data.request);
    if (data.claim) entry.claims.set(data.claim.id, data.claim);
    if (entry.incident && entry.incident.last_seq < event.seq) {
      entry.incident = { ...entry.incident, last_seq: event.seq };
    }
    return true;
  }

  /** The `since` of a subscribe: the last seq applied, per incident. */
  since() {
    const since = {};
    for (const entry of this.incidents.values()) {
      if (entry.lastSeq > 0) since[entry.id] = entry.lastSeq;
    }
    return since;
  }

  /** Load every event of an incident for its feed (once per incident). */
  async loadHistory(api, id) {
    const entry = this.entry(id);
    if (entry.history !== "none") return false;
    entry.history = "loading";
    try {
      let after = 0;
      for (;;) {
        const page = await api(`/incidents/${id}/events?after=${after}&limit=1000`);
        for (const event of page.data) this.apply(event);
        if (page.next_after === null || page.next_after === undefined) break;
        after = page.next_after;
      }
      entry.history = "done";
    } catch (error) {
      entry.history = "none";
      throw error;
    }
    return true;
  }

  /**
   * Cities each request reaches, with the ring that first reached them, from the
   * `request.raised` and `request.escalated` events (targets are not exposed otherwise).
   */
  reach(id) {
    const entry = this.entry(id);
    const reached = new Map();
    const home = entry.incident?.city_id;
    const note = (cityId, ring) => {
      if (cityId === home) return;
      if (!reached.has(cityId) || reached.get(cityId) > ring) reached.set(cityId, ring);
    };
    for (const event of entry.events.values()) {
      if (event.type === "request.raised") {
        for (const cityId of event.audience?.cities || []) note(cityId, event.data.request.ring);
      } else if (event.type === "request.escalated") {
        for (const cityId of event.data.reached_city_ids || []) note(cityId, event.data.to_ring);
        for (const cityId of event.audience?.cities || []) note(cityId, event.data.to_ring);
      }
    }
    return reached;
  }
}

/** Units of a request by the state of its claims: what the progress bars draw. */
export function claimBreakdown(entry, requestId) {
  const parts = { claimed: 0, accepted: 0, en_route: 0, on_site: 0 };
  for (const claim of entry.claims.values()) {
    if (claim.request_id !== requestId) continue;
    if (claim.status === "released") parts.on_site += claim.quantity;
    else if (claim.status in parts) parts[claim.status] += claim.quantity;
  }
  return parts;
}

