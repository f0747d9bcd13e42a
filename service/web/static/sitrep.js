// One situation report, printable: its header and the resource totals as they were frozen
// when it was published (EDXL-SitRep's element names), and the document itself.

import { h } from "./dom.js";
import { resourceLabel, utc } from "./format.js";
import { t, tOr } from "./i18n.js";
import { startPage } from "./shell.js";

startPage({
  hint: t("sitrep.hint"),
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
      h("h1", {}, t("sitrep.no_such")),
      h("p", {}, t("sitrep.address"))));
    return;
  }
  let sitrep;
  try {
    sitrep = await api(`/incidents/${address.incidentId}/sitreps/${address.number}`);
  } catch (error) {
    main.replaceChildren(h("div", { class: "panel", role: "alert" },
      h("h1", {}, t("sitrep.cannot", { number: address.number })), h("p", {}, error.message)));
    return;
  }
  const doc = sitrep.document;
  const totals = doc.Report.ResponseResourcesTotals;
  main.replaceChildren(
    h("article", { class: "report sitrep", id: "sitrep", dataset: { number: sitrep.number } },
      h("header", { class: "report-head" },
        h("h1", { id: "sitrep-title" }, t("sitrep.title", { number: sitrep.number, name: doc.IncidentName })),
        h("p", { class: "meta" },
          t("sitrep.meta", { version: doc.ReportVersion, status: doc.Status, severity: doc.Severity, by: doc.PreparedBy.OrganizationName, role: doc.PreparedBy.Role })),
        h("p", { class: "meta" }, t("sitrep.period", { from: utc(sitrep.period_from), to: utc(sitrep.period_to), published: utc(sitrep.published_at) })),
        h("p", { class: "no-print actions" },
          h("button", { type: "button", class: "secondary small", onclick: () => window.print() }, t("report.print")),
          h("a", { href: `/incidents/${sitrep.incident_id}/report` }, t("page.report.title")),
        ),
      ),
      h("section", { class: "panel" },
        h("h2", {}, t("sitrep.resources")),
        h("div", { class: "table-scroll" },
          h("table", { class: "report-table", id: "sitrep-totals" },
            h("thead", {}, h("tr", {}, ["manage.resource", "sitrep.kind", "sitrep.requested", "sitrep.in_period", "roster.committed", "status.on_site"].map((key) => h("th", { scope: "col" }, t(key))))),
            h("tbody", {},
              totals.ResourceTotals.map((row) => h("tr", { dataset: { resource: row.ResourceTypeName } },
                h("td", {}, resourceLabel(row.ResourceTypeName)), h("td", {}, tOr(`request_kind.${row.ResourceKind}`, row.ResourceKind)),
                h("td", {}, String(row.Requested)), h("td", {}, String(row.RequestedInPeriod)),
                h("td", {}, String(row.Committed)), h("td", {}, String(row.OnSite)),
              )),
              h("tr", { class: "totals" }, h("th", { scope: "row" }, t("sitrep.all")), h("td", {}),
                h("td", {}, String(totals.Totals.Requested)), h("td", {}),
                h("td", {}, String(totals.Totals.Committed)), h("td", {}, String(totals.Totals.OnSite))),
            ),
          ),
        ),
      ),
      h("details", { class: "panel no-print" },
        h("summary", {}, t("sitrep.document", { type: doc.ContentType })),
        h("pre", { class: "document" }, JSON.stringify(doc, null, 2)),
      ),
    ),
  );
}
