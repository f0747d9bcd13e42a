// The board's map: land, coastlines and borders (Natural Earth 1:50m, served by aidmesh
// itself: service/web/geography.py), cities drawn from their coordinates, the requesting
// city, the cities each ring reached, and lines from the cities that claimed. The map is
// drawn at once without the geography, and again when it has loaded.

import { h, svg } from "./dom.js";
import { statusLabel, unitsByResource } from "./format.js";
import { t } from "./i18n.js";

const WIDTH = 400;
const HEIGHT = 240;
const PAD = 26;
const NEAR_KM = 450;

function distanceKm(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const x =
    Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(x)));
}

/** An equirectangular projection fitted to `points`, at least `minSpan` degrees tall and wide. */
function projection(points, minSpan) {
  let [south, north, west, east] = [90, -90, 180, -180];
  for (const p of points) {
    south = Math.min(south, p.lat);
    north = Math.max(north, p.lat);
    west = Math.min(west, p.lon);
    east = Math.max(east, p.lon);
  }
  const midLat = (south + north) / 2;
  const shrink = Math.cos((midLat * Math.PI) / 180);
  let spanX = Math.max((east - west) * shrink, minSpan);
  let spanY = Math.max(north - south, minSpan);
  const innerW = WIDTH - 2 * PAD;
  const innerH = HEIGHT - 2 * PAD;
  if (spanX / spanY > innerW / innerH) spanY = (spanX * innerH) / innerW;
  else spanX = (spanY * innerW) / innerH;
  const scale = innerW / spanX;
  const cx = ((west + east) / 2) * shrink;
  const cy = (south + north) / 2;
  const x = (lon) => WIDTH / 2 + (lon * shrink - cx) * scale;
  const y = (lat) => HEIGHT / 2 - (lat - cy) * scale;
  const lonAt = (px) => ((px - WIDTH / 2) / scale + cx) / shrink;
  const latAt = (py) => cy - (py - HEIGHT / 2) / scale;
  // What the map shows, as [west, south, east, north] in degrees.
  return { x, y, bounds: [lonAt(0), latAt(HEIGHT), lonAt(WIDTH), latAt(0)] };
}

// Geography ----------------------------------------------------------------------------

let countries = null; // [{ name, rings: [[[lon, lat], ...], ...], box: [w, s, e, n] }]
const drawn = new Map(); // container → the arguments it was last drawn with

/** Decode a TopoJSON topology's countries into rings of [lon, lat] with their boxes. */
function decodeCountries(topology) {
  const { scale: [sx, sy], translate: [tx, ty] } = topology.transform;
  const arcs = topology.arcs.map((arc) => {
    let x = 0;
    let y = 0;
    return arc.map(([dx, dy]) => {
      x += dx;
      y += dy;
      return [x * sx + tx, y * sy + ty];
    });
  });
  const ring = (indexes) => {
    const points = [];
    for (const i of indexes) {
      const arc = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
      points.push(...(points.length ? arc.slice(1) : arc));
    }
    return points;
  };
  const shapes = [];
  for (const geometry of topology.objects.countries.geometries) {
    const polygons =
      geometry.type === "Polygon" ? [geometry.arcs] : geometry.type === "MultiPolygon" ? geometry.arcs : [];
    const rings = polygons.flatMap((polygon) => polygon.map(ring));
    if (!rings.length) continue;
    const box = [180, 90, -180, -90];
    for (const r of rings) {
      for (const [lon, lat] of r) {
        box[0] = Math.min(box[0], lon);
        box[1] = Math.min(box[1], lat);
        box[2] = Math.max(box[2], lon);
        box[3] = Math.max(box[3], lat);
      }
    }
    shapes.push({ name: geometry.properties?.name ?? "", rings, box });
  }
  return shapes;
}

/** Load the geography once; every map drawn meanwhile is drawn again with it. */
export const geographyLoaded = fetch("/static/natural-earth-50m.json")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
  .then((topology) => {
    countries = decodeCountries(topology);
    for (const [container, args] of drawn) {
      if (container.isConnected) drawMap(container, args);
      else drawn.delete(container);
    }
  })
  .catch(() => {
    // No geography (an old cached page, a failed fetch): the map keeps its grid.
  });

/** The countries in view as SVG paths; points closer than half a pixel are merged. */
function land(project) {
  if (!countries) return null;
  const [west, south, east, north] = project.bounds;
  const paths = [];
  for (const country of countries) {
    const [w, s, e, n] = country.box;
    if (e < west || w > east || n < south || s > north) continue;
    let d = "";
    for (const r of country.rings) {
      let last = null;
      for (const [lon, lat] of r) {
        const x = project.x(lon);
        const y = project.y(lat);
        if (last && Math.abs(x - last[0]) < 0.5 && Math.abs(y - last[1]) < 0.5) continue;
        d += `${last ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
        last = [x, y];
      }
      d += "Z";
    }
    paths.push(svg("path", { d, class: "country", dataset: { country: country.name } }));
  }
  return svg("g", { class: "land", "aria-hidden": "true" }, paths);
}

function graticule(project, step) {
  const lines = [];
  for (let lat = -90; lat <= 90; lat += step) {
    const y = project.y(lat);
    if (y > 0 && y < HEIGHT) {
      lines.push(svg("line", { x1: 0, x2: WIDTH, y1: y, y2: y, class: lat === 0 ? "equator" : "grid" }));
    }
  }
  for (let lon = -180; lon <= 180; lon += step) {
    const x = project.x(lon);
    if (x > 0 && x < WIDTH) lines.push(svg("line", { x1: x, x2: x, y1: 0, y2: HEIGHT, class: "grid" }));
  }
  return lines;
}

/** Place labels right, left, above or below their dot, skipping any that would overlap. */
function placeLabels(items) {
  const boxes = [];
  const placed = [];
  const overlaps = (b) =>
    boxes.some((o) => b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h);
  for (const item of items) boxes.push({ x: item.x - 5, y: item.y - 5, w: 10, h: 10 });
  for (const item of items) {
    if (!item.label) continue;
    const w = item.label.length * 6.4 + 4;
    const hgt = 13;
    const options = [
      { x: item.x + 8, y: item.y - hgt / 2, anchor: "start" },
      { x: item.x - 8 - w, y: item.y - hgt / 2, anchor: "end" },
      { x: item.x - w / 2, y: item.y - 9 - hgt, anchor: "middle" },
      { x: item.x - w / 2, y: item.y + 9, anchor: "middle" },
      { x: item.x + 6, y: item.y - 4 - hgt, anchor: "start" },
      { x: item.x + 6, y: item.y + 4, anchor: "start" },
      { x: item.x - 6 - w, y: item.y - 4 - hgt, anchor: "end" },
      { x: item.x - 6 - w, y: item.y + 4, anchor: "end" },
    ];
    for (const o of options) {
      const box = { x: o.x, y: o.y, w, h: hgt };
      if (box.x < 2 || box.x + w > WIDTH - 2 || box.y < 2 || box.y + hgt > HEIGHT - 2) continue;
      if (overlaps(box)) continue;
      boxes.push(box);
      const tx = o.anchor === "start" ? o.x + 2 : o.anchor === "end" ? o.x + w - 2 : o.x + w / 2;
      placed.push(
        svg("text", { x: tx, y: o.y + hgt - 3, "text-anchor": o.anchor, class: `label ${item.kind}` }, item.label),
      );
      break;
    }
  }
  return placed;
}

function roleOf(city, origin, reach, claimers) {
  if (city.id === origin.id) return "origin";
  if (claimers.has(city.id)) return "claimer";
  if (reach.has(city.id)) return `ring${Math.min(2, reach.get(city.id))}`;
  return "idle";
}

function drawOne({ cities, origin, reach, claimers, title, minSpan, gridStep, labelAll }) {
  const project = projection(cities, minSpan);
  const ox = project.x(origin.lon);
  const oy = project.y(origin.lat);
  const order = { idle: 0, ring2: 1, ring1: 2, ring0: 3, claimer: 4, origin: 5 };
  const shown = cities
    .map((city) => ({ city, role: roleOf(city, origin, reach, claimers) }))
    .sort((a, b) => order[a.role] - order[b.role]);
  const lines = shown
    .filter((s) => s.role === "claimer")
    .map((s) =>
      svg("line", { x1: project.x(s.city.lon), y1: project.y(s.city.lat), x2: ox, y2: oy, class: "aid-line" }),
    );
  const dots = shown.map(({ city, role }) => {
    const x = project.x(city.lon);
    const y = project.y(city.lat);
    const label = `${city.name}: ${describeRole(role, reach.get(city.id), claimers.get(city.id))}`;
    if (role === "origin") {
      return svg("g", { class: "city origin", dataset: { cityId: city.id } },
        svg("title", {}, label),
        svg("circle", { cx: x, cy: y, r: 10, class: "halo" }),
        svg("rect", { x: x - 5, y: y - 5, width: 10, height: 10, transform: `rotate(45 ${x} ${y})` }),
      );
    }
    return svg("g", { class: `city ${role}`, dataset: { cityId: city.id } },
      svg("title", {}, label),
      svg("circle", { cx: x, cy: y, r: role === "claimer" ? 6 : role === "idle" ? 3.5 : 4.5 }),
    );
  });
  // Label the cities that matter first, so they win the space.
  const labelOrder = [...shown].reverse().map(({ city, role }) => ({
    x: project.x(city.lon),
    y: project.y(city.lat),
    kind: role,
    label: labelAll || role === "origin" || role === "claimer" ? city.name : "",
  }));
  return svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "map-svg", role: "img", "aria-label": title },
    svg("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "sea" }),
    land(project),
    graticule(project, gridStep),
    lines,
    dots,
    placeLabels(labelOrder),
  );
}

function describeRole(role, ring, units) {
  if (role === "origin") return t("map.role.origin");
  if (role === "claimer") return t("map.role.claimer", { units: unitsByResource(units) });
  if (role === "idle") return t("map.role.idle");
  return t("map.role.ring", { ring });
}

const VIEWS = {
  near: { label: (origin) => t("map.around", { city: origin.name }), minSpan: 2.2, gridStep: 1, labelAll: true },
  network: { label: () => t("map.whole_network"), minSpan: 20, gridStep: 10, labelAll: false },
};

/**
 * Draw the incident's map into `container`: around the requesting city, or the
 * whole network (a toggle). `reach` maps city id → ring; `claimers` city id → a Map of
 * resource id → units claimed (unlike resources are never added together).
 */
export function drawMap(container, { cities, originId, reach, claimers }) {
  drawn.set(container, { cities, originId, reach, claimers });
  const origin = cities.get(originId);
  if (!origin) {
    container.replaceChildren(h("p", { class: "muted" }, t("map.no_origin")));
    return;
  }
  const view = VIEWS[container.dataset.view] ? container.dataset.view : "near";
  const spec = VIEWS[view];
  const shown = view === "near"
    ? [...cities.values()].filter((c) => distanceKm(origin, c) <= NEAR_KM)
    : [...cities.values()];
  const ringCounts = [0, 1, 2].map((r) => [...reach.values()].filter((v) => Math.min(2, v) === r).length);
  const summary = [
    `${spec.label(origin)}.`,
    t("map.summary_origin", { city: origin.name }),
    t("map.summary_reached", { ring0: ringCounts[0], ring1: ringCounts[1], ring2: ringCounts[2] }),
    t("map.summary_claimed", { count: claimers.size }),
  ].join(" ");
  const redraw = (next) => {
    container.dataset.view = next;
    drawMap(container, { cities, originId, reach, claimers });
    container.querySelector(`[data-view="${next}"]`)?.focus();
  };
  container.replaceChildren(
    h("div", { class: "map-tabs", role: "group", "aria-label": t("map.extent") },
      Object.entries(VIEWS).map(([key, v]) =>
        h("button", {
          type: "button",
          class: "secondary small",
          "aria-pressed": String(key === view),
          dataset: { view: key },
          onclick: () => redraw(key),
        }, key === "near" ? `${v.label(origin)} (${NEAR_KM} km)` : v.label(origin)),
      ),
    ),
    drawOne({ cities: shown, origin, reach, claimers, title: summary, ...spec }),
    h("ul", { class: "legend", "aria-label": t("map.legend") },
      h("li", {}, h("span", { class: "key origin" }), t("map.legend_origin")),
      h("li", {}, h("span", { class: "key ring0" }), t("views.ring", { ring: 0 })),
      h("li", {}, h("span", { class: "key ring1" }), t("views.ring", { ring: 1 })),
      h("li", {}, h("span", { class: "key ring2" }), t("views.ring", { ring: 2 })),
      h("li", {}, h("span", { class: "key claimer" }), statusLabel("claimed")),
      h("li", {}, h("span", { class: "key idle" }), t("map.legend_idle")),
    ),
  );
}
