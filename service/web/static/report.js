// The after-action report of one incident, printable: its figures, the charts the service
// drew (inline SVG), each request's clocks and rings, who helped, and the timeline. It
// follows the incident live: new events redraw it.

import { h } from "./dom.js";
import { eventTypeLabel, inText, resourceLabel, seconds, severityLabel, statusLabel, typeLabel, utc } from "./format.js";
import { t } from "./i18n.js";
import { notify } from "./notices.js";
import { startPage } from "./shell.js";

const CHARTS = [
  ["fill", "report.chart.fill"],
  ["claims", "report.chart.claims"],
  ["flow", "report.chart.flow"],
];

startPage({
  hint: t("report.hint"),
  start: startReport,
});

/** The incident id of `/incidents/<id>/report`, or null. */
function incidentIdOf(path) {
  const match = /^\/incidents\/(\d+)\/report$/.exec(path);
  return match ? Number(match[1]) : null;
}

/** A chart the service drew, parsed as SVG (never as HTML) and adopted into the page;
 * its title in this page's language. */
function chart(markup, title) {
  const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg") return h("p", { class: "fine" }, t("report.chart_failed"));
  const adopted = document.importNode(root, true);
  adopted.setAttribute("aria-label", title);
  const heading = adopted.querySelector(":scope > title");
  for (const el of adopted.querySelectorAll("title, text")) {
    if (el !== heading) el.textContent = chartWords(el.textContent);
  }
  if (heading) heading.textContent = title;
  return adopted;
}

// The words the service writes inside its charts (service/domain/report_charts.py), in
// this page's language: a request's line, a city's claims bar, a city's band of aid.
const CHART_WORDS = [
  [/^request (\d+): (\S+)$/, (m) => t("report.chart.request_line", { id: m[1], resource: resourceLabel(m[2]) })],
  [/^(\d+) \((\d+) units\)$/, (m) => t("report.chart.claims_bar", { count: m[1], units: m[2] })],
  [/^(.+): (\d+) units$/, (m) => t("report.chart.flow_band", { city: m[1], units: m[2] })],
];

function chartWords(text) {
  for (const [pattern, say] of CHART_WORDS) {
    const match = pattern.exec(text);
    if (match) return say(match);
  }
  return text;
}

function table(id, headings, rows) {
  return h("div", { class: "table-scroll" },
    h("table", { class: "report-table", id },
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
}

async function startReport({ api, cities, main, connect }) {
  const id = incidentIdOf(location.pathname);
  if (id === null) {
    main.replaceChildren(h("div", { class: "panel", role: "alert" },
      h("h1", {}, t("report.no_such")), h("p", {}, t("report.address"))));
    return;
  }
  const body = h("div", { class: "report", id: "report" });
  main.replaceChildren(body);

  async function load() {
    try {
      draw(await api(`/incidents/${id}/report`));
    } catch (error) {
      body.replaceChildren(h("div", { class: "panel", role: "alert" },
        h("h1", {}, t("report.cannot", { id })), h("p", {}, error.message)));
    }
  }

  async function downloadCsv() {
    try {
      const text = await api(`/incidents/${id}/report.csv`, { headers: { Accept: "text/csv" }, as: "text" });
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      const a = h("a", { href: url, download: `incident-${id}-report.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      notify(t("report.csv_failed", { error: error.message }));
    }
  }

  function draw(report) {
    const incident = report.incident;
    const c = report.counts;
    const k = report.clocks;
    const cityOf = (cityId) => cities.get(cityId)?.name ?? t("format.city", { id: cityId });
    body.replaceChildren(
      h("header", { class: "report-head" },
        h("h1", { id: "report-title" }, t("report.title", { title: incident.title })),
        h("p", { class: "meta" },
          `${typeLabel(incident.incident_type)} · ${incident.city_name} · ${severityLabel(incident.severity)}`,
          incident.exercise ? ` · ${inText(t("views.exercise"))}` : "",
          ` · ${t("report.declared", { time: utc(incident.declared_at) })}`,
          incident.closed_at ? ` · ${t("report.closed", { time: utc(incident.closed_at) })}` : ` · ${t("report.still_active")}`,
        ),
        h("p", { class: "fine" }, t("report.generated", { time: utc(report.generated_at) })),
        h("p", { class: "no-print actions" },
          h("button", { type: "button", class: "secondary small", id: "print-report", onclick: () => window.print() }, t("report.print")),
          h("button", { type: "button", class: "secondary small", id: "download-csv", onclick: downloadCsv }, t("report.download_csv")),
          h("a", { href: `/board#incident=${incident.id}` }, t("manage.open_on_board")),
        ),
      ),
      h("section", { class: "panel report-figures", id: "report-figures" },
        h("h2", {}, t("report.in_figures")),
        h("dl", { class: "figures" },
          [
            ["board.requests", c.requests], ["respond.claims", c.claims], ["status.fulfilled", c.fulfilled],
            ["report.escalations", c.escalations], ["report.passes", c.passes], ["report.declines", c.declines], ["report.withdrawals", c.withdrawals],
            ["report.claims_expired", c.claim_expiries], ["report.requests_expired", c.request_expiries], ["status.cancelled", c.cancellations],
            ["report.first_claim_median", seconds(k.first_claim_p50_s)], ["report.first_claim_p90", seconds(k.first_claim_p90_s)],
            ["report.on_site_median", seconds(k.fill_p50_s)], ["report.fill_rate", k.fill_rate === null ? "—" : `${Math.round(k.fill_rate * 100)}%`],
          ].map(([term, value]) => h("div", {}, h("dt", {}, t(term)), h("dd", {}, String(value)))),
        ),
      ),
      h("section", { class: "panel report-charts", id: "report-charts" },
        h("h2", {}, t("report.charts")),
        Object.keys(report.charts).length === 0
          ? h("p", { class: "fine" }, t("report.no_charts"))
          : CHARTS.map(([name, title]) => h("figure", { class: "chart-box", dataset: { chart: name } },
              chart(report.charts[name], t(title)), h("figcaption", {}, t(title)))),
      ),
      h("section", { class: "panel", id: "report-requests" },
        h("h2", {}, t("report.requests_clocks")),
        table("requests-table", ["#", t("manage.resource"), t("manage.units"), t("manage.col.status"), t("report.raised"), t("report.first_claim"), t("report.filled"), t("report.all_on_site"), t("report.rings"), t("report.passed_by")],
          report.requests.map((r) => h("tr", { dataset: { requestId: r.request_id } },
            h("td", {}, String(r.request_id)),
            h("td", {}, resourceLabel(r.resource)),
            h("td", {}, t("report.units_cell", { claimed: r.claimed_quantity, quantity: r.quantity, on_site: r.delivered_quantity })),
            h("td", {}, statusLabel(r.status)),
            h("td", {}, utc(r.raised_at)),
            h("td", { class: "clock-first" }, r.first_claim_at ? t("report.after", { span: seconds(r.seconds_to_first_claim) }) : "—"),
            h("td", { class: "clock-fill" }, r.filled_at ? t("report.after", { span: seconds(r.seconds_to_fill) }) : "—"),
            h("td", { class: "clock-on-site" }, r.all_on_site_at ? t("report.after", { span: seconds(r.seconds_to_all_on_site) }) : "—"),
            h("td", {}, r.rings.map((e) => t("report.ring_at", { ring: e.ring, time: utc(e.entered_at) })).join("; ")),
            h("td", { class: "passes" }, r.passes.length === 0 ? "—"
              : r.passes.map((p) => t("report.pass_at", { city: cityOf(p.city_id), ring: p.ring, time: utc(p.passed_at) })).join("; ")),
          )),
        ),
      ),
      h("section", { class: "panel", id: "report-cities" },
        h("h2", {}, t("report.contribution")),
        table("cities-table", [t("manage.col.city"), t("respond.claims"), t("report.units_claimed"), t("report.units_on_site"), t("status.declined"), t("status.withdrawn"), t("status.expired"), t("report.passed"), t("report.first_claim"), t("report.last_change")],
          report.cities.map((x) => h("tr", { dataset: { cityId: x.city_id } },
            h("td", {}, x.city_name), h("td", {}, String(x.claim_count)), h("td", {}, String(x.units_claimed)),
            h("td", {}, String(x.units_on_site)), h("td", {}, String(x.declined_count)), h("td", {}, String(x.withdrawn_count)),
            h("td", {}, String(x.expired_count)), h("td", { class: "pass-count" }, String(x.pass_count)),
            h("td", {}, utc(x.first_claim_at)), h("td", {}, utc(x.last_change_at)),
          )),
        ),
      ),
      h("section", { class: "panel", id: "report-claims" },
        h("h2", {}, t("report.who_helped")),
        table("claims-table", [t("report.claim"), t("manage.col.city"), t("report.request"), t("manage.units"), t("manage.col.status"), t("status.claimed"), t("report.then")],
          report.claims.map((x) => h("tr", { dataset: { claimId: x.claim_id, status: x.status } },
            h("td", {}, String(x.claim_id)), h("td", {}, x.city_name), h("td", {}, String(x.request_id)),
            h("td", {}, String(x.quantity)), h("td", {}, statusLabel(x.status)), h("td", {}, utc(x.made_at)),
            h("td", {}, Object.entries(x.status_at).map(([s, at]) => `${statusLabel(s)} ${utc(at)}`).join("; ")),
          )),
        ),
      ),
      h("section", { class: "panel", id: "report-timeline" },
        h("h2", {}, t("report.timeline")),
        h("ol", { class: "timeline" },
          report.timeline.map((e) => h("li", { dataset: { seq: e.seq, type: e.type } },
            h("span", { class: "when" }, utc(e.at)), " ",
            h("span", {}, describeTimeline(e, cityOf)),
          )),
        ),
      ),
    );
  }

  const reload = coalesced(load);
  await load();
  connect({
    scopes: () => [`incident:${id}`],
    since: () => ({}),
    onEvent: reload,
    onReset: reload,
    onStatus: (state) => {
      if (state === "live") reload();
    },
  });
}

/** `fn` run at most once at a time: calls while it runs make one more run after it. */
function coalesced(fn) {
  let running = null;
  let again = false;
  return function run() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await fn();
      } while (again);
      running = null;
    })();
    return running;
  };
}

/** A timeline line in words, from the report's entry (its event's type and objects). */
function describeTimeline(e, cityOf) {
  const who = e.city_id ? cityOf(e.city_id) : "aidmesh";
  const what = inText(eventTypeLabel(e.type));
  const objects = [
    e.request_id ? t("feed.on_request", { id: e.request_id }) : null,
    e.claim_id ? t("feed.on_claim", { id: e.claim_id }) : null,
  ].filter(Boolean).join(", ");
  return `${who}: ${what}${objects ? ` (${objects})` : ""}${e.status ? ` → ${statusLabel(e.status)}` : ""}`;
}
