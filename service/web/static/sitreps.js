// The manager console's situation reports of one incident: publish the next one for a
// period, and the list of those published, each linking to its printable page.

import { h } from "./dom.js";
import { utc } from "./format.js";
import { notify } from "./notices.js";
import { t } from "./i18n.js";

/** An <input type=datetime-local> value as an ISO time with its offset (UTC). */
const isoOf = (value) => (value ? new Date(value).toISOString() : null);

function localValue(iso) {
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** The panel for `incident`; `refresh()` reloads the list (on `sitrep.published`). */
export function sitrepPanel(api, incident) {
  const list = h("ol", { class: "sitrep-list", id: "sitrep-list", reversed: true });
  const from = h("input", { id: "sitrep-from", name: "period_from", type: "datetime-local", required: true });
  const to = h("input", { id: "sitrep-to", name: "period_to", type: "datetime-local" });
  const error = h("p", { class: "form-error", id: "sitrep-error", role: "alert" });
  const form = h("form", { class: "sitrep-form", id: "sitrep-form" },
    h("div", { class: "field" }, h("label", { for: "sitrep-from" }, t("sitreps.from")), from),
    h("div", { class: "field" }, h("label", { for: "sitrep-to" }, t("sitreps.to")), to),
    h("button", { type: "submit", class: "primary small", id: "publish-sitrep" }, t("sitreps.publish")),
    error,
  );
  let latestEnd = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = { period_from: isoOf(from.value) };
      if (to.value) body.period_to = isoOf(to.value);
      await api(`/incidents/${incident.id}/sitreps`, { method: "POST", body });
      to.value = "";
      await refresh();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });

  async function refresh() {
    try {
      const page = await api(`/incidents/${incident.id}/sitreps?limit=50`);
      list.replaceChildren(
        ...page.data.map((s) =>
          h("li", { dataset: { number: s.number } },
            h("a", { href: `/incidents/${incident.id}/sitreps/${s.number}` }, t("sitreps.number", { number: s.number })),
            ` · ${t("sitreps.period", { from: utc(s.period_from), to: utc(s.period_to) })}`,
          ),
        ),
      );
      if (!page.data.length) list.replaceChildren(h("li", { class: "empty" }, t("sitreps.none")));
      latestEnd = page.data[0]?.period_to ?? incident.declared_at;
      if (!from.value || document.activeElement !== from) from.value = localValue(latestEnd);
    } catch (e) {
      notify(t("sitreps.load_failed", { error: e.message }));
    }
  }

  const el = h("details", { class: "sitreps", id: "sitreps" },
    h("summary", {}, t("sitreps.title")),
    h("p", { class: "fine" },
      t("sitreps.lead"), " ",
      h("a", { href: `/incidents/${incident.id}/report` }, t("page.report.title"))),
    form,
    list,
  );
  return { el, refresh };
}
