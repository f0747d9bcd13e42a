// The open-data observatory: public, no sign-in. A network's charts (aid given and
// received per city, median time to fill by month, incidents by type) drawn as inline
// SVG from /api/v1/observatory/networks/{id}, its feeds, and the licence they carry.

import { h, svg } from "./dom.js";
import { inText, typeLabel } from "./format.js";
import { number, t } from "./i18n.js";

const main = document.getElementById("main");

class FeedError extends Error {}

async function getJson(path) {
  let response;
  try {
    // The feeds are cacheable for five minutes; the page asks again so it shows the latest.
    response = await fetch(`/api/v1${path}`, { headers: { Accept: "application/json" }, cache: "no-cache" });
  } catch {
    throw new FeedError(t("error.0"));
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new FeedError(data?.detail ?? response.statusText);
  return data;
}

const hours = (seconds) => (seconds === null ? null : seconds / 3600);
const formatHours = (value) =>
  value === null ? "–" : t("time.h", { n: value < 10 ? number(value, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) : Math.round(value) });
const formatCount = (value) => String(value);

const LABEL_W = 150;
const CHART_W = 640;
const BAR_H = 14;
const ROW_GAP = 8;

/**
 * A horizontal bar chart: one group per row, one bar per series. Each bar carries
 * data-series, data-label and data-value, and a <title> for a tooltip.
 */
function barChart({ id, title, rows, series, format }) {
  const max = Math.max(1, ...rows.flatMap((row) => series.map((s) => row.values[s.key] ?? 0)));
  const groupH = series.length * BAR_H + ROW_GAP;
  const legendH = series.length > 1 ? 22 : 0;
  const height = legendH + Math.max(1, rows.length) * groupH + 4;
  const barSpace = CHART_W - LABEL_W - 60;
  const chart = svg(
    "svg",
    {
      id,
      class: "chart",
      viewBox: `0 0 ${CHART_W} ${height}`,
      role: "img",
      "aria-label": title,
    },
    svg("title", {}, title),
  );
  if (series.length > 1) {
    series.forEach((s, i) => {
      const x = LABEL_W + i * 150;
      chart.append(
        svg("rect", { class: `legend series-${s.key}`, x, y: 4, width: 12, height: 12 }),
        svg("text", { class: "chart-label", x: x + 18, y: 14 }, s.label),
      );
    });
  }
  if (!rows.length) {
    chart.append(svg("text", { class: "chart-label empty", x: LABEL_W, y: legendH + 14 }, t("observatory.nothing")));
  }
  rows.forEach((row, r) => {
    const top = legendH + r * groupH;
    chart.append(
      svg("text", { class: "chart-label", x: LABEL_W - 8, y: top + (series.length * BAR_H) / 2 + 4, "text-anchor": "end" }, row.label),
    );
    series.forEach((s, i) => {
      const value = row.values[s.key];
      const width = value === null || value === undefined ? 0 : Math.max(1, (value / max) * barSpace);
      const y = top + i * BAR_H;
      chart.append(
        svg(
          "rect",
          {
            class: `bar series-${s.key}`,
            x: LABEL_W,
            y,
            width,
            height: BAR_H - 2,
            dataset: { series: s.key, label: row.label, value: value ?? "" },
          },
          svg("title", {}, `${row.label} · ${s.label}: ${format(value ?? null)}`),
        ),
        svg("text", { class: "chart-value", x: LABEL_W + width + 6, y: y + BAR_H - 4 }, format(value ?? null)),
      );
    });
  });
  return chart;
}

function figure(id, heading, caption, chart) {
  return h("section", { class: "panel chart-panel", id },
    h("h2", {}, heading),
    h("p", { class: "muted" }, caption),
    chart,
  );
}

function draw(summary, networks) {
  const select = h(
    "select",
    {
      id: "observatory-network",
      onchange: (event) => {
        const url = new URL(location.href);
        url.searchParams.set("network", event.target.value);
        history.replaceState(null, "", url);
        show(networks);
      },
    },
    networks.map((n) => h("option", { value: n.slug, selected: n.slug === summary.slug }, n.name)),
  );
  const feeds = `/api/v1/observatory/networks/${summary.network_id}`;
  const through = new Date(summary.published_through).toISOString().slice(0, 10);
  main.replaceChildren(
    h("h1", {}, t("page.observatory.title")),
    h("p", { class: "lead" },
      t("observatory.lead", { count: summary.publication_delay_days }), " ",
      t("observatory.only_figures")),
    h("div", { class: "observatory-controls" },
      h("label", { for: "observatory-network" }, t("observatory.network")), select,
      h("span", { id: "observatory-count", class: "muted" },
        t("observatory.count", { count: summary.incident_count, through })),
    ),
    figure("aid-by-city", t("observatory.aid"), t("observatory.aid_detail"),
      barChart({
        id: "chart-aid",
        title: t("observatory.aid"),
        rows: summary.aid_by_city.map((c) => ({ label: c.city, values: { given: c.units_given, received: c.units_received } })),
        series: [{ key: "given", label: t("observatory.given") }, { key: "received", label: t("observatory.received") }],
        format: formatCount,
      })),
    figure("fill-by-month", t("observatory.fill"), t("observatory.fill_detail"),
      barChart({
        id: "chart-fill",
        title: t("observatory.fill_title"),
        rows: summary.fill_by_month.map((m) => ({ label: m.month, values: { fill: hours(m.fill_p50_s) } })),
        series: [{ key: "fill", label: t("observatory.fill_series") }],
        format: formatHours,
      })),
    figure("incidents-by-type", t("observatory.types"), t("observatory.types_detail"),
      barChart({
        id: "chart-types",
        title: t("observatory.types"),
        rows: summary.incidents_by_type.map((row) => ({ label: inText(typeLabel(row.incident_type)), values: { incidents: row.incident_count } })),
        series: [{ key: "incidents", label: t("observatory.incidents") }],
        format: formatCount,
      })),
    h("section", { class: "panel", id: "observatory-feeds" },
      h("h2", {}, t("observatory.feeds")),
      h("ul", {},
        h("li", {}, h("a", { href: `${feeds}/incidents.geojson`, id: "feed-geojson" }, t("observatory.feed_geojson")), " ", t("observatory.feed_geojson_detail")),
        h("li", {}, h("a", { href: `${feeds}/flows.csv`, id: "feed-csv" }, t("observatory.feed_csv"))),
        h("li", {}, h("a", { href: feeds }, t("observatory.feed_json"))),
      ),
    ),
    h("footer", { class: "fine", id: "observatory-licence" },
      t("observatory.licence", { name: summary.name, licence: summary.licence })),
  );
}

async function show(networks) {
  const wanted = new URL(location.href).searchParams.get("network");
  const network = networks.find((n) => n.slug === wanted) || networks[0];
  draw(await getJson(`/observatory/networks/${network.network_id}`), networks);
}

async function start() {
  try {
    const networks = await getJson("/observatory");
    if (!networks.length) {
      main.replaceChildren(
        h("h1", {}, t("page.observatory.title")),
        h("p", { class: "panel", id: "observatory-empty" }, t("observatory.empty")),
      );
      return;
    }
    await show(networks);
  } catch (error) {
    main.replaceChildren(
      h("div", { class: "panel", role: "alert" },
        h("h1", {}, t("observatory.load_failed")),
        h("p", {}, error.message || String(error)),
        h("button", { type: "button", class: "primary", onclick: () => location.reload() }, t("shell.try_again")),
      ),
    );
  }
}

start();
