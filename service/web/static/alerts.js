// Alerts that reach a person: a browser notification (once the person turned them on, by a
// click, never on load), an optional sound, a count in the tab title, and new critical
// requests announced to screen readers. Each person chooses which alerts they get; the
// choice is kept in localStorage, per token.

import { h } from "./dom.js";
import { cityName, inText, resourceLabel, statusLabel, until, unitsOf } from "./format.js";
import { t } from "./i18n.js";

/** Every kind of alert, with the words a person chooses it by. */
export const ALERT_KINDS = {
  critical: "alerts.kind.critical",
  waiting: "alerts.kind.waiting",
  lapse: "alerts.kind.lapse",
  ended: "alerts.kind.ended",
  escalated: "alerts.kind.escalated",
};
// How long before an unaccepted claim lapses its manager is warned.
export const LAPSE_WARNING_MS = 5 * 60_000;

const what = (request, quantity) =>
  t("manage.units_of_resource", { units: unitsOf(request.resource, quantity), resource: inText(resourceLabel(request.resource)) });

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
          title: t("alerts.critical_title", { resource: resourceLabel(request.resource) }),
          body: t("alerts.critical_body", { city: cityName(cities, request.city_id), what: what(request, request.remaining_quantity) }),
        };
      }
      if (mine && event.type === "request.escalated") {
        return {
          kind: "escalated",
          key: `escalated-${request.id}-${d.to_ring}`,
          title: t("event_type.request.escalated"),
          body: t("alerts.escalated_body", { resource: resourceLabel(request.resource), id: request.id, ring: d.to_ring, count: request.remaining_quantity }),
        };
      }
      return null;
    }
    case "claim.made":
      if (!mine) return null;
      return {
        kind: "waiting",
        key: `waiting-${d.claim.id}`,
        title: t("alerts.waiting_title"),
        body: t("alerts.waiting_body", { city: cityName(cities, d.claim.city_id), what: what(request, d.claim.quantity) }),
      };
    case "claim.changed":
      if (d.claim.city_id !== me.city_id || !["declined", "expired"].includes(d.claim.status)) return null;
      return {
        kind: "ended",
        key: `ended-${d.claim.id}`,
        title: t("alerts.ended_title", { status: inText(statusLabel(d.claim.status)) }),
        body: t(d.claim.end_reason ? "alerts.ended_body_reason" : "alerts.ended_body", { what: what(request, d.claim.quantity), id: d.claim.id, reason: d.claim.end_reason }),
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
    title: t("alerts.lapse_title"),
    body: t("alerts.lapse_body", { city: cityName(cities, claim.city_id), what: what(request, claim.quantity), when: until(claim.expires_at, now) }),
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
    const ask = h("button", { type: "button", class: "secondary small", id: "alerts-permission", onclick: () => this.askPermission() }, t("alerts.turn_on"));
    this.askButton = ask;
    this.showPermission();
    // The person may also allow or block notifications in the browser's site settings.
    navigator.permissions?.query({ name: "notifications" }).then(
      (status) => status.addEventListener("change", () => this.showPermission()),
      () => {},
    );
    return h("details", { class: "panel alerts-panel", id: "alerts-panel" },
      h("summary", {}, t("alerts.title")),
      h("p", { class: "muted small" }, t("alerts.lead")),
      h("fieldset", { class: "alert-kinds" },
        h("legend", { class: "visually-hidden" }, t("alerts.legend")),
        this.kinds.map((kind) => choice(kind, t(ALERT_KINDS[kind]))),
        choice("sound", t("alerts.sound")),
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
      granted: t("alerts.granted"),
      denied: t("alerts.denied"),
      default: t("alerts.default"),
      unsupported: t("alerts.unsupported"),
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
