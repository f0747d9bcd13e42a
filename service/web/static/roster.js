// A city's roster: its packages, each resource's units, the cap and what claims hold
// now. The city's managers add, change and remove packages; every city of its networks
// reads it. Committed units change live: a claim made, released or ended early from a
// package reaches the claiming city's feed with the package's new units.

import { h, syncList, patch, keepTyped } from "./dom.js";
import { catalogue, cityName, resourceLabel, unitsOf } from "./format.js";
import { dateTime, number, t } from "./i18n.js";
import { busy, confirmAction, notify } from "./notices.js";
import { startPage } from "./shell.js";
import { badge } from "./views.js";

startPage({
  hint: t("roster.hint"),
  start: startRoster,
});

/** The cities whose rosters `me` may read: its own and those it shares a network with. */
function readableCities(me, cities) {
  const own = cities.get(me.city_id);
  const networks = new Set(own?.network_ids || []);
  return [...cities.values()]
    .filter((c) => c.id === me.city_id || me.role === "admin" || c.network_ids.some((n) => networks.has(n)))
    .sort((a, b) => (b.id === me.city_id) - (a.id === me.city_id) || a.name.localeCompare(b.name));
}

async function startRoster({ api, me, cities, main, connect }) {
  let cityId = Number(new URLSearchParams(location.hash.slice(1)).get("city")) || me.city_id;
  const readable = readableCities(me, cities);
  if (!readable.some((c) => c.id === cityId)) cityId = me.city_id;
  let packages = new Map();

  const canEdit = () => me.role === "manager" && me.city_id === cityId;
  const heading = h("h1", { id: "roster-title" });
  const picker = h("label", { class: "field" }, t("manage.col.city"),
    h("select", { id: "roster-city", onchange: (e) => choose(Number(e.target.value)) },
      readable.map((c) => h("option", { value: c.id, selected: c.id === cityId }, c.name)),
    ),
  );
  const addBox = h("details", { class: "declare", id: "add-package" },
    h("summary", {}, t("roster.add_summary")),
    addForm(),
  );
  const list = h("ul", { class: "incident-list roster", id: "package-list" });
  main.append(
    h("div", { class: "console manage" },
      h("section", { class: "panel col-main", "aria-labelledby": "roster-title" },
        heading, picker, addBox, list,
      ),
    ),
  );

  async function load() {
    const page = await api(`/cities/${cityId}/roster?limit=200`);
    packages = new Map(page.data.map((p) => [p.id, p]));
    render();
  }

  function choose(id) {
    cityId = id;
    history.replaceState(null, "", `#city=${id}`);
    load().catch((error) => notify(error.message));
  }

  function render() {
    heading.textContent = t("roster.of", { city: cityName(cities, cityId) });
    addBox.hidden = !canEdit();
    const items = [...packages.values()];
    if (!items.length) {
      list.replaceChildren(h("li", { class: "empty" }, canEdit()
        ? t("roster.none_own")
        : t("roster.none")));
      return;
    }
    list.querySelector(".empty")?.remove();
    syncList(list, items, (p) => p.id, () => h("li", { class: "card package" }), (li, p) => {
      li.id = `package-${p.id}`;
      li.dataset.packageId = p.id;
      patch(li, JSON.stringify([p, canEdit()]), () => packageCard(p));
    });
  }

  function packageCard(p) {
    const availability = p.available_now
      ? badge(t("roster.available"), "waiting")
      : badge(
          p.unavailable_until ? t("roster.unavailable_until", { time: dateTime(p.unavailable_until) }) : t("roster.unavailable"),
          "closed",
          p.unavailable_reason || undefined,
        );
    return [
      h("h2", { class: "package-name" }, p.name, " ", availability),
      h("table", { class: "claims-table package-items" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("manage.resource")), h("th", {}, t("manage.units")), h("th", {}, t("roster.cap")),
          h("th", {}, t("roster.committed")), h("th", {}, t("roster.remaining")),
        )),
        h("tbody", {}, p.items.map((item) => h("tr", { dataset: { resource: item.resource } },
          h("td", {}, resourceLabel(item.resource)),
          h("td", { class: "units" }, unitsOf(item.resource, item.quantity)),
          h("td", { class: "cap" }, String(item.cap_quantity)),
          h("td", { class: "committed" }, String(item.committed_quantity)),
          h("td", { class: "remaining" }, String(item.remaining_quantity)),
        ))),
      ),
      h("p", { class: "meta" },
        h("span", {}, t("roster.ready_within", { hours: p.readiness_hours })),
        h("span", {}, t("roster.self_sufficient", { count: p.self_sufficiency_days })),
        h("span", {}, t("roster.cap_at_once", { percent: p.cap_percent })),
        p.cost_estimate ? h("span", {}, t("roster.about", { amount: number(p.cost_estimate), currency: p.cost_currency })) : null,
      ),
      p.limitations ? h("p", { class: "detail" }, h("span", { class: "label" }, `${t("roster.limitations")} `), p.limitations) : null,
      p.contact ? h("p", { class: "detail" }, h("span", { class: "label" }, `${t("roster.contact")} `), p.contact) : null,
      canEdit() ? editForm(p) : null,
    ];
  }

  // Editing ---------------------------------------------------------------------------

  function field(label, input) {
    return h("label", { class: "field" }, label, input);
  }

  function resourceSelect(id, selected) {
    return h("select", { id, required: true },
      [...catalogue.values()]
        .sort((a, b) => resourceLabel(a.id).localeCompare(resourceLabel(b.id)))
        .map((r) => h("option", { value: r.id, selected: r.id === selected }, resourceLabel(r.id))),
    );
  }

  function addForm() {
    const name = h("input", { id: "package-name", required: true, maxlength: 200 });
    const resource = resourceSelect("package-resource");
    const units = h("input", { id: "package-units", type: "number", min: 1, max: 10000, value: 1, required: true });
    const readiness = h("input", { id: "package-readiness", type: "number", min: 0, max: 8760, value: 4, required: true });
    const days = h("input", { id: "package-days", type: "number", min: 0, max: 365, value: 3, required: true });
    const cap = h("input", { id: "package-cap", type: "number", min: 1, max: 100, value: 100, required: true });
    const cost = h("input", { id: "package-cost", type: "number", min: 0, value: 0 });
    const currency = h("input", { id: "package-currency", value: "USD", pattern: "[A-Z]{3}", maxlength: 3 });
    const contact = h("input", { id: "package-contact", maxlength: 500 });
    const limitations = h("textarea", { id: "package-limitations", maxlength: 2000, rows: 2 });
    const submit = h("button", { type: "submit", class: "primary", id: "package-add" }, t("roster.add"));
    const form = h("form", { class: "stack" },
      field(t("people.name"), name), field(t("manage.resource"), resource), field(t("manage.units"), units),
      field(t("roster.ready_field"), readiness), field(t("roster.days_field"), days),
      field(t("roster.cap_field"), cap),
      field(t("roster.cost"), cost), field(t("roster.currency"), currency),
      field(t("roster.contact"), contact), field(t("roster.limitations"), limitations),
      submit,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(submit, async () => {
        const made = await api(`/cities/${cityId}/roster`, {
          method: "POST",
          body: {
            name: name.value.trim(),
            items: [{ resource: resource.value, quantity: Number(units.value) }],
            readiness_hours: Number(readiness.value),
            self_sufficiency_days: Number(days.value),
            cap_percent: Number(cap.value),
            cost_estimate: Number(cost.value || 0),
            cost_currency: currency.value.trim() || "USD",
            contact: contact.value.trim(),
            limitations: limitations.value.trim(),
          },
        });
        packages.set(made.id, made);
        form.reset();
        notify(t("roster.added", { name: made.name }), "ok");
        render();
      });
    });
    return form;
  }

  function editForm(p) {
    const units = p.items.map((item) => h("input", {
      type: "number", min: 1, max: 10000, value: item.quantity, class: "qty",
      id: `units-${p.id}-${item.resource}`, dataset: { keep: `units-${item.resource}`, resource: item.resource },
      oninput: keepTyped,
    }));
    const cap = h("input", {
      type: "number", min: 1, max: 100, value: p.cap_percent, class: "qty", id: `cap-${p.id}`,
      dataset: { keep: "cap" }, oninput: keepTyped,
    });
    const save = h("button", { type: "submit", class: "secondary small", id: `save-${p.id}` }, t("roster.save"));
    const form = h("form", { class: "claim-form package-edit", "aria-label": t("roster.change", { name: p.name }) },
      p.items.map((item, i) => field(t("roster.units_of", { resource: resourceLabel(item.resource) }), units[i])),
      field(t("roster.cap_percent"), cap),
      save,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(save, () => change(p, {
        items: units.map((u) => ({ resource: u.dataset.resource, quantity: Number(u.value) })),
        cap_percent: Number(cap.value),
      }));
    });
    const reason = h("input", { id: `reason-${p.id}`, placeholder: t("roster.why"), maxlength: 500, dataset: { keep: "reason" }, oninput: keepTyped });
    const hours = h("input", { id: `back-in-${p.id}`, type: "number", min: 1, max: 8760, placeholder: t("manage.hours"), class: "qty", dataset: { keep: "hours" }, oninput: keepTyped });
    const availability = p.available
      ? h("div", { class: "actions" },
          field(t("roster.back_in"), hours), reason,
          h("button", {
            type: "button", class: "secondary small", id: `unavailable-${p.id}`,
            onclick: (event) => busy(event.currentTarget, () => change(p, {
              available: false,
              unavailable_reason: reason.value.trim(),
              ...(Number(hours.value) > 0
                ? { unavailable_until: new Date(Date.now() + Number(hours.value) * 3_600_000).toISOString() }
                : {}),
            })),
          }, t("roster.mark_unavailable")),
        )
      : h("div", { class: "actions" },
          h("button", {
            type: "button", class: "secondary small", id: `available-${p.id}`,
            onclick: (event) => busy(event.currentTarget, () => change(p, { available: true, unavailable_until: null, unavailable_reason: "" })),
          }, t("roster.mark_available")),
        );
    const remove = h("button", {
      type: "button", class: "quiet", id: `remove-${p.id}`,
      onclick: async (event) => {
        const button = event.currentTarget;
        const ok = await confirmAction(t("roster.remove_question", { name: p.name }), t("roster.remove"), t("roster.remove_detail"));
        if (!ok) return;
        busy(button, async () => {
          await api(`/cities/${cityId}/roster/${p.id}`, { method: "DELETE" });
          packages.delete(p.id);
          render();
        });
      },
    }, t("roster.remove"));
    return h("div", { class: "package-actions" }, form, availability, remove);
  }

  async function change(p, body) {
    const changed = await api(`/cities/${cityId}/roster/${p.id}`, { method: "PATCH", body });
    packages.set(changed.id, changed);
    render();
  }

  // Live ------------------------------------------------------------------------------

  // Events of different incidents may arrive out of commit order (a replay resumes each
  // incident by itself): shortly after a package's event, read the roster as it is.
  let reconciling = null;
  function reconcile() {
    clearTimeout(reconciling);
    reconciling = setTimeout(() => load().catch((error) => notify(error.message)), 500);
  }

  /** A claim's event carries its package's units as the claim left them. */
  function applyPackage(state) {
    const p = packages.get(state?.id);
    if (!p || state.city_id !== cityId) return;
    const items = p.items.map((item) => (item.resource === state.resource
      ? { ...item, quantity: state.quantity, cap_quantity: state.cap_quantity, committed_quantity: state.committed_quantity, remaining_quantity: state.remaining_quantity }
      : item));
    packages.set(p.id, { ...p, items });
    render();
  }

  await load();
  if (me.city_id !== null) {
    connect({
      // The city's own feed: claims from its packages reach it wherever they are made.
      scopes: () => [`city:${me.city_id}`],
      since: () => undefined,
      onEvent: (event) => {
        if (!event.data?.package) return;
        applyPackage(event.data.package);
        reconcile();
      },
      onReset: () => load().catch((error) => notify(error.message)),
    });
  }
}
