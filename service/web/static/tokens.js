// The API tokens of the manager's city, on /manage: for machines (dispatch bots, sensors,
// dashboards). Issue one with a label, a scope and a lifetime (its secret is shown once),
// see when each was last used and when it expires, rotate its secret or revoke it.

import { h } from "./dom.js";
import { fetchAll } from "./api.js";
import { utc } from "./format.js";
import { busy, confirmAction, notify } from "./notices.js";
import { TOKEN_SCOPES } from "./vocabulary.js";

const TOKEN_ROLES = ["responder", "observer", "manager"];

function scopeText(scopes) {
  return scopes.length ? scopes.join(", ") : "all its role may do";
}

function stateOf(token, now = Date.now()) {
  if (token.revoked_at) return "revoked";
  if (token.expires_at && new Date(token.expires_at).getTime() <= now) return "expired";
  return "active";
}

/** The tokens section; `el` goes on the page, `load()` fills it. */
export function tokensSection(api) {
  const list = h("ul", { class: "token-list", id: "token-list" });
  const secret = h("div", { id: "token-secret", "aria-live": "polite" });
  const label = h("input", { id: "token-label", maxlength: 200, required: true, autocomplete: "off" });
  const role = h("select", { id: "token-role" }, ...TOKEN_ROLES.map((r) => h("option", { value: r }, r)));
  const scope = h(
    "select",
    { id: "token-scope" },
    h("option", { value: "" }, "all its role may do"),
    ...TOKEN_SCOPES.map((s) => h("option", { value: s }, s === "read" ? "read only" : s)),
  );
  const days = h("input", { id: "token-days", type: "number", min: 1, step: 1, placeholder: "90", inputmode: "numeric" });
  const form = h(
    "form",
    { class: "token-form", id: "token-form" },
    h("label", { for: "token-label" }, "Label"),
    label,
    h("label", { for: "token-role" }, "Role"),
    role,
    h("label", { for: "token-scope" }, "May write"),
    scope,
    h("label", { for: "token-days" }, "Expires in (days)"),
    days,
    h("button", { type: "submit", class: "primary small" }, "Issue token"),
  );

  function showSecret(token, what) {
    secret.replaceChildren(
      h("p", {}, `${what} “${token.label}”. Copy its secret now (shown once):`),
      h("code", { class: "token-value", id: "token-value" }, token.token),
      h("p", { class: "muted" }, `Expires ${utc(token.expires_at)}.`),
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button"), async () => {
      const body = { role: role.value, label: label.value.trim(), scopes: scope.value ? [scope.value] : [] };
      if (days.value) body.expires_in_days = Number(days.value);
      const token = await api("/tokens", { method: "POST", body });
      showSecret(token, "Issued");
      form.reset();
      await load();
    });
  });

  function row(token) {
    const state = stateOf(token);
    const rotate = h("button", { type: "button", class: "secondary small token-rotate" }, "Rotate");
    rotate.addEventListener("click", () =>
      busy(rotate, async () => {
        const sure = await confirmAction(
          `Rotate the secret of “${token.label}”?`,
          "Rotate",
          "The current secret stops working at once: the machine that uses it needs the new one.",
        );
        if (!sure) return;
        showSecret(await api(`/tokens/${token.id}/rotate`, { method: "POST" }), "Rotated");
        await load();
      }),
    );
    const revoke = h("button", { type: "button", class: "danger small token-revoke" }, "Revoke");
    revoke.addEventListener("click", () =>
      busy(revoke, async () => {
        const sure = await confirmAction(`Revoke “${token.label}”?`, "Revoke", "It stops working at once, for good.");
        if (!sure) return;
        await api(`/tokens/${token.id}/revoke`, { method: "POST" });
        notify(`Token “${token.label}” revoked.`, "info");
        await load();
      }),
    );
    return h(
      "li",
      { class: "token", dataset: { tokenId: token.id, state } },
      h("span", { class: "token-name" }, token.label || `token ${token.id}`),
      h("span", { class: "muted" }, `${token.role} · ${token.prefix}…`),
      h("span", { class: "token-scopes" }, scopeText(token.scopes)),
      h("span", { class: "muted" }, `created ${utc(token.created_at)}`),
      h("span", { class: "token-expires" }, token.expires_at ? `expires ${utc(token.expires_at)}` : "never expires"),
      h("span", { class: "token-used muted" }, token.last_used_at ? `last used ${utc(token.last_used_at)}` : "never used"),
      h("span", { class: "token-state" }, state),
      state === "active" ? rotate : null,
      state === "revoked" ? null : revoke,
    );
  }

  async function load() {
    const tokens = await fetchAll(api, "/tokens");
    list.replaceChildren(...tokens.map(row));
  }

  const el = h(
    "details",
    { class: "panel tokens", id: "tokens" },
    h("summary", {}, "Tokens for machines"),
    h("p", { class: "muted" }, "For your city's systems. A token never shows its secret again; rotate it for a new one."),
    list,
    h("h3", {}, "Issue a token"),
    form,
    secret,
  );
  return { el, load };
}
