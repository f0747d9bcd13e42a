// Offers to an incident: the list the board, the manager console and the responder
// console show, the requesting manager's answers (accept, decline, counter), the offering
// city's follow-ups (accept a counter, withdraw) and, for a peer city, the form that makes
// one. Kept current by the incident's `offer.*` events.

import { h } from "./dom.js";
import { fetchAll } from "./api.js";
import { catalogue, cityName, clockElement, resourceLabel, unitsOf } from "./format.js";
import { askDetails, busy, notify } from "./notices.js";
import { t } from "./i18n.js";
import { isOpenOffer, offerMoves } from "./vocabulary.js";

/** The button of a move: "offers.move.accepted" and so on. */
const moveLabel = (status) => t(`offers.move.${status}`);

export class OfferPanel {
  /** `canOffer`: the page makes offers for the signed-in city (the responder console). */
  constructor({ api, me, cities, canOffer = false }) {
    this.api = api;
    this.me = me;
    this.cities = cities;
    this.canOffer = canOffer;
    this.incident = null;
    this.offers = new Map();
    this.packages = [];
    this.list = h("ul", { class: "offer-list", id: "offer-list", "aria-live": "polite" });
    this.form = h("form", { class: "offer-form", id: "offer-form", hidden: true, onsubmit: (e) => this.submit(e) });
    this.title = h("h2", { id: "offers-title" }, t("offers.title"));
    this.el = h("section", { class: "panel offers", id: "offers", "aria-labelledby": "offers-title" },
      this.title, this.form, this.list);
    this.render();
  }

  /** Show the offers made to `incident` (null: none selected). */
  async show(incident) {
    if (this.incident?.id === incident?.id) return;
    this.incident = incident;
    this.offers.clear();
    this.render();
    if (!incident) return;
    const rows = await fetchAll(this.api, `/incidents/${incident.id}/offers`);
    if (this.incident?.id !== incident.id) return;
    for (const offer of rows) this.offers.set(offer.id, offer);
    if (this.canOffer) await this.loadPackages();
    this.render();
  }

  /** Fold in an event; true when it was one of the shown incident's offers. */
  apply(event) {
    const offer = event.data?.offer;
    if (!offer || offer.incident_id !== this.incident?.id) return false;
    const known = this.offers.get(offer.id);
    if (known && known.updated_at > offer.updated_at) return false;
    this.offers.set(offer.id, offer);
    this.render();
    return true;
  }

  async loadPackages() {
    try {
      this.packages = await fetchAll(this.api, `/cities/${this.me.city_id}/roster`);
    } catch {
      this.packages = []; // the form still offers catalogued resources
    }
  }

  party(offer) {
    if (offer.city_id === this.me.city_id) return "offerer";
    if (this.incident?.city_id === this.me.city_id && this.me.role === "manager") return "requester";
    return null;
  }

  render() {
    const incident = this.incident;
    this.title.textContent = incident ? t("offers.title_to", { title: incident.title }) : t("offers.title");
    const ownIncident = incident && incident.city_id === this.me.city_id;
    this.form.hidden = !(this.canOffer && incident && !ownIncident && incident.status === "active");
    if (!this.form.hidden && !this.form.childElementCount) this.form.append(...this.formFields());
    const offers = [...this.offers.values()].sort((a, b) => b.id - a.id);
    this.list.replaceChildren(
      ...(offers.length
        ? offers.map((offer) => this.card(offer))
        : [h("li", { class: "muted" }, incident ? t("offers.none") : t("offers.choose_incident"))]),
    );
  }

  card(offer) {
    const terms = offer.counter_quantity
      ? h("span", { class: "counter" }, ` · ${t("offers.countered_terms", { units: unitsOf(offer.resource, offer.counter_quantity) })} `,
        clockElement(offer.counter_ready_at ?? offer.ready_at))
      : "";
    const party = this.party(offer);
    const moves = party ? offerMoves(offer.status, party) : [];
    return h("li", { class: `offer offer-${offer.status}`, id: `offer-${offer.id}`, dataset: { status: offer.status } },
      h("div", {},
        h("strong", {}, cityName(this.cities, offer.city_id)),
        ` ${t("offers.offers_units", { units: unitsOf(offer.resource, offer.quantity), resource: resourceLabel(offer.resource) })} `,
        clockElement(offer.ready_at),
        terms,
        " ",
        h("span", { class: `badge offer-status` }, t(`offer_status.${offer.status}`)),
      ),
      offer.note ? h("p", { class: "muted" }, offer.note) : "",
      offer.end_reason ? h("p", { class: "muted" }, t("offers.reason_line", { reason: offer.end_reason })) : "",
      isOpenOffer(offer) ? h("p", { class: "muted" }, `${t("offers.lapses")} `, clockElement(offer.expires_at)) : "",
      moves.length
        ? h("div", { class: "actions" }, ...moves.map((status) =>
          h("button", {
            type: "button",
            class: status === "accepted" ? "small" : "secondary small",
            dataset: { move: status },
            onclick: (e) => busy(e.currentTarget, () => this.move(offer, status)),
          }, status === "accepted" && party === "offerer" ? t("offers.accept_counter") : moveLabel(status))))
        : "",
    );
  }

  async move(offer, status) {
    const body = { status };
    if (status === "declined" || status === "withdrawn") {
      const answer = await askDetails(t(`offers.ask.${status}`), moveLabel(status), [
        ["reason", t("offers.reason"), { required: status === "declined", maxlength: 500 }],
      ]);
      if (!answer) return;
      if (answer.reason) body.reason = answer.reason;
    }
    if (status === "countered") {
      const answer = await askDetails(t("offers.ask.countered"), moveLabel("countered"), [
        ["quantity", t("offers.quantity"), { type: "number", min: 1, max: 10000, required: true, value: offer.quantity }],
      ]);
      if (!answer) return;
      body.quantity = Number(answer.quantity);
    }
    const moved = await this.api(`/offers/${offer.id}/status`, { method: "POST", body });
    this.apply({ data: { offer: moved } });
  }

  formFields() {
    const resources = [...catalogue.values()].filter((r) => r.kind !== "information");
    const resource = h("select", { name: "resource", id: "offer-resource", required: true,
      onchange: () => this.fillPackages(resource.value, packageSelect) },
    ...resources.map((r) => h("option", { value: r.id }, resourceLabel(r.id))));
    const packageSelect = h("select", { name: "package_id", id: "offer-package" });
    this.fillPackages(resources[0]?.id, packageSelect);
    return [
      h("label", {}, `${t("offers.resource")} `, resource),
      h("label", {}, `${t("offers.quantity")} `, h("input", { name: "quantity", id: "offer-quantity", type: "number", min: 1, max: 10000, value: 1, required: true })),
      h("label", {}, `${t("offers.ready_in")} `, h("input", { name: "ready_hours", id: "offer-ready", type: "number", min: 0, max: 8760, value: 4, required: true })),
      h("label", {}, `${t("offers.from_package")} `, packageSelect),
      h("label", {}, `${t("offers.note")} `, h("input", { name: "note", id: "offer-note", maxlength: 2000 })),
      h("button", { type: "submit", id: "offer-submit" }, t("offers.offer")),
    ];
  }

  fillPackages(resourceId, select) {
    const holding = this.packages.filter((p) => p.items.some((i) => i.resource === resourceId));
    select.replaceChildren(
      h("option", { value: "" }, t("offers.no_package")),
      ...holding.map((p) => {
        const item = p.items.find((i) => i.resource === resourceId);
        return h("option", { value: p.id }, t("offers.package_left", { name: p.name, count: item.remaining_quantity }));
      }),
    );
  }

  async submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const ready = new Date(Date.now() + Number(data.get("ready_hours")) * 3_600_000);
    const body = {
      resource: data.get("resource"),
      quantity: Number(data.get("quantity")),
      ready_at: ready.toISOString(),
      note: data.get("note") || "",
    };
    if (data.get("package_id")) body.package_id = Number(data.get("package_id"));
    const button = form.querySelector("button[type=submit]");
    await busy(button, async () => {
      const offer = await this.api(`/incidents/${this.incident.id}/offers`, {
        method: "POST",
        body,
        headers: { "Idempotency-Key": `offer-${Date.now()}-${Math.random().toString(36).slice(2)}` },
      });
      this.apply({ data: { offer } });
      notify(t("offers.offered", { units: unitsOf(offer.resource, offer.quantity), resource: resourceLabel(offer.resource) }), "info");
    });
  }
}
