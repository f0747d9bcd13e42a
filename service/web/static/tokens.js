// The API tokens of the manager's city, on /manage: for machines (dispatch bots, sensors,
// dashboards). Issue one with a label, a scope and a lifetime (its secret is shown once),
// see when each was last used and when it expires, rotate its secret or revoke it.

import { h } from "./dom.js";
import { fetchAll } from "./api.js";
import { utc } from "./format.js";
import { busy, confirmAction, notify } from "./notices.js";
import { TOKEN_SCOPES } from "./vocabulary.js";
import { t } from "./i18n.js";

const TOKEN_ROLES = ["responder", "observer", "manager"];

function scopeText(scopes) {
  return scopes.length ? scopes.map((s) => t(`token_scope.${s}`)).join(", ") : t("tokens.all_of_role");
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
  const role = h("select", { id: "token-role" }, ...TOKEN_ROLES.map((r) => h("option", { value: r }, t(`role.${r}`))));
  const scope = h(
    "select",
    { id: "token-scope" },
    h("option", { value: "" }, t("tokens.all_of_role")),
    ...TOKEN_SCOPES.map((s) => h("option", { value: s }, s === "read" ? t("tokens.read_only") : t(`token_scope.${s}`))),
  );
  const days = h("input", { id: "token-days", type: "number", min: 1, step: 1, placeholder: "90", inputmode: "numeric" });
  const form = h(
    "form",
    { class: "token-form", id: "token-form" },
    h("label", { for: "token-label" }, t("tokens.label")),
    label,
    h("label", { for: "token-role" }, t("tokens.role")),
    role,
    h("label", { for: "token-scope" }, t("tokens.may_write")),
    scope,
    h("label", { for: "token-days" }, t("tokens.expires_in_days")),
    days,
    h("button", { type: "submit", class: "primary small" }, t("tokens.issue")),
  );

  function showSecret(token, what) {
    secret.replaceChildren(
      h("p", {}, t(what, { label: token.label })),
      h("code", { class: "token-value", id: "token-value" }, token.token),
      h("p", { class: "muted" }, t("tokens.expires_at", { time: utc(token.expires_at) })),
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button"), async () => {
      const body = { role: role.value, label: label.value.trim(), scopes: scope.value ? [scope.value] : [] };
      if (days.value) body.expires_in_days = Number(days.value);
      const token = await api("/tokens", { method: "POST", body });
      showSecret(token, "tokens.issued");
      form.reset();
      await load();
    });
  });

  function row(token) {
    const state = stateOf(token);
    const rotate = h("button", { type: "button", class: "secondary small token-rotate" }, t("tokens.rotate"));
    rotate.addEventListener("click", () =>
      busy(rotate, async () => {
        const sure = await confirmAction(
          t("tokens.rotate_question", { label: token.label }),
          t("tokens.rotate"),
          t("tokens.rotate_detail"),
        );
        if (!sure) return;
        showSecret(await api(`/tokens/${token.id}/rotate`, { method: "POST" }), "tokens.rotated");
        await load();
      }),
    );
    const revoke = h("button", { type: "button", class: "danger small token-revoke" }, t("tokens.revoke"));
    revoke.addEventListener("click", () =>
      busy(revoke, async () => {
        const sure = await confirmAction(t("tokens.revoke_question", { label: token.label }), t("tokens.revoke"), t("tokens.revoke_detail"));
        if (!sure) return;
        await api(`/tokens/${token.id}/revoke`, { method: "POST" });
        notify(t("tokens.revoked", { label: token.label }), "info");
        await load();
      }),
    );
    return h(
      "li",
      { class: "token", dataset: { tokenId: token.id, state } },
      h("span", { class: "token-name" }, token.label || t("tokens.unnamed", { id: token.id })),
      h("span", { class: "muted" }, `${t(`role.${token.role}`)} · ${token.prefix}…`),
      h("span", { class: "token-scopes" }, scopeText(token.scopes)),
      h("span", { class: "muted" }, t("tokens.created", { time: utc(token.created_at) })),
      h("span", { class: "token-expires" }, token.expires_at ? t("tokens.expires", { time: utc(token.expires_at) }) : t("tokens.never_expires")),
      h("span", { class: "token-used muted" }, token.last_used_at ? t("tokens.last_used", { time: utc(token.last_used_at) }) : t("tokens.never_used")),
      h("span", { class: "token-state" }, t(`tokens.state.${state}`)),
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
    h("summary", {}, t("tokens.title")),
    h("p", { class: "muted" }, t("tokens.lead")),
    list,
    h("h3", {}, t("tokens.issue_title")),
    form,
    secret,
  );
  return { el, load };
}
