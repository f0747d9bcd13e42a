// A dry run of a declaration, drawn: the requests it would raise, whose rosters could fill
// each, and the cities each escalation ring would reach with their distances. The library
// and the manager console both show it.

import { h } from "./dom.js";
import { priorityLabel, resourceLabel, unitsOf } from "./format.js";
import { t } from "./i18n.js";

/** Whose rosters could fill a planned request: the first packages, and how many more. */
function lendersLine(r) {
  if (r.lender_count === 0) return t("dryrun.no_lender");
  const first = r.lenders.map((x) => t("dryrun.lender", {
    name: x.name, ring: x.ring, package: x.package_name,
    units: unitsOf(r.resource, x.remaining_quantity), hours: x.readiness_hours,
  }));
  const more = r.lender_count - r.lenders.length;
  const ring0 = t("dryrun.ring0", { units: unitsOf(r.resource, r.ring0_available_quantity) });
  const list = first.join("; ") + (more > 0 ? `; ${t("dryrun.more_lenders", { count: more })}` : "");
  return t("dryrun.lenders", { list, ring0 });
}

/** The requests a dry run would raise and the cities each ring reaches (nothing written). */
export function dryRunView(run) {
  return h("div", { class: "dry-run" },
    h("p", { class: "fine" }, t("dryrun.lead")),
    h("h3", {}, t("dryrun.requests", { count: run.requests.length })),
    h("ul", { class: "preview-list" },
      run.requests.map((r) => h("li", { dataset: { resource: r.resource } },
        h("span", {}, priorityLabel(r.priority)), h("span", {}, `${unitsOf(r.resource, r.quantity)} · ${resourceLabel(r.resource)}`), h("span", { class: "muted" }, t(`request_kind.${r.kind}`)),
        h("span", { class: "lenders fine" }, lendersLine(r)),
      )),
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
