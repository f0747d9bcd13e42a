// Webhooks of a city: register endpoints (the secret shown once), pause, resume,
// rotate, ping, delete, and each endpoint's delivery log with redelivery.
// Statuses are polled every few seconds; a `webhook.disabled` notice on the
// websocket refreshes at once.

import { h } from "./dom.js";
import { cityName, timeTitle, zonedTime } from "./format.js";
import { t, tOr } from "./i18n.js";
import { busy, confirmAction, notify } from "./notices.js";
import { startPage } from "./shell.js";
import { EVENT_TYPES } from "./vocabulary.js";
import { badge } from "./views.js";

startPage({
  hint: t("webhooks.hint"),
  start: startWebhooks,
});

const POLL_MS = 3_000;
const LOG_PAGE = 20;
const STATUS_KINDS = { active: "waiting", paused: "closed", disabled: "alert" };
/** An endpoint's status in words: "active", "paused", "disabled". */
const statusOf = (status) => tOr(`webhooks.status.${status}`, status);

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
    ? h("label", { class: "field" }, t("manage.col.city"),
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
          h("summary", {}, t("webhooks.register_summary")),
          registerForm(),
        ),
        list,
      ),
      h("section", { class: "panel col-main", "aria-label": t("webhooks.selected") }, banner, secretBox, detail),
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
    heading.textContent = cityId === null ? t("page.webhooks.title") : t("webhooks.of", { city: cityName(cities, cityId) });
    const disabled = endpoints.filter((e) => e.status === "disabled");
    banner.hidden = disabled.length === 0;
    banner.replaceChildren(
      ...disabled.map((e) =>
        h("p", {}, h("strong", {}, `${t("webhooks.stopped")} `), `${t("views.webhook_disabled", { url: e.url, reason: e.status_reason })} `,
          t("webhooks.fix")),
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
                  badge(statusOf(e.status), STATUS_KINDS[e.status] || "closed", e.status_reason || statusOf(e.status)),
                  e.description ? h("span", { class: "muted" }, e.description) : null,
                ),
              ),
            ),
          )
        : [h("li", { class: "empty" }, t("webhooks.none"))]),
    );
    const endpoint = endpoints.find((e) => e.id === selected);
    detail.replaceChildren(...(endpoint ? endpointView(endpoint) : [h("p", { class: "muted" }, t("webhooks.register_hint"))]));
  }

  function endpointView(e) {
    const actions = h("div", { class: "actions" },
      e.status === "active"
        ? h("button", { type: "button", class: "secondary small", id: "pause", onclick: (ev) => act(ev, "pause") }, t("webhooks.pause"))
        : h("button", { type: "button", class: "primary small", id: "resume", onclick: (ev) => act(ev, "resume") }, t("webhooks.resume")),
      h("button", { type: "button", class: "secondary small", id: "ping", onclick: (ev) => ping(ev) }, t("webhooks.ping")),
      h("button", { type: "button", class: "secondary small", id: "rotate", onclick: (ev) => rotate(ev, e) }, t("webhooks.rotate_secret")),
      h("button", { type: "button", class: "danger-outline small", id: "delete", onclick: (ev) => remove(ev, e) }, t("webhooks.delete")),
    );
    return [
      h("h2", { id: "endpoint-url", class: "url" }, e.url),
      h("dl", { class: "facts" },
        h("dt", {}, t("manage.col.status")),
        h("dd", { id: "endpoint-status", dataset: { status: e.status } },
          badge(statusOf(e.status), STATUS_KINDS[e.status] || "closed"),
          e.status_reason ? h("span", { id: "endpoint-reason" }, ` ${e.status_reason}`) : null),
        h("dt", {}, t("webhooks.events")),
        h("dd", {}, e.event_types.length ? e.event_types.join(", ") : t("webhooks.every_type")),
        e.description ? [h("dt", {}, t("webhooks.description")), h("dd", {}, e.description)] : null,
        h("dt", {}, t("webhooks.last_success")),
        h("dd", {}, timeEl(e.last_success_at) || t("webhooks.never")),
        h("dt", {}, t("webhooks.last_failure")),
        h("dd", {}, timeEl(e.last_failure_at) || t("webhooks.never")),
        e.previous_secret_until
          ? [h("dt", {}, t("webhooks.old_secret")), h("dd", {}, `${t("webhooks.also_signs")} `, timeEl(e.previous_secret_until))]
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
        h("h3", { id: "log-title" }, `${t("webhooks.log")} `, h("span", { class: "count" }, `(${t("webhooks.attempts", { count: total })})`)),
        h("button", { type: "button", class: "secondary small", id: "redeliver-failed", onclick: (ev) => redeliverFailed(ev, e) }, t("webhooks.redeliver_failed")),
      ),
      h("div", { class: "table-scroll" },
        h("table", { class: "claims-table log-table", id: "delivery-log" },
          h("thead", {}, h("tr", {},
            ["webhooks.col.time", "webhooks.col.event", "manage.col.status", "webhooks.col.latency", "webhooks.col.outcome", "webhooks.col.response", "webhooks.col.next_retry", null].map((key) => h("th", { scope: "col" }, key ? t(key) : "")),
          )),
          h("tbody", {},
            rows.length
              ? rows.map((a) =>
                  h("tr", { dataset: { attemptId: a.id, outcome: a.outcome, source: a.source } },
                    h("td", {}, timeEl(a.attempted_at)),
                    h("td", { title: a.event_id }, a.event_type, a.source !== "stream" ? h("span", { class: "muted" }, ` (${a.source})`) : null),
                    h("td", {}, a.status_code ?? "—"),
                    h("td", {}, `${Math.round(a.latency_ms)} ms`),
                    h("td", {}, badge(tOr(`webhooks.outcome.${a.outcome}`, a.outcome), a.outcome === "delivered" ? "waiting" : a.outcome === "retrying" ? "priority-high" : "alert")),
                    h("td", { class: "excerpt", title: a.error || a.response_excerpt }, (a.error || a.response_excerpt || "").slice(0, 120)),
                    h("td", {}, timeEl(a.next_retry_at) || "—"),
                    h("td", {}, h("button", { type: "button", class: "quiet redeliver", onclick: (ev) => redeliver(ev, e, a) }, t("webhooks.redeliver"))),
                  ),
                )
              : h("tr", {}, h("td", { colspan: 8, class: "empty" }, t("webhooks.no_attempts"))),
          ),
        ),
      ),
      h("div", { class: "actions pager" },
        h("button", { type: "button", class: "secondary small", id: "log-newer", disabled: logOffset === 0, onclick: () => turn(-LOG_PAGE) }, t("webhooks.newer")),
        h("span", { class: "muted" }, total ? t("webhooks.range", { from: logOffset + 1, to: logOffset + rows.length, total }) : ""),
        h("button", { type: "button", class: "secondary small", id: "log-older", disabled: logPage?.next_offset == null, onclick: () => turn(LOG_PAGE) }, t("webhooks.older")),
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
    const copy = h("button", { type: "button", class: "primary small", id: "copy-secret" }, t("webhooks.copy"));
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(issued.secret);
        copy.textContent = t("webhooks.copied");
      } catch {
        getSelection().selectAllChildren(value);
        copy.textContent = t("webhooks.selected_copy");
      }
    });
    secretBox.replaceChildren(
      h("h3", {}, rotated ? t("webhooks.new_secret") : t("webhooks.endpoint_secret")),
      h("p", { class: "secret-line" }, value, copy),
      h("p", { class: "warning" }, t("webhooks.store_now")),
      rotated && issued.previous_secret_until
        ? h("p", { id: "overlap-end" }, `${t("webhooks.old_also_signs")} `, timeEl(issued.previous_secret_until), ".")
        : null,
      h("button", { type: "button", class: "secondary small", id: "secret-done", onclick: () => hideSecret() }, t("webhooks.stored")),
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
    const types = EVENT_TYPES.map((type) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "event_type", value: type }), type),
    );
    const error = h("p", { class: "form-error", id: "register-error", role: "alert" });
    const form = h("form", { id: "register-form", class: "stack" },
      h("label", { class: "field" }, t("webhooks.url"), url),
      h("fieldset", { class: "event-types" },
        h("legend", {}, t("webhooks.event_types")),
        types,
      ),
      h("label", { class: "field" }, t("webhooks.description"), description),
      error,
      h("button", { type: "submit", class: "primary" }, t("webhooks.register")),
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
      notify(t("webhooks.ping_queued"), "info");
      logOffset = 0;
    });
  }

  async function rotate(event, endpoint) {
    const button = event.currentTarget;
    const ok = await confirmAction(
      t("webhooks.rotate_question", { url: endpoint.url }),
      t("webhooks.rotate"),
      t("webhooks.rotate_detail"),
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
      t("webhooks.delete_question", { url: endpoint.url }),
      t("webhooks.delete"),
      t("webhooks.delete_detail"),
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
      notify(t("webhooks.requeued", { type: attempt.event_type }), "info");
      logOffset = 0;
    });
  }

  async function redeliverFailed(event, endpoint) {
    await busy(event.currentTarget, async () => {
      const { queued } = await api(`/webhooks/${endpoint.id}/redeliver-failed`, { method: "POST" });
      notify(queued ? t("webhooks.requeued_failed", { count: queued }) : t("webhooks.no_failed"), "info");
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
