// The maps: land, coastlines, borders, major lakes and rivers (Natural Earth 1:50m,
// served by aidmesh itself: service/web/geography.py) and, where the deployment configures a tile server, its
// raster tiles beneath them; cities drawn from their coordinates, the requesting city,
// the incident's own place, the requests' staging points, the cities each ring reached,
// and lines from the cities that claimed. The board draws the incident's map; the
// manager console draws a smaller one to pick a place on. A map is drawn at once without
// the geography, and again when it has loaded. The projection is Web Mercator, the
// tiles' own, so tiles and vectors line up.

import { h, shellData, svg } from "./dom.js";
import { formatPoint, statusLabel, unitsByResource } from "./format.js";
import { t } from "./i18n.js";

const WIDTH = 400;
const HEIGHT = 240;
const PAD = 26;
const NEAR_KM = 450;
const TILE_PX = 256;
const MAX_TILES = 48;
const MAX_LAT = 85.0511;

function distanceKm(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const x =
    Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(x)));
}

// Web Mercator, as tile servers use it: the world is the unit square, x east, y south.
const clampLat = (lat) => Math.max(-MAX_LAT, Math.min(MAX_LAT, lat));
const mercX = (lon) => (lon + 180) / 360;
const mercY = (lat) => {
  const phi = (clampLat(lat) * Math.PI) / 180;
  return (1 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / Math.PI) / 2;
};
const lonOfX = (u) => u * 360 - 180;
const latOfY = (v) => (Math.atan(Math.sinh(Math.PI * (1 - 2 * v))) * 180) / Math.PI;

/** A Web Mercator projection fitted to `points`, at least `minSpan` degrees tall and wide. */
export function projection(points, minSpan) {
  let [south, north, west, east] = [90, -90, 180, -180];
  for (const p of points) {
    south = Math.min(south, p.lat);
    north = Math.max(north, p.lat);
    west = Math.min(west, p.lon);
    east = Math.max(east, p.lon);
  }
  const midLat = clampLat((south + north) / 2);
  const x0 = mercX(west);
  const x1 = mercX(east);
  const y0 = mercY(north);
  const y1 = mercY(south);
  const minX = minSpan / 360;
  const minY = mercY(midLat - minSpan / 2) - mercY(midLat + minSpan / 2);
  let spanX = Math.max(x1 - x0, minX);
  let spanY = Math.max(y1 - y0, minY);
  const innerW = WIDTH - 2 * PAD;
  const innerH = HEIGHT - 2 * PAD;
  if (spanX / spanY > innerW / innerH) spanY = (spanX * innerH) / innerW;
  else spanX = (spanY * innerW) / innerH;
  const scale = innerW / spanX; // viewBox units per world unit
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const x = (lon) => WIDTH / 2 + (mercX(lon) - cx) * scale;
  const y = (lat) => HEIGHT / 2 + (mercY(lat) - cy) * scale;
  const lonAt = (px) => lonOfX((px - WIDTH / 2) / scale + cx);
  const latAt = (py) => latOfY(Math.max(0, Math.min(1, (py - HEIGHT / 2) / scale + cy)));
  // What the map shows, as [west, south, east, north] in degrees.
  return { x, y, lonAt, latAt, scale, cx, cy, bounds: [lonAt(0), latAt(HEIGHT), lonAt(WIDTH), latAt(0)] };
}

/** The deployment's tile server, from the page shell; null when it has none. */
function tileConfig() {
  const map = shellData().map;
  return map?.tile_url ? map : null;
}

/** The raster tiles under the map, when the deployment has a tile server. */
function tiles(project, config) {
  // Tiles about twice as fine as the viewBox: the map is drawn wider than 400 px.
  let z = Math.max(0, Math.min(config.max_zoom ?? 19, Math.round(Math.log2((project.scale * 2) / TILE_PX))));
  const left = project.cx - WIDTH / 2 / project.scale;
  const top = project.cy - HEIGHT / 2 / project.scale;
  let range;
  for (; ; z--) {
    const n = 2 ** z;
    range = {
      n,
      x0: Math.floor(left * n),
      x1: Math.floor((left + WIDTH / project.scale) * n),
      y0: Math.max(0, Math.floor(top * n)),
      y1: Math.min(n - 1, Math.floor((top + HEIGHT / project.scale) * n)),
    };
    if (z === 0 || (range.x1 - range.x0 + 1) * (range.y1 - range.y0 + 1) <= MAX_TILES) break;
  }
  const { n } = range;
  const size = project.scale / n;
  const images = [];
  for (let ty = range.y0; ty <= range.y1; ty++) {
    for (let tx = range.x0; tx <= range.x1; tx++) {
      const wrapped = ((tx % n) + n) % n;
      const href = config.tile_url.replaceAll("{z}", z).replaceAll("{x}", wrapped).replaceAll("{y}", ty);
      images.push(svg("image", {
        href,
        x: (WIDTH / 2 + (tx / n - project.cx) * project.scale).toFixed(2),
        y: (HEIGHT / 2 + (ty / n - project.cy) * project.scale).toFixed(2),
        width: size.toFixed(2),
        height: size.toFixed(2),
        preserveAspectRatio: "none",
        class: "tile",
        dataset: { tile: `${z}/${wrapped}/${ty}` },
      }));
    }
  }
  return svg("g", { class: "tiles", "aria-hidden": "true" }, images);
}

function attribution(config) {
  if (!config.attribution) return [null, null];
  const w = config.attribution.length * 5.2 + 8;
  const box = { x: WIDTH - w, y: HEIGHT - 13, w, h: 13 };
  return [
    svg("g", { class: "attribution" },
      svg("rect", { x: box.x, y: box.y, width: w, height: 13 }),
      svg("text", { x: WIDTH - 4, y: HEIGHT - 3.5, "text-anchor": "end" }, config.attribution),
    ),
    box,
  ];
}

// Geography ----------------------------------------------------------------------------

// Decoded once: countries and lakes as rings of [lon, lat], rivers as lines, each with its
// box ([west, south, east, north]) so that only what is in view is drawn.
let geography = null; // { countries: [{ id, rings, box }], lakes: [...], rivers: [{ lines, box }] }
const drawn = new Map(); // container → how to draw it again

function boxOf(parts) {
  const box = [180, 90, -180, -90];
  for (const part of parts) {
    for (const [lon, lat] of part) {
      box[0] = Math.min(box[0], lon);
      box[1] = Math.min(box[1], lat);
      box[2] = Math.max(box[2], lon);
      box[3] = Math.max(box[3], lat);
    }
  }
  return box;
}

/** Decode a TopoJSON topology's countries, lakes and rivers into [lon, lat] parts. */
function decodeGeography(topology) {
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
  const line = (indexes) => {
    const points = [];
    for (const i of indexes) {
      const arc = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
      points.push(...(points.length ? arc.slice(1) : arc));
    }
    return points;
  };
  const partsOf = (geometry) => {
    switch (geometry.type) {
      case "Polygon":
      case "MultiLineString":
        return geometry.arcs.map(line);
      case "MultiPolygon":
        return geometry.arcs.flatMap((polygon) => polygon.map(line));
      case "LineString":
        return [line(geometry.arcs)];
      default:
        return [];
    }
  };
  const layer = (name) =>
    (topology.objects[name]?.geometries ?? [])
      .map((geometry) => ({ id: geometry.id ?? "", parts: partsOf(geometry) }))
      .filter((shape) => shape.parts.length)
      .map((shape) => ({ ...shape, box: boxOf(shape.parts) }));
  return { countries: layer("countries"), lakes: layer("lakes"), rivers: layer("rivers") };
}

/** Load the geography once; every map drawn meanwhile is drawn again with it. */
export const geographyLoaded = fetch("/static/natural-earth-50m.json")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
  .then((topology) => {
    geography = decodeGeography(topology);
    for (const [container, redraw] of drawn) {
      if (container.isConnected) redraw();
      else drawn.delete(container);
    }
  })
  .catch(() => {
    // No geography (an old cached page, a failed fetch): the map keeps its grid.
  });

/**
 * The shapes of one layer in view as SVG path data, one path per shape; points closer
 * than half a pixel are merged. Rings are closed, lines are not. Shapes smaller than
 * `least` pixels both ways are left out (a lake or a river too small to see at that scale).
 */
function paths(shapes, project, closed, attributes, least = 0) {
  const [west, south, east, north] = project.bounds;
  const out = [];
  for (const shape of shapes) {
    const [w, s, e, n] = shape.box;
    if (e < west || w > east || n < south || s > north) continue;
    const wide = Math.abs(project.x(e) - project.x(w));
    const tall = Math.abs(project.y(s) - project.y(n));
    if (wide < least && tall < least) continue;
    let d = "";
    for (const part of shape.parts) {
      let last = null;
      for (const [lon, lat] of part) {
        const x = project.x(lon);
        const y = project.y(lat);
        if (last && Math.abs(x - last[0]) < 0.5 && Math.abs(y - last[1]) < 0.5) continue;
        d += `${last ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
        last = [x, y];
      }
      if (closed) d += "Z";
    }
    out.push(svg("path", { d, ...attributes(shape) }));
  }
  return out;
}

/**
 * Land, borders and the coast (the countries), then major lakes and rivers over them.
 * Over tiles only the borders are drawn: the tiles show the water themselves.
 */
function land(project, tiled) {
  if (!geography) return null;
  const countries = paths(geography.countries, project, true, (c) => ({ class: "country", dataset: { country: c.id } }));
  const water = tiled
    ? []
    : [
        ...paths(geography.lakes, project, true, () => ({ class: "lake" }), 2),
        ...paths(geography.rivers, project, false, () => ({ class: "river" }), 6),
      ];
  return svg("g", { class: "land", "aria-hidden": "true" }, countries, svg("g", { class: "water" }, water));
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

/**
 * Place labels right, left, above, below or diagonally off their mark, greedily in the
 * order given: a label whose box would overlap a mark, another label, an `obstacle` or
 * the map's edge at every position is left out (its mark keeps its tooltip).
 */
function placeLabels(items, obstacles = []) {
  const boxes = [...obstacles];
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
  return svg("g", { class: "labels" }, placed);
}

function roleOf(city, origin, reach, claimers) {
  if (city.id === origin.id) return "origin";
  if (claimers.has(city.id)) return "claimer";
  if (reach.has(city.id)) return `ring${Math.min(2, reach.get(city.id))}`;
  return "idle";
}

const shortLabel = (text, most = 26) => (text.length > most ? `${text.slice(0, most - 1)}…` : text);

/**
 * The requests' staging points that have coordinates, one per place: its report-to
 * name and the units asked there, per resource (unlike resources never added together).
 */
export function stagingPoints(requests) {
  const points = new Map();
  for (const r of requests) {
    if (r.report_lat == null || r.report_lon == null) continue;
    const key = `${r.report_lat.toFixed(5)},${r.report_lon.toFixed(5)}`;
    const point = points.get(key) ?? { lat: r.report_lat, lon: r.report_lon, names: new Set(), units: new Map() };
    if (r.report_to) point.names.add(r.report_to);
    point.units.set(r.resource, (point.units.get(r.resource) || 0) + r.quantity);
    points.set(key, point);
  }
  return [...points.values()].map((p) => ({
    lat: p.lat,
    lon: p.lon,
    name: [...p.names].join(" / ") || t("map.legend_staging"),
    units: p.units,
  }));
}

function incidentMark(x, y, label) {
  return svg("g", { class: "incident-mark" },
    svg("title", {}, label),
    svg("circle", { cx: x, cy: y, r: 7, class: "ring" }),
    svg("path", { d: `M${x - 4},${y - 4}L${x + 4},${y + 4}M${x - 4},${y + 4}L${x + 4},${y - 4}` }),
  );
}

function stagingMark(x, y, label) {
  return svg("g", { class: "staging" },
    svg("title", {}, label),
    svg("path", { d: `M${x},${y - 6}L${x + 5.5},${y + 4}L${x - 5.5},${y + 4}Z` }),
  );
}

function backdrop(project, gridStep) {
  const config = tileConfig();
  const [credit, creditBox] = config ? attribution(config) : [null, null];
  return {
    layers: [
      svg("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "sea" }),
      config ? tiles(project, config) : null,
      land(project, Boolean(config)),
      config ? null : graticule(project, gridStep),
    ],
    credit,
    obstacles: creditBox ? [creditBox] : [],
    tiled: Boolean(config),
  };
}

function drawOne({ cities, origin, incident, points, reach, claimers, title, minSpan, gridStep, labelAll }) {
  const place = incident && incident.lat != null ? { lat: incident.lat, lon: incident.lon } : null;
  const project = projection([...cities, ...points, ...(place ? [place] : [])], minSpan);
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
  // The incident's own place, when it is not the requesting city's.
  const apart = place && distanceKm(place, origin) > 1;
  const marks = [];
  const labelled = [];
  if (apart) {
    const x = project.x(place.lon);
    const y = project.y(place.lat);
    marks.push(incidentMark(x, y, t("map.incident_title", { title: incident.title, point: formatPoint(place.lat, place.lon) })));
    labelled.push({ x, y, kind: "incident", label: shortLabel(incident.title) });
  }
  for (const point of points) {
    const x = project.x(point.lon);
    const y = project.y(point.lat);
    marks.push(stagingMark(x, y, t("map.staging_title", { name: point.name, point: formatPoint(point.lat, point.lon), units: unitsByResource(point.units) })));
    labelled.push({ x, y, kind: "staging", label: shortLabel(point.name) });
  }
  // Label what matters first, so it wins the space: the requesting city, the incident,
  // its staging points, then the cities by role.
  const cityLabels = [...shown].reverse().map(({ city, role }) => ({
    x: project.x(city.lon),
    y: project.y(city.lat),
    kind: role,
    label: labelAll || role === "origin" || role === "claimer" ? city.name : "",
  }));
  const { layers, credit, obstacles, tiled } = backdrop(project, gridStep);
  return svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: `map-svg${tiled ? " tiled" : ""}`, role: "img", "aria-label": title },
    layers,
    lines,
    dots,
    marks,
    placeLabels([...cityLabels.slice(0, 1), ...labelled, ...cityLabels.slice(1)], obstacles),
    credit,
  );
}

function describeRole(role, ring, units) {
  if (role === "origin") return t("map.role.origin");
  if (role === "claimer") return t("map.role.claimer", { units: unitsByResource(units) });
  if (role === "idle") return t("map.role.idle");
  return t("map.role.ring", { ring });
}

const SITE_KM = 20;
const VIEWS = {
  near: { label: (origin) => t("map.around", { city: origin.name }), minSpan: 2.2, gridStep: 1, labelAll: true },
  site: { label: () => t("map.site_area", { km: SITE_KM }), minSpan: 0.12, gridStep: 0.05, labelAll: true },
  network: { label: () => t("map.whole_network"), minSpan: 20, gridStep: 10, labelAll: false },
};

/**
 * Draw the incident's map into `container`: around the requesting city, or the
 * whole network (a toggle). `reach` maps city id → ring; `claimers` city id → a Map of
 * resource id → units claimed (unlike resources are never added together); `incident`
 * places the incident itself and `requests` their staging points (both optional).
 */
export function drawMap(container, { cities, originId, reach, claimers, incident = null, requests = [] }) {
  drawn.set(container, () => drawMap(container, { cities, originId, reach, claimers, incident, requests }));
  const origin = cities.get(originId);
  if (!origin) {
    container.replaceChildren(h("p", { class: "muted" }, t("map.no_origin")));
    return;
  }
  const view = VIEWS[container.dataset.view] ? container.dataset.view : "near";
  const spec = VIEWS[view];
  const place = incident && incident.lat != null ? { lat: incident.lat, lon: incident.lon } : origin;
  const within = { site: [place, SITE_KM], near: [origin, NEAR_KM] }[view];
  const inView = (p) => !within || distanceKm(within[0], p) <= within[1];
  const shown = [...cities.values()].filter((c) => c.id === origin.id || inView(c));
  const points = stagingPoints(requests).filter(inView);
  const ringCounts = [0, 1, 2].map((r) => [...reach.values()].filter((v) => Math.min(2, v) === r).length);
  const summary = [
    `${spec.label(origin)}.`,
    t("map.summary_origin", { city: origin.name }),
    t("map.summary_reached", { ring0: ringCounts[0], ring1: ringCounts[1], ring2: ringCounts[2] }),
    t("map.summary_claimed", { count: claimers.size }),
    points.length ? t("map.summary_points", { count: points.length }) : null,
  ].filter(Boolean).join(" ");
  const redraw = (next) => {
    container.dataset.view = next;
    drawMap(container, { cities, originId, reach, claimers, incident, requests });
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
    drawOne({ cities: shown, origin, incident, points, reach, claimers, title: summary, ...spec }),
    h("ul", { class: "legend", "aria-label": t("map.legend") },
      h("li", {}, h("span", { class: "key origin" }), t("map.legend_origin")),
      place !== origin && distanceKm(place, origin) > 1 ? h("li", {}, h("span", { class: "key incident" }), t("map.legend_incident")) : null,
      points.length ? h("li", {}, h("span", { class: "key staging" }), t("map.legend_staging")) : null,
      h("li", {}, h("span", { class: "key ring0" }), t("views.ring", { ring: 0 })),
      h("li", {}, h("span", { class: "key ring1" }), t("views.ring", { ring: 1 })),
      h("li", {}, h("span", { class: "key ring2" }), t("views.ring", { ring: 2 })),
      h("li", {}, h("span", { class: "key claimer" }), statusLabel("claimed")),
      h("li", {}, h("span", { class: "key idle" }), t("map.legend_idle")),
    ),
  );
}

/**
 * A map to pick a place on, around `center` ({lat, lon}): clicking it calls
 * `onPick(lat, lon)` and marks the spot; `chosen` is the place marked now (or null),
 * `points` staging points already set, for reference. Cities are drawn and labelled.
 */
export function drawPicker(container, { cities, center, chosen = null, points = [], kind = "staging", onPick }) {
  drawn.set(container, () => drawPicker(container, { cities, center, chosen, points, kind, onPick }));
  const near = [...cities.values()].filter((c) => distanceKm(center, c) <= 60);
  const project = projection([center, ...(chosen ? [chosen] : [])], 0.9);
  const { layers, credit, obstacles, tiled } = backdrop(project, 0.25);
  const labelled = [];
  const marks = [];
  for (const point of points) {
    const x = project.x(point.lon);
    const y = project.y(point.lat);
    marks.push(stagingMark(x, y, t("map.staging_to", { name: point.name })));
    labelled.push({ x, y, kind: "staging", label: shortLabel(point.name) });
  }
  const dots = near.map((city) => {
    const x = project.x(city.lon);
    const y = project.y(city.lat);
    labelled.push({ x, y, kind: "idle", label: city.name });
    return svg("g", { class: "city idle" }, svg("title", {}, city.name), svg("circle", { cx: x, cy: y, r: 3.5 }));
  });
  if (chosen) {
    const x = project.x(chosen.lon);
    const y = project.y(chosen.lat);
    const where = formatPoint(chosen.lat, chosen.lon);
    marks.push(kind === "incident" ? incidentMark(x, y, where) : stagingMark(x, y, where));
    marks[marks.length - 1].classList.add("chosen");
    labelled.unshift({ x, y, kind, label: t("map.chosen") });
  }
  const map = svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: `map-svg picker${tiled ? " tiled" : ""}`,
      role: "img",
      "aria-label": t("map.place_label", { point: formatPoint(center.lat, center.lon) }),
    },
    layers,
    dots,
    marks,
    placeLabels(labelled, obstacles),
    credit,
  );
  const pick = (event) => {
    const matrix = shown.getScreenCTM();
    if (!matrix) return;
    const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    const lat = Math.round(project.latAt(at.y) * 1e5) / 1e5;
    const lon = Math.round(project.lonAt(at.x) * 1e5) / 1e5;
    onPick(lat, lon);
  };
  // Drawn again (a new place, the geography arriving), the picker keeps its element, so a
  // click or a look already on its way lands on the map shown, not on a replaced one.
  const shown = container.querySelector(":scope > svg.picker") ?? map;
  if (shown === map) {
    map.addEventListener("click", (event) => shown.pick(event));
    container.replaceChildren(map);
  } else {
    for (const name of ["class", "aria-label"]) shown.setAttribute(name, map.getAttribute(name));
    shown.replaceChildren(...map.childNodes);
  }
  shown.pick = pick;
}

/**
 * A place to give with a form, optional: latitude and longitude fields and a map around
 * `center` to click on; typing coordinates moves the mark, clicking the map fills them.
 * `value()` is {lat, lon}, null when both fields are empty, or throws a message when only
 * one is given.
 */
export function placeField({ idPrefix, legend, hint, cities, center, points = () => [], kind = "staging" }) {
  const lat = h("input", { id: `${idPrefix}-lat`, class: "place-lat", type: "number", min: -90, max: 90, step: "any", inputmode: "decimal", autocomplete: "off" });
  const lon = h("input", { id: `${idPrefix}-lon`, class: "place-lon", type: "number", min: -180, max: 180, step: "any", inputmode: "decimal", autocomplete: "off" });
  const mapBox = h("div", { class: "picker-map", id: `${idPrefix}-map` });
  const clear = h("button", { type: "button", class: "secondary small place-clear" }, t("map.clear"));
  const chosen = () => {
    if (lat.value === "" || lon.value === "" || !lat.checkValidity() || !lon.checkValidity()) return null;
    return { lat: Number(lat.value), lon: Number(lon.value) };
  };
  let around = center;
  const draw = () => {
    const place = chosen();
    drawPicker(mapBox, {
      cities,
      center: place ?? around,
      chosen: place,
      points: points(),
      kind,
      onPick: (y, x) => {
        lat.value = y;
        lon.value = x;
        draw();
      },
    });
  };
  lat.addEventListener("change", draw);
  lon.addEventListener("change", draw);
  clear.addEventListener("click", () => {
    lat.value = "";
    lon.value = "";
    draw();
  });
  const element = h("fieldset", { class: "place", id: `${idPrefix}-place` },
    h("legend", {}, legend),
    hint ? h("p", { class: "fine" }, hint) : null,
    h("div", { class: "row" },
      h("label", { for: lat.id }, t("map.latitude"), lat),
      h("label", { for: lon.id }, t("map.longitude"), lon),
      clear,
    ),
    mapBox,
  );
  draw();
  return {
    element,
    value() {
      if (lat.value === "" && lon.value === "") return null;
      if (lat.value === "" || lon.value === "") throw new Error(t("map.both_or_neither", { legend }));
      return { lat: Number(lat.value), lon: Number(lon.value) };
    },
    set(place, newCenter = around) {
      around = newCenter;
      lat.value = place ? place.lat : "";
      lon.value = place ? place.lon : "";
      draw();
    },
  };
}
