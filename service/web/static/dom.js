// DOM helpers the pages share: build elements, keep lists and panels in step with
// data without losing focus or typed values, and batch renders per frame.

/** Build an element: h("button", {class: "primary", onclick: fn}, "Claim"). */
export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Build an SVG element, attributes as in h(). */
export function svg(tag, props, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * Keep `container`'s children in the order of `items`, one element per key:
 * existing elements are kept (so focus stays where it is) and handed to `update`.
 */
export function syncList(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const el of container.children) existing.set(el.dataset.key, el);
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (wanted !== el) container.insertBefore(el, wanted);
    previous = el;
  }
  for (const el of existing.values()) el.remove();
}

/**
 * Rebuild an element's content when its data changed (`signature`), keeping the
 * values typed into [data-keep] fields and the focus on the [data-focus] control.
 */
export function patch(el, signature, build) {
  if (el.dataset.sig === signature) return;
  el.dataset.sig = signature;
  const active = document.activeElement;
  const focusKey = active && el.contains(active) ? active.dataset.focus : undefined;
  const kept = new Map();
  for (const field of el.querySelectorAll("[data-keep]")) {
    if (field.dataset.dirty) kept.set(field.dataset.keep, field.value);
  }
  el.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
  for (const field of el.querySelectorAll("[data-keep]")) {
    if (kept.has(field.dataset.keep)) {
      field.value = kept.get(field.dataset.keep);
      field.dataset.dirty = "1";
    }
  }
  if (focusKey) el.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`)?.focus();
}

/** Mark a field as typed into, so patch() keeps its value across re-renders. */
export function keepTyped(event) {
  if (event.target?.dataset?.keep) event.target.dataset.dirty = "1";
}

/** Run `fn` at most once per animation frame. */
export function throttled(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

/**
 * What the page shell carries in its data block (service/web/routes.py): this page's
 * id, the table of pages and the lifecycle vocabulary. Read once.
 */
export const shellData = (() => {
  let data = null;
  return () => (data ??= JSON.parse(document.getElementById("aidmesh-shell").textContent));
})();
