// A dry run of a declaration, drawn: the requests it would raise, whose rosters could fill
// each, and the cities each escalation ring would reach with their distances. The library
// and the manager console both show it.

import { h } from "./dom.js";
import { resourceLabel, unitsOf } from "./format.js";

/** Whose rosters could fill a planned request: the first packages, and how many more. */
function lendersLine(r) {
  if (r.lender_count === 0) return "No roster in reach holds it now.";
  const first = r.lenders.map((x) =>
    `${x.name} (ring ${x.ring}, ${x.package_name}: ${unitsOf(r.resource, x.remaining_quantity)}, ready in ${x.readiness_hours} h)`);
  const more = r.lender_count - r.lenders.length;
  const ring0 = `${unitsOf(r.resource, r.ring0_available_quantity)} in ring 0`;
  return `Rosters: ${first.join("; ")}${more > 0 ? `; ${more} more` : ""} · ${ring0}`;
}

/** The requests a dry run would raise and the cities each ring reaches (nothing written). */
export function dryRunView(run) {
  return h("div", { class: "dry-run" },
    h("p", { class: "fine" }, "Nothing was declared: this is what declaring would do now."),
    h("h3", {}, `${run.requests.length} requests`),
    h("ul", { class: "preview-list" },
      run.requests.map((r) => h("li", { dataset: { resource: r.resource } },
        h("span", {}, r.priority), h("span", {}, `${unitsOf(r.resource, r.quantity)} · ${resourceLabel(r.resource)}`), h("span", { class: "muted" }, r.kind),
        h("span", { class: "lenders fine" }, lendersLine(r)),
      )),
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
