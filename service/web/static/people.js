// The people of the manager's city, on /manage: invite someone (the one-time sign-up
// link is shown once, to pass on), change their roles, disable or enable them, connect
// the city's sign-in provider; change your password, and sign yourself out everywhere.

import { h } from "./dom.js";
import { fetchAll } from "./api.js";
import { busy, notify } from "./notices.js";
import { providerPanel } from "./providers.js";
import { totpPanel } from "./totp.js";
import { t } from "./i18n.js";

const ROLES = ["manager", "responder", "observer"];

/** The people section; `el` goes on the page, `load()` fills it. */
export function peopleSection(api, me) {
  const list = h("ul", { class: "people-list", id: "people-list" });
  const invited = h("div", { id: "invited", "aria-live": "polite" });
  const email = h("input", { id: "invite-email", type: "email", required: true, autocomplete: "off" });
  const name = h("input", { id: "invite-name", required: true, autocomplete: "off" });
  const role = h("select", { id: "invite-role" }, ...ROLES.map((r) => h("option", { value: r }, t(`role.${r}`))));
  const form = h(
    "form",
    { class: "invite-form", id: "invite-form" },
    h("label", { for: "invite-email" }, t("shell.email")),
    email,
    h("label", { for: "invite-name" }, t("people.name")),
    name,
    h("label", { for: "invite-role" }, t("people.role")),
    role,
    h("button", { type: "submit", class: "primary small" }, t("people.invite")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button"), async () => {
      const person = await api("/people", {
        method: "POST",
        body: { email: email.value.trim(), display_name: name.value.trim(), roles: [role.value] },
      });
      const link = new URL(person.invite_url, location.href).href;
      invited.replaceChildren(
        h("p", {}, t("people.invited", { name: person.display_name })),
        h("code", { class: "invite-link", id: "invite-link" }, link),
      );
      form.reset();
      await load();
    });
  });
  const everywhere = me.user_id
    ? h("button", { type: "button", class: "secondary small", id: "sign-out-everywhere" }, t("people.sign_out_everywhere"))
    : null;
  everywhere?.addEventListener("click", () =>
    busy(everywhere, async () => {
      await api("/auth/sign-out-everywhere", { method: "POST" });
      location.reload();
    }),
  );
  // Your own account: the second factor (a signed-in person's only; tokens have none).
  const totp = me.user_id ? totpPanel(api, me) : null;
  const password = me.user_id ? passwordForm(api) : null;
  const provider = providerPanel(api, me);
  const el = h(
    "details",
    { class: "panel people", id: "people" },
    h("summary", {}, t("people.title")),
    list,
    h("h3", {}, t("people.invite_someone")),
    form,
    invited,
    provider.el,
    h("h3", {}, t("people.your_account")),
    totp?.el ?? null,
    password,
    everywhere,
  );

  function row(person) {
    const roles = h(
      "select",
      { class: "person-roles", "aria-label": t("people.role_of", { name: person.display_name }), disabled: person.id === me.user_id },
      ...ROLES.map((r) => h("option", { value: r, selected: person.roles.includes(r) }, t(`role.${r}`))),
    );
    roles.addEventListener("change", () =>
      busy(roles, async () => {
        await api(`/people/${person.id}`, { method: "PATCH", body: { roles: [roles.value] } });
        notify(t("people.now_role", { name: person.display_name, role: t(`role.${roles.value}`) }), "info");
      }),
    );
    const toggle = h(
      "button",
      { type: "button", class: "secondary small", disabled: person.id === me.user_id },
      person.disabled ? t("people.enable") : t("people.disable"),
    );
    toggle.addEventListener("click", () =>
      busy(toggle, async () => {
        await api(`/people/${person.id}`, { method: "PATCH", body: { disabled: !person.disabled } });
        await load();
      }),
    );
    return h(
      "li",
      { class: "person", dataset: { personId: person.id, disabled: String(person.disabled) } },
      h("span", { class: "person-name" }, person.display_name),
      h("span", { class: "muted" }, person.email),
      h("span", { class: "muted" }, person.signed_up ? "" : t("people.invited_state")),
      roles,
      toggle,
    );
  }

  async function load() {
    const people = await fetchAll(api, "/people");
    list.replaceChildren(...people.map(row));
    await totp?.load();
    await provider.load();
  }

  return { el, load };
}

/** Change your password: the current one, then the new one (your other sessions end). */
function passwordForm(api) {
  const current = h("input", { id: "change-current-password", type: "password", required: true, autocomplete: "current-password" });
  const fresh = h("input", { id: "change-new-password", type: "password", required: true, minlength: 12, autocomplete: "new-password" });
  const form = h(
    "form",
    { class: "password-form", id: "password-form" },
    h("h3", {}, t("people.change_password")),
    h("label", { for: "change-current-password" }, t("people.current_password")),
    current,
    h("label", { for: "change-new-password" }, t("people.new_password")),
    fresh,
    h("button", { type: "submit", class: "primary small" }, t("people.change_password")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button"), async () => {
      try {
        const changed = await api("/auth/password", {
          method: "POST",
          body: { current_password: current.value, new_password: fresh.value },
        });
        const others = changed.other_sessions_ended;
        notify(others ? t("people.password_changed_others", { count: others }) : t("people.password_changed"), "info");
      } finally {
        form.reset();
      }
    });
  });
  return form;
}
