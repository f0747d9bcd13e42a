// The city's sign-in provider (OpenID Connect), in /manage's people section: connect
// one (its issuer, client and secret), say which groups or claims map to which roles,
// change or remove it. The secret is written, never shown again.

import { h } from "./dom.js";
import { busy, notify } from "./notices.js";
import { t } from "./i18n.js";

/** Rules as lines `claim = value -> role, role` (e.g. `groups = dispatch -> responder`). */
function rulesToText(rules) {
  return rules.map((r) => `${r.claim} = ${r.value} -> ${r.roles.join(", ")}`).join("\n");
}

function textToRules(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line, i) => {
      const [match, roles] = line.split("->");
      const at = match ? match.indexOf("=") : -1;
      if (roles === undefined || at < 1) {
        throw new Error(t("providers.rule_form", { n: i + 1 }));
      }
      return {
        claim: match.slice(0, at).trim(),
        value: match.slice(at + 1).trim(),
        roles: roles.split(",").map((r) => r.trim()).filter(Boolean),
      };
    });
}

/** The provider panel of the manager's city; `el` is null for a caller of no city. */
export function providerPanel(api, me) {
  if (me.city_id === null) return { el: null, load: async () => {} };
  const path = `/cities/${me.city_id}/sign-in-provider`;
  const field = (id, attrs = {}) => h("input", { id, autocomplete: "off", spellcheck: "false", ...attrs });
  const label = field("provider-label", { required: true, maxlength: 100 });
  const issuer = field("provider-issuer", { type: "url", required: true, placeholder: "https://login.example.org/realms/city" });
  const clientId = field("provider-client-id", { required: true });
  const secret = field("provider-secret", { type: "password", placeholder: t("providers.secret_kept") });
  const rules = h("textarea", { id: "provider-rules", rows: 3, spellcheck: "false", placeholder: "groups = dispatch -> responder" });
  const status = h("p", { class: "muted", id: "provider-status", "aria-live": "polite" });
  const remove = h("button", { type: "button", class: "danger-outline small", id: "provider-remove", hidden: true }, t("providers.remove"));
  const form = h(
    "form",
    { class: "provider-form", id: "provider-form" },
    status,
    h("label", { for: "provider-label" }, t("providers.button_label")),
    label,
    h("label", { for: "provider-issuer" }, t("providers.issuer")),
    issuer,
    h("label", { for: "provider-client-id" }, t("providers.client_id")),
    clientId,
    h("label", { for: "provider-secret" }, t("providers.client_secret")),
    secret,
    h("label", { for: "provider-rules" }, t("providers.rules")),
    rules,
    h("p", { class: "fine" }, t("providers.no_match")),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary small" }, t("providers.save")), remove),
  );

  function show(provider) {
    if (!provider) {
      status.textContent = t("providers.none");
      remove.hidden = true;
      return;
    }
    label.value = provider.label;
    issuer.value = provider.issuer;
    clientId.value = provider.client_id;
    secret.value = "";
    rules.value = rulesToText(provider.rules);
    remove.hidden = false;
    status.textContent = t("providers.connected", { button: t("shell.sign_in_with", { label: provider.label }), uri: provider.redirect_uri });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button[type=submit]"), async () => {
      const body = {
        label: label.value.trim(),
        issuer: issuer.value.trim(),
        client_id: clientId.value.trim(),
        rules: textToRules(rules.value),
        ...(secret.value ? { client_secret: secret.value } : {}),
      };
      show(await api(path, { method: "PUT", body }));
      notify(t("providers.saved"), "info");
    });
  });
  remove.addEventListener("click", () =>
    busy(remove, async () => {
      await api(path, { method: "DELETE" });
      form.reset();
      show(null);
    }),
  );

  async function load() {
    try {
      show(await api(path));
    } catch (error) {
      if (error.status === 404) show(null);
      else status.textContent = error.message;
    }
  }

  const el = h("div", { class: "provider", id: "sign-in-provider" }, h("h3", {}, t("providers.title")), form);
  return { el, load };
}
