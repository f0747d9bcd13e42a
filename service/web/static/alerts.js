// Alerts that reach a person: a browser notification (once the person turned them on, by a
// click, never on load), an optional sound, a count in the tab title, and new critical
// requests announced to screen readers. Each person chooses which alerts they get; the
// choice is kept in localStorage, per token.

import { h } from "./dom.js";
import { cityName, resourceLabel, until, unitsOf } from "./format.js";

/** Every kind of alert, with the words a person chooses it by. */
export const ALERT_KINDS = {
  critical: "A new critical request for my city",
  waiting: "A claim waiting for my acceptance",
  lapse: "A claim about to lapse unaccepted (5 minutes before)",
  ended: "A claim of my city declined or expired",
  escalated: "A request of my city escalated to a wider ring",
};
// How long before an unaccepted claim lapses its manager is warned.
export const LAPSE_WARNING_MS = 5 * 60_000;

const what = (request, quantity) =>
  `${unitsOf(request.resource, quantity)} of ${resourceLabel(request.resource).toLowerCase()}`;

/** The alert an event raises for the person `me` ({kind, title, body, key}), or null. */
export function alertFor(event, me, cities) {
  const d = event.data || {};
  const request = d.request;
  if (!request) return null;
  const mine = request.city_id === me.city_id;
  switch (event.type) {
    case "request.raised":
    case "request.escalated": {
      const reachesMe =
        event.type === "request.raised"
          ? (event.audience?.cities || []).includes(me.city_id)
          : (d.reached_city_ids || []).includes(me.city_id);
      if (!mine && reachesMe && request.priority === "critical" && request.remaining_quantity > 0) {
        return {
          kind: "critical",
          key: `critical-${request.id}`,
          title: `Critical request: ${resourceLabel(request.resource)}`,
          body: `${cityName(cities, request.city_id)} asks for ${what(request, request.remaining_quantity)}.`,
        };
      }
      if (mine && event.type === "request.escalated") {
        return {
          kind: "escalated",
          key: `escalated-${request.id}-${d.to_ring}`,
          title: "Request escalated",
          body: `${resourceLabel(request.resource)} (#${request.id}) moved to ring ${d.to_ring}: ${request.remaining_quantity} still unclaimed.`,
        };
      }
      return null;
    }
    case "claim.made":
      if (!mine) return null;
      return {
        kind: "waiting",
        key: `waiting-${d.claim.id}`,
        title: "Claim waiting for your acceptance",
        body: `${cityName(cities, d.claim.city_id)} claims ${what(request, d.claim.quantity)}.`,
      };
    case "claim.changed":
      if (d.claim.city_id !== me.city_id || !["declined", "expired"].includes(d.claim.status)) return null;
      return {
        kind: "ended",
        key: `ended-${d.claim.id}`,
        title: `Your claim was ${d.claim.status}`,
        body: `${what(request, d.claim.quantity)} (claim #${d.claim.id})${d.claim.end_reason ? `: ${d.claim.end_reason}` : ""}.`,
      };
    default:
      return null;
  }
}

/** The lapse warning for a claim of the manager's city still waiting, once it is near. */
export function lapseAlert(claim, request, cities, now = Date.now()) {
  if (claim.status !== "claimed" || !claim.expires_at) return null;
  const left = new Date(claim.expires_at).getTime() - now;
  if (left <= 0 || left > LAPSE_WARNING_MS) return null;
  return {
    kind: "lapse",
    key: `lapse-${claim.id}`,
    title: "Claim about to lapse",
    body: `${cityName(cities, claim.city_id)}’s claim of ${what(request, claim.quantity)} lapses ${until(claim.expires_at, now)} unless accepted.`,
  };
}

export class Alerts {
  /** `kinds`: the kinds this page can raise; `me`: who is signed in. */
  constructor({ me, cities, kinds }) {
    this.me = me;
    this.cities = cities;
    this.kinds = kinds;
    this.storageKey = `aidmesh.alerts.${me.token_id ?? "admin"}`;
    this.prefs = this.load();
    this.given = new Set(); // keys of alerts already raised: each at most once
    this.unseen = 0;
    this.baseTitle = document.title;
    this.audio = null;
    this.announcer = h("div", { class: "visually-hidden", id: "alert-announcer", "aria-live": "assertive", "aria-atomic": "true" });
    this.status = h("p", { class: "fine alerts-status", id: "alerts-status" });
    this.panel = this.buildPanel();
    const seen = () => this.seen();
    document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && seen());
    document.addEventListener("pointerdown", seen);
    document.addEventListener("keydown", seen);
  }

  load() {
    const defaults = { sound: false, ...Object.fromEntries(this.kinds.map((k) => [k, true])) };
    try {
      return { ...defaults, ...JSON.parse(localStorage.getItem(this.storageKey) || "{}") };
    } catch {
      return defaults;
    }
  }

  save() {
    localStorage.setItem(this.storageKey, JSON.stringify(this.prefs));
  }

  buildPanel() {
    const choice = (name, label) =>
      h("label", { class: "check" },
        h("input", {
          type: "checkbox",
          name,
          checked: Boolean(this.prefs[name]),
          onchange: (event) => {
            this.prefs[name] = event.currentTarget.checked;
            this.save();
            if (name === "sound" && this.prefs.sound) this.beep(); // a sample, and unlocks audio
          },
        }),
        ` ${label}`,
      );
    const ask = h("button", { type: "button", class: "secondary small", id: "alerts-permission", onclick: () => this.askPermission() }, "Turn on browser notifications");
    this.askButton = ask;
    this.showPermission();
    // The person may also allow or block notifications in the browser's site settings.
    navigator.permissions?.query({ name: "notifications" }).then(
      (status) => status.addEventListener("change", () => this.showPermission()),
      () => {},
    );
    return h("details", { class: "panel alerts-panel", id: "alerts-panel" },
      h("summary", {}, "Alerts"),
      h("p", { class: "muted small" }, "Choose what to be alerted about. Browser notifications reach you while this tab is in the background; the count of new alerts shows in the tab's title."),
      h("fieldset", { class: "alert-kinds" },
        h("legend", { class: "visually-hidden" }, "Alert me about"),
        this.kinds.map((kind) => choice(kind, ALERT_KINDS[kind])),
        choice("sound", "Play a sound"),
      ),
      h("div", { class: "actions" }, ask),
      this.status,
      this.announcer,
    );
  }

  permission() {
    return "Notification" in window ? Notification.permission : "unsupported";
  }

  showPermission() {
    const state = this.permission();
    this.askButton.hidden = state !== "default";
    this.status.textContent = {
      granted: "Browser notifications are on.",
      denied: "Browser notifications are blocked for this site; allow them in the browser's site settings to get them.",
      default: "Browser notifications are off until you turn them on.",
      unsupported: "This browser cannot show notifications; alerts show in the tab's title.",
    }[state];
  }

  async askPermission() {
    if (this.permission() === "default") await Notification.requestPermission();
    this.showPermission();
  }

  /** Raise the alert an event is for, if any. */
  consider(event) {
    const alert = alertFor(event, this.me, this.cities);
    if (alert) this.raise(alert);
  }

  /** Raise lapse warnings for `waiting`: [claim, request] of claims awaiting acceptance. */
  checkLapses(waiting) {
    for (const [claim, request] of waiting) {
      const alert = lapseAlert(claim, request, this.cities);
      if (alert) this.raise(alert);
    }
  }

  raise(alert) {
    if (!this.kinds.includes(alert.kind) || this.given.has(alert.key)) return;
    this.given.add(alert.key);
    // Screen readers hear of a new critical request whatever else is chosen.
    if (alert.kind === "critical") this.announcer.textContent = `${alert.title}. ${alert.body}`;
    if (!this.prefs[alert.kind]) return;
    this.unseen += 1;
    this.showCount();
    if (this.prefs.sound) this.beep();
    if (this.permission() === "granted") {
      try {
        new Notification(alert.title, { body: alert.body, tag: `aidmesh-${alert.key}` });
      } catch {
        // Some browsers only notify from a service worker; the title count still shows.
      }
    }
  }

  showCount() {
    document.title = this.unseen ? `(${this.unseen}) ${this.baseTitle}` : this.baseTitle;
  }

  seen() {
    if (!this.unseen) return;
    this.unseen = 0;
    this.showCount();
  }

  beep() {
    try {
      this.audio ??= new AudioContext();
      const tone = this.audio.createOscillator();
      const gain = this.audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.08;
      tone.connect(gain).connect(this.audio.destination);
      tone.start();
      tone.stop(this.audio.currentTime + 0.2);
    } catch {
      // No audio output: the other signals still reach the person.
    }
  }
}
