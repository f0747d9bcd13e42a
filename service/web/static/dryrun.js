// A dry run of a declaration, drawn: the requests it would raise and the cities each
// escalation ring would reach with their distances. The library and the manager console
// both show it.

import { h } from "./dom.js";
import { priorityLabel, resourceLabel, unitsOf } from "./format.js";
import { t } from "./i18n.js";

/** The requests a dry run would raise and the cities each ring reaches (nothing written). */
export function dryRunView(run) {
  return h("div", { class: "dry-run" },
    h("p", { class: "fine" }, t("dryrun.lead")),
    h("h3", {}, t("dryrun.requests", { count: run.requests.length })),
    h("ul", { class: "preview-list" },
      run.requests.map((r) => h("li", {}, h("span", {}, priorityLabel(r.priority)), h("span", {}, `${unitsOf(r.resource, r.quantity)} · ${resourceLabel(r.resource)}`), h("span", { class: "muted" }, t(`request_kind.${r.kind}`)))),
    ),
    run.rings.map((ring) =>
      h("div", { class: "ring", dataset: { ring: ring.ring } },
        h("h3", {}, t("dryrun.ring", { ring: ring.ring, count: ring.cities.length })),
        h("ul", { class: "ring-cities" },
          ring.cities.map((c) => h("li", {}, `${c.name} · ${c.distance_km} km`)),
        ),
      ),
    ),
  );
}
