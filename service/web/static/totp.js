// The TOTP second factor of the signed-in person: set it up (the secret and its
// otpauth:// URI are shown once, to type or paste into an authenticator app, then a
// current code turns it on), or turn it off with a current code.

import { h } from "./dom.js";
import { busy, notify } from "./notices.js";
import { t } from "./i18n.js";

const CODE = { inputmode: "numeric", pattern: "[0-9]{6}", maxlength: 6, autocomplete: "one-time-code", required: true };

/** The second-factor panel; `el` goes on the page, `load()` fills it. `onOn()` runs once it is on. */
export function totpPanel(api, me, { onOn = null, lead = "" } = {}) {
  const body = h("div", { id: "totp-body", "aria-live": "polite" });
  const el = h("section", { class: "panel totp", id: "totp" }, h("h3", {}, t("totp.title")), lead ? h("p", {}, lead) : null, body);

  function codeForm(id, label, action) {
    const input = h("input", { id: `${id}-code`, name: "code", ...CODE });
    const form = h("form", { id }, h("label", { for: `${id}-code` }, t("totp.code")), input,
      h("button", { type: "submit", class: "primary small" }, label));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(form.querySelector("button"), async () => {
        try {
          await action(input.value.trim());
        } finally {
          input.value = "";
        }
      });
    });
    return form;
  }

  function showOff() {
    const start = h("button", { type: "button", class: "primary small", id: "totp-enrol" }, t("totp.set_up"));
    start.addEventListener("click", () =>
      busy(start, async () => {
        const enrolment = await api("/auth/totp/enrol", { method: "POST" });
        body.replaceChildren(
          h("p", {}, t("totp.add")),
          h("p", {}, `${t("totp.key")} `, h("code", { id: "totp-secret" }, enrolment.secret)),
          h("p", {}, `${t("totp.link")} `, h("code", { class: "totp-uri", id: "totp-uri" }, enrolment.otpauth_uri)),
          codeForm("totp-confirm", t("totp.turn_on"), async (code) => {
            await api("/auth/totp/confirm", { method: "POST", body: { code } });
            notify(t("totp.on_notice"), "info");
            showOn();
            onOn?.();
          }),
        );
      }),
    );
    body.replaceChildren(h("p", { class: "muted", id: "totp-state" }, t("totp.off_state")), start);
  }

  function showOn() {
    body.replaceChildren(
      h("p", { id: "totp-state" }, t("totp.on_state")),
      codeForm("totp-disable", t("totp.turn_off"), async (code) => {
        await api("/auth/totp/disable", { method: "POST", body: { code } });
        notify(t("totp.off_notice"), "info");
        showOff();
      }),
    );
  }

  async function load() {
    const person = await api(`/people/${me.user_id}`);
    if (person.totp_enabled) showOn();
    else showOff();
  }

  return { el, load, showOff };
}
