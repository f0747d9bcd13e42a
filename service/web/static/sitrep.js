// One situation report, printable: its header and the resource totals as they were frozen
// when it was published (EDXL-SitRep's element names), and the document itself.

import { h } from "./dom.js";
import { resourceLabel, utc } from "./format.js";
import { startPage } from "./shell.js";

startPage({
  hint: "Any aidmesh token of a city that can see the incident opens its situation reports.",
  start: startSitrep,
});

function addressOf(path) {
  const match = /^\/incidents\/(\d+)\/sitreps\/(\d+)$/.exec(path);
  return match ? { incidentId: Number(match[1]), number: Number(match[2]) } : null;
}

async function startSitrep({ api, main }) {
  const address = addressOf(location.pathname);
  if (address === null) {
    main.replaceChildren(h("div", { class: "panel", role: "alert" },
      h("h1", {}, "No such situation report"),
      h("p", {}, "A situation report's address is /incidents/<number>/sitreps/<number>.")));
    return;
  }
  let sitrep;
  try {
    sitrep = await api(`/incidents/${address.incidentId}/sitreps/${address.number}`);
  } catch (error) {
    main.replaceChildren(h("div", { class: "panel", role: "alert" },
      h("h1", {}, `Situation report ${address.number} cannot be shown`), h("p", {}, error.message)));
    return;
  }
  const doc = sitrep.document;
  const totals = doc.Report.ResponseResourcesTotals;
  main.replaceChildren(
    h("article", { class: "report sitrep", id: "sitrep", dataset: { number: sitrep.number } },
      h("header", { class: "report-head" },
        h("h1", { id: "sitrep-title" }, `Situation report ${sitrep.number}: ${doc.IncidentName}`),
        h("p", { class: "meta" },
          `${doc.ReportVersion} · ${doc.Status} · severity ${doc.Severity} · prepared by ${doc.PreparedBy.OrganizationName} (${doc.PreparedBy.Role})`),
        h("p", { class: "meta" }, `Period ${utc(sitrep.period_from)} to ${utc(sitrep.period_to)} · published ${utc(sitrep.published_at)}`),
        h("p", { class: "no-print actions" },
          h("button", { type: "button", class: "secondary small", onclick: () => window.print() }, "Print"),
          h("a", { href: `/incidents/${sitrep.incident_id}/report` }, "After-action report"),
        ),
      ),
      h("section", { class: "panel" },
        h("h2", {}, "Response resources"),
        h("div", { class: "table-scroll" },
          h("table", { class: "report-table", id: "sitrep-totals" },
            h("thead", {}, h("tr", {}, ["Resource", "Kind", "Requested", "of which in period", "Committed", "On site"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {},
              totals.ResourceTotals.map((t) => h("tr", { dataset: { resource: t.ResourceTypeName } },
                h("td", {}, resourceLabel(t.ResourceTypeName)), h("td", {}, t.ResourceKind),
                h("td", {}, String(t.Requested)), h("td", {}, String(t.RequestedInPeriod)),
                h("td", {}, String(t.Committed)), h("td", {}, String(t.OnSite)),
              )),
              h("tr", { class: "totals" }, h("th", { scope: "row" }, "All"), h("td", {}),
                h("td", {}, String(totals.Totals.Requested)), h("td", {}),
                h("td", {}, String(totals.Totals.Committed)), h("td", {}, String(totals.Totals.OnSite))),
            ),
          ),
        ),
      ),
      h("details", { class: "panel no-print" },
        h("summary", {}, `The document (${doc.ContentType})`),
        h("pre", { class: "document" }, JSON.stringify(doc, null, 2)),
      ),
    ),
  );
}
