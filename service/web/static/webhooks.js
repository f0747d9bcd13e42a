// Webhooks of a city: register endpoints (the secret shown once), pause, resume,
// rotate, ping, delete, and each endpoint's delivery log with redelivery.
// Statuses are polled every few seconds; a `webhook.disabled` notice on the
// websocket refreshes at once.

import { h } from "./dom.js";
import { cityName, timeTitle, zonedTime } from "./format.js";
import { busy, confirmAction, notify } from "./notices.js";
import { startPage } from "./shell.js";
import { EVENT_TYPES } from "./vocabulary.js";
import { badge } from "./views.js";

startPage({
  hint: "Sign in with your city's manager token (or the network admin's) to manage the city's webhook endpoints.",
  start: startWebhooks,
});

const POLL_MS = 3_000;
const LOG_PAGE = 20;
const STATUS_KINDS = { active: "waiting", paused: "closed", disabled: "alert" };

function timeEl(iso) {
  return iso ? h("time", { datetime: iso, title: timeTitle(iso) }, zonedTime(iso)) : "";
}

async function startWebhooks({ api, me, cities, main, connect }) {
  const isAdmin = me.role === "admin";
  let cityId = isAdmin ? Number(new URLSearchParams(location.hash.slice(1)).get("city")) || null : me.city_id;
  if (isAdmin && !cities.has(cityId)) cityId = [...cities.keys()].sort((a, b) => a - b)[0] ?? null;
  let endpoints = [];
  let selected = null;
  let logOffset = 0;
  let logPage = null;

  const heading = h("h1", { id: "webhooks-title" });
  const cityPicker = isAdmin
    ? h("label", { class: "field" }, "City",
        h("select", { id: "webhook-city", onchange: (e) => chooseCity(Number(e.target.value)) },
          [...cities.values()]
            .sort((a, b) => a.name.localeCompare(b.name))
            .map((c) => h("option", { value: c.id, selected: c.id === cityId }, c.name)),
        ),
      )
    : null;
  const banner = h("div", { id: "webhook-banner", class: "banner", role: "alert", hidden: true });
  const secretBox = h("div", { id: "secret-box", class: "secret-box", hidden: true });
  const list = h("ul", { class: "incident-list", id: "endpoint-list" });
  const detail = h("div", { id: "endpoint-detail" });
  main.append(
    h("div", { class: "console manage" },
      h("section", { class: "panel col-incidents", "aria-labelledby": "webhooks-title" },
        heading,
        cityPicker,
        h("details", { class: "declare", id: "register" },
          h("summary", {}, "Register an endpoint"),
          registerForm(),
        ),
        list,
      ),
      h("section", { class: "panel col-main", "aria-label": "Selected endpoint" }, banner, secretBox, detail),
    ),
  );

  // Loading -------------------------------------------------------------------------

  async function refresh() {
    if (cityId === null) return;
    const page = await api(`/webhooks?city_id=${cityId}&limit=100`);
    endpoints = page.data;
    if (selected !== null && !endpoints.some((e) => e.id === selected)) {
      selected = null;
      logPage = null;
    }
    if (selected === null && endpoints.length) selected = endpoints[0].id;
    if (selected !== null) {
      logPage = await api(`/webhooks/${selected}/attempts?limit=${LOG_PAGE}&offset=${logOffset}`);
    }
    render();
  }

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      await refresh();
    } catch (error) {
      if (!error.transport) notify(error.message);
    } finally {
      polling = false;
    }
  }

  function chooseCity(id) {
    cityId = id;
    selected = null;
    logOffset = 0;
    history.replaceState(null, "", `#city=${id}`);
    poll();
  }

  function choose(id) {
    selected = id;
    logOffset = 0;
    poll();
  }

  // Rendering -----------------------------------------------------------------------

  function render() {
    heading.textContent = cityId === null ? "Webhooks" : `Webhooks of ${cityName(cities, cityId)}`;
    const disabled = endpoints.filter((e) => e.status === "disabled");
    banner.hidden = disabled.length === 0;
    banner.replaceChildren(
      ...disabled.map((e) =>
        h("p", {}, h("strong", {}, "Delivery stopped: "), `${e.url} was disabled — ${e.status_reason}. `,
          "Fix the receiver, then resume it; events wait in order."),
      ),
    );
    list.replaceChildren(
      ...(endpoints.length
        ? endpoints.map((e) =>
            h("li", { dataset: { endpointId: e.id, status: e.status } },
              h("button", {
                type: "button",
                class: "incident-item",
                "aria-current": e.id === selected ? "true" : null,
                onclick: () => choose(e.id),
              },
                h("span", { class: "item-title url" }, e.url),
                h("span", { class: "item-badges" },
                  badge(e.status, STATUS_KINDS[e.status] || "closed", e.status_reason || e.status),
                  e.description ? h("span", { class: "muted" }, e.description) : null,
                ),
              ),
            ),
          )
        : [h("li", { class: "empty" }, "No endpoints yet.")]),
    );
    const endpoint = endpoints.find((e) => e.id === selected);
    detail.replaceChildren(...(endpoint ? endpointView(endpoint) : [h("p", { class: "muted" }, "Register an endpoint to start pushing events.")]));
  }

  function endpointView(e) {
    const actions = h("div", { class: "actions" },
      e.status === "active"
        ? h("button", { type: "button", class: "secondary small", id: "pause", onclick: (ev) => act(ev, "pause") }, "Pause")
        : h("button", { type: "button", class: "primary small", id: "resume", onclick: (ev) => act(ev, "resume") }, "Resume"),
      h("button", { type: "button", class: "secondary small", id: "ping", onclick: (ev) => ping(ev) }, "Send a test event"),
      h("button", { type: "button", class: "secondary small", id: "rotate", onclick: (ev) => rotate(ev, e) }, "Rotate secret"),
      h("button", { type: "button", class: "danger-outline small", id: "delete", onclick: (ev) => remove(ev, e) }, "Delete"),
    );
    return [
      h("h2", { id: "endpoint-url", class: "url" }, e.url),
      h("dl", { class: "facts" },
        h("dt", {}, "Status"),
        h("dd", { id: "endpoint-status", dataset: { status: e.status } },
          badge(e.status, STATUS_KINDS[e.status] || "closed"),
          e.status_reason ? h("span", { id: "endpoint-reason" }, ` ${e.status_reason}`) : null),
        h("dt", {}, "Events"),
        h("dd", {}, e.event_types.length ? e.event_types.join(", ") : "every type"),
        e.description ? [h("dt", {}, "Description"), h("dd", {}, e.description)] : null,
        h("dt", {}, "Last success"),
        h("dd", {}, timeEl(e.last_success_at) || "never"),
        h("dt", {}, "Last failure"),
        h("dd", {}, timeEl(e.last_failure_at) || "never"),
        e.previous_secret_until
          ? [h("dt", {}, "Old secret"), h("dd", {}, "also signs until ", timeEl(e.previous_secret_until))]
          : null,
      ),
      actions,
      deliveryLog(e),
    ];
  }

  function deliveryLog(e) {
    const rows = logPage?.data || [];
    const total = logPage?.count ?? 0;
    return h("section", { class: "delivery-log", "aria-labelledby": "log-title" },
      h("div", { class: "section-head" },
        h("h3", { id: "log-title" }, "Delivery log ", h("span", { class: "count" }, `(${total} attempts)`)),
        h("button", { type: "button", class: "secondary small", id: "redeliver-failed", onclick: (ev) => redeliverFailed(ev, e) }, "Redeliver all failed"),
      ),
      h("div", { class: "table-scroll" },
        h("table", { class: "claims-table log-table", id: "delivery-log" },
          h("thead", {}, h("tr", {},
            ["Time", "Event", "Status", "Latency", "Outcome", "Response", "Next retry", ""].map((t) => h("th", { scope: "col" }, t)),
          )),
          h("tbody", {},
            rows.length
              ? rows.map((a) =>
                  h("tr", { dataset: { attemptId: a.id, outcome: a.outcome, source: a.source } },
                    h("td", {}, timeEl(a.attempted_at)),
                    h("td", { title: a.event_id }, a.event_type, a.source !== "stream" ? h("span", { class: "muted" }, ` (${a.source})`) : null),
                    h("td", {}, a.status_code ?? "—"),
                    h("td", {}, `${Math.round(a.latency_ms)} ms`),
                    h("td", {}, badge(a.outcome, a.outcome === "delivered" ? "waiting" : a.outcome === "retrying" ? "priority-high" : "alert")),
                    h("td", { class: "excerpt", title: a.error || a.response_excerpt }, (a.error || a.response_excerpt || "").slice(0, 120)),
                    h("td", {}, timeEl(a.next_retry_at) || "—"),
                    h("td", {}, h("button", { type: "button", class: "quiet redeliver", onclick: (ev) => redeliver(ev, e, a) }, "Redeliver")),
                  ),
                )
              : h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No attempts yet.")),
          ),
        ),
      ),
      h("div", { class: "actions pager" },
        h("button", { type: "button", class: "secondary small", id: "log-newer", disabled: logOffset === 0, onclick: () => turn(-LOG_PAGE) }, "Newer"),
        h("span", { class: "muted" }, total ? `${logOffset + 1}–${logOffset + rows.length} of ${total}` : ""),
        h("button", { type: "button", class: "secondary small", id: "log-older", disabled: logPage?.next_offset == null, onclick: () => turn(LOG_PAGE) }, "Older"),
      ),
    );
  }

  function turn(by) {
    logOffset = Math.max(0, logOffset + by);
    poll();
  }

  // The secret, once ------------------------------------------------------------------

  function showSecret(issued, rotated) {
    const value = h("code", { id: "secret-value" }, issued.secret);
    const copy = h("button", { type: "button", class: "primary small", id: "copy-secret" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(issued.secret);
        copy.textContent = "Copied";
      } catch {
        getSelection().selectAllChildren(value);
        copy.textContent = "Selected: press Ctrl+C";
      }
    });
    secretBox.replaceChildren(
      h("h3", {}, rotated ? "The new signing secret" : "The signing secret of the new endpoint"),
      h("p", { class: "secret-line" }, value, copy),
      h("p", { class: "warning" }, "Store it in the receiving system now: it will not be shown again."),
      rotated && issued.previous_secret_until
        ? h("p", { id: "overlap-end" }, "The old secret also signs until ", timeEl(issued.previous_secret_until), ".")
        : null,
      h("button", { type: "button", class: "secondary small", id: "secret-done", onclick: () => hideSecret() }, "I have stored it"),
    );
    secretBox.hidden = false;
  }

  function hideSecret() {
    secretBox.hidden = true;
    secretBox.replaceChildren();
  }

  // Acting ----------------------------------------------------------------------------

  function registerForm() {
    const url = h("input", { id: "webhook-url", name: "url", type: "url", required: true, maxlength: 2000, placeholder: "https://eoc.example.org/aidmesh", autocomplete: "off" });
    const description = h("input", { id: "webhook-description", name: "description", maxlength: 200, autocomplete: "off" });
    const types = EVENT_TYPES.map((t) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "event_type", value: t }), t),
    );
    const error = h("p", { class: "form-error", id: "register-error", role: "alert" });
    const form = h("form", { id: "register-form", class: "stack" },
      h("label", { class: "field" }, "URL", url),
      h("fieldset", { class: "event-types" },
        h("legend", {}, "Event types (none ticked: every type)"),
        types,
      ),
      h("label", { class: "field" }, "Description", description),
      error,
      h("button", { type: "submit", class: "primary" }, "Register"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const button = form.querySelector("button[type=submit]");
      const body = {
        url: url.value.trim(),
        description: description.value.trim(),
        event_types: [...form.querySelectorAll("input[name=event_type]:checked")].map((i) => i.value),
      };
      if (isAdmin) body.city_id = cityId;
      button.disabled = true;
      try {
        const issued = await api("/webhooks", { method: "POST", body });
        form.reset();
        showSecret(issued, false);
        selected = issued.id;
        logOffset = 0;
        await refresh();
      } catch (e) {
        error.textContent = e.message;
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  async function act(event, verb) {
    await busy(event.currentTarget, async () => {
      await api(`/webhooks/${selected}/${verb}`, { method: "POST" });
      await refresh();
    });
  }

  async function ping(event) {
    await busy(event.currentTarget, async () => {
      await api(`/webhooks/${selected}/ping`, { method: "POST" });
      notify("Test event queued; its attempt appears in the log.", "info");
      logOffset = 0;
    });
  }

  async function rotate(event, endpoint) {
    const button = event.currentTarget;
    const ok = await confirmAction(
      `Rotate the signing secret of ${endpoint.url}?`,
      "Rotate",
      "A new secret signs from now on; the old one also signs for an overlap (24 h by default), so the receiver can switch without losing a delivery.",
    );
    if (!ok) return;
    await busy(button, async () => {
      const issued = await api(`/webhooks/${endpoint.id}/rotate-secret`, { method: "POST" });
      showSecret(issued, true);
      await refresh();
    });
  }

  async function remove(event, endpoint) {
    const button = event.currentTarget;
    const ok = await confirmAction(
      `Delete the endpoint ${endpoint.url}?`,
      "Delete",
      "Its delivery log goes with it, and undelivered events are not sent.",
    );
    if (!ok) return;
    await busy(button, async () => {
      await api(`/webhooks/${endpoint.id}`, { method: "DELETE" });
      selected = null;
      hideSecret();
      await refresh();
    });
  }

  async function redeliver(event, endpoint, attempt) {
    await busy(event.currentTarget, async () => {
      await api(`/webhooks/${endpoint.id}/attempts/${attempt.id}/redeliver`, { method: "POST" });
      notify(`Event ${attempt.event_type} queued again.`, "info");
      logOffset = 0;
    });
  }

  async function redeliverFailed(event, endpoint) {
    await busy(event.currentTarget, async () => {
      const { queued } = await api(`/webhooks/${endpoint.id}/redeliver-failed`, { method: "POST" });
      notify(queued ? `${queued} failed event(s) queued again.` : "No failed deliveries to send again.", "info");
      logOffset = 0;
    });
  }

  // Live ------------------------------------------------------------------------------

  await refresh();
  setInterval(poll, POLL_MS);
  if (cityId !== null) {
    connect({
      scopes: () => [`city:${cityId}`],
      since: () => undefined, // live only: no replay of the city's incidents
      onEvent: () => {},
      onReset: () => {},
      onNotice: (notice) => {
        if (notice.kind === "webhook.disabled") poll();
      },
    });
  }
}
