// A dry run of a declaration, drawn: the requests it would raise and the cities each
// escalation ring would reach with their distances. The library and the manager console
// both show it.

import { h } from "./dom.js";
import { resourceLabel, unitsOf } from "./format.js";

/** The requests a dry run would raise and the cities each ring reaches (nothing written). */
export function dryRunView(run) {
  return h("div", { class: "dry-run" },
    h("p", { class: "fine" }, "Nothing was declared: this is what declaring would do now. Rosters are not shown."),
    h("h3", {}, `${run.requests.length} requests`),
    h("ul", { class: "preview-list" },
      run.requests.map((r) => h("li", {}, h("span", {}, r.priority), h("span", {}, `${unitsOf(r.resource, r.quantity)} · ${resourceLabel(r.resource)}`), h("span", { class: "muted" }, r.kind))),
    ),
    run.rings.map((ring) =>
      h("div", { class: "ring", dataset: { ring: ring.ring } },
        h("h3", {}, `Ring ${ring.ring}: ${ring.cities.length} cities`),
        h("ul", { class: "ring-cities" },
          ring.cities.map((c) => h("li", {}, `${c.name} · ${c.distance_km} km`)),
        ),
      ),
    ),
  );
}
