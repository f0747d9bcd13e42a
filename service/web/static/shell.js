// The page shell: the server draws the header, navigation and an empty main from the
// table of pages (service/web/pages.py); this adds sign-in, who is signed in and the
// connection indicator, then hands the page's module its context.

import { cookie, makeApi, fetchAll, forgetCopies, keepCopiesOf } from "./api.js";
import { h, shellData } from "./dom.js";
import { t } from "./i18n.js";
import { clockElement, liveTime, loadCatalogue, tick } from "./format.js";
import { Live } from "./live.js";
import { totpPanel } from "./totp.js";
import { SIGNED_OUT } from "./outbox.js";

/** This page's row of the table of pages. */
export function thisPage() {
  const { page, pages } = shellData();
  return pages.find((p) => p.id === page);
}

/** The service worker keeps the shell and the assets, so the pages open offline. */
export function keepPagesOffline() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => null);
}

/**
 * The marker of a page drawn from kept answers: "Last updated 4 min ago (offline) ·
 * 14:03:07 CET", the age of the oldest answer it used; gone once the page is live again.
 */
class StaleMarker {
  constructor() {
    this.oldest = null;
    this.el = h("p", { class: "stale", id: "stale", role: "status", hidden: true });
    document.getElementById("main").before(this.el);
  }

  saw(storedAt) {
    if (this.oldest && this.oldest <= storedAt) return;
    this.oldest = storedAt;
    this.el.replaceChildren(
      `${t("shell.stale.updated")} `,
      liveTime(storedAt, "ago"),
      ` ${t("shell.stale.offline_at")} `,
      clockElement(storedAt),
      t("shell.stale.copy"),
    );
    this.el.hidden = false;
  }

  clear() {
    this.oldest = null;
    this.el.hidden = true;
    this.el.replaceChildren();
  }

  get shown() {
    return this.oldest !== null;
  }
}

/** Every row of the table of pages, in navigation order. */
export const allPages = () => shellData().pages;

const STATE_LABELS = {
  connecting: "shell.state.connecting",
  live: "shell.state.live",
  reconnecting: "shell.state.reconnecting",
  offline: "shell.state.offline",
};

/** A role's name in this language ("manager"). */
export const roleLabel = (role) => t(`role.${role}`);

/**
 * Finish the shell the server drew (header, navigation, main) and sign in. The page's
 * title, the token roles it accepts and whether the token must be a city's come from the
 * table of pages; `start(ctx)` runs once signed in, with the API, who is signed in and
 * the cities, and returns nothing. A person signs in with email and password (a session
 * cookie); a machine token, the advanced option, stays in this tab's sessionStorage.
 */
export function startPage({ hint, start }) {
  const page = thisPage();
  const { roles } = page;
  const title = t(`page.${page.id}.title`);
  const needsCity = page.needs_city;
  const storageKey = `aidmesh.token.${page.id}`;
  const indicator = h(
    "div",
    { class: "conn", id: "conn", role: "status", dataset: { state: "offline" } },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "conn-label" }, t("shell.not_connected")),
  );
  const who = h("div", { class: "who", id: "who" });
  const signOut = h("button", { type: "button", class: "secondary small", id: "sign-out", hidden: true }, t("shell.sign_out"));
  // The language switcher (i18n.js put it in the header) joins the signed-in controls.
  const language = document.getElementById("language");
  document.querySelector("header.topbar").append(h("div", { class: "topbar-end" }, who, indicator, signOut, language ?? ""));
  const main = document.getElementById("main");

  keepPagesOffline();
  const stale = new StaleMarker();
  let token = sessionStorage.getItem(storageKey) || "";
  const api = makeApi(() => token, { onCopy: (storedAt) => stale.saw(storedAt) });
  let live = null;

  function setIndicator(state, connection) {
    indicator.dataset.state = state;
    indicator.querySelector(".conn-label").textContent = STATE_LABELS[state] ? t(STATE_LABELS[state]) : state;
    indicator.title =
      state === "live"
        ? t("shell.state.live_title")
        : state === "offline"
          ? t("shell.state.offline_title")
          : t("shell.state.connecting_title");
    indicator.onclick = state === "offline" ? () => connection?.retryNow() : null;
  }

  /** The sign-in form; `tokenMessage` opens the machine-token option with that error. */
  function showSignIn(message = "", tokenMessage = "") {
    live?.stop();
    live = null;
    window.dispatchEvent(new Event(SIGNED_OUT)); // a page's outbox stops sending
    who.textContent = "";
    signOut.hidden = true;
    setIndicator("offline");
    indicator.querySelector(".conn-label").textContent = t("shell.signed_out");
    const email = h("input", {
      id: "email",
      name: "email",
      type: "email",
      autocomplete: "username",
      spellcheck: "false",
      required: true,
    });
    const password = h("input", {
      id: "password",
      name: "password",
      type: "password",
      autocomplete: "current-password",
      required: true,
    });
    const code = h("input", {
      id: "sign-in-code",
      name: "code",
      inputmode: "numeric",
      pattern: "[0-9]{6}",
      maxlength: 6,
      autocomplete: "one-time-code",
    });
    const error = h("p", { class: "form-error", id: "sign-in-error", role: "alert" }, message);
    const form = h(
      "form",
      { class: "panel sign-in", id: "sign-in" },
      h("h1", {}, title),
      h("p", { class: "muted" }, hint),
      h("label", { for: "email" }, t("shell.email")),
      email,
      h("label", { for: "password" }, t("shell.password")),
      password,
      h("label", { for: "sign-in-code" }, t("shell.code")),
      code,
      error,
      h("button", { type: "submit", class: "primary" }, t("shell.sign_in")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const started = await api("/auth/sign-in", {
          method: "POST",
          body: {
            email: email.value.trim(),
            password: password.value,
            ...(code.value.trim() ? { code: code.value.trim() } : {}),
          },
        });
        password.value = "";
        code.value = "";
        token = "";
        if (started.enrol_only) showEnrolFirst(started);
        else await enter();
      } catch (failure) {
        password.value = "";
        code.value = "";
        error.textContent =
          failure.status === 401 && failure.detail === "wrong email or password"
            ? t("shell.wrong_password")
            : failure.status === 401
              ? `${failure.message[0].toUpperCase()}${failure.message.slice(1)}.`
              : failure.status === 429
                ? t("shell.too_many_sign_ins", { detail: failure.detail })
                : failure.message;
      } finally {
        button.disabled = false;
      }
    });
    const tokenInput = h("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      placeholder: "amk_…",
    });
    const tokenForm = h(
      "form",
      { id: "token-sign-in" },
      h("label", { for: "token" }, t("shell.machine_token")),
      tokenInput,
      h("p", { class: "form-error", id: "token-error", role: "alert" }, tokenMessage),
      h("button", { type: "submit", class: "secondary" }, t("shell.use_token")),
      h(
        "p",
        { class: "fine" },
        t("shell.token_fine"),
      ),
    );
    tokenForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      token = tokenInput.value.trim();
      const button = tokenForm.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await enter();
      } finally {
        button.disabled = false;
      }
    });
    const advanced = h(
      "details",
      { class: "panel sign-in advanced", id: "advanced-sign-in", open: Boolean(tokenMessage) },
      h("summary", {}, t("shell.advanced_token")),
      tokenForm,
    );
    const providers = h("div", { class: "provider-sign-in", id: "provider-sign-in", hidden: true });
    form.append(providers);
    showProviders(providers);
    main.replaceChildren(form, advanced);
    (tokenMessage ? tokenInput : email).focus();
  }

  /** The buttons of the sign-in providers (OpenID Connect), beside the password form. */
  async function showProviders(into) {
    let buttons = [];
    try {
      const answer = await fetch("/auth/oidc/providers", { credentials: "same-origin" });
      if (answer.ok) buttons = await answer.json();
    } catch {
      return; // no providers to offer: the password form stands alone
    }
    if (!buttons.length) return;
    const next = encodeURIComponent(location.pathname);
    into.replaceChildren(
      h("p", { class: "muted" }, t("shell.sign_in_provider")),
      ...buttons.map((b) =>
        h("a", { class: "button secondary", id: `provider-${b.id}`, href: `${b.start_url}?next=${next}` }, t("shell.sign_in_with", { label: b.label })),
      ),
    );
    into.hidden = false;
  }

  /** Signed in, but the city requires a second factor this person has not set up yet. */
  function showEnrolFirst(started) {
    const panel = totpPanel(api, started, {
      lead: t("shell.enrol_first"),
      onOn: () => enter(),
    });
    signOut.hidden = false;
    panel.showOff();
    main.replaceChildren(panel.el);
  }

  async function enter() {
    let me;
    try {
      me = await api("/me");
    } catch (error) {
      sessionStorage.removeItem(storageKey);
      if (error.status === 401) await forgetCopies().catch(() => null);
      if (!token) showSignIn(error.status === 401 ? "" : error.message);
      else showSignIn("", error.status === 401 ? t("shell.token_invalid") : error.message);
      return;
    }
    // A refusal of a token is shown by the token's field, of an account by the form's.
    const refuse = (message) => {
      sessionStorage.removeItem(storageKey);
      if (token) showSignIn("", message);
      else showSignIn(message);
    };
    const what = me.user_id ? "account" : "token";
    if (roles && !roles.includes(me.role)) {
      refuse(
        t(`shell.needs_role_${what}`, {
          roles: roles.map(roleLabel).join(t("shell.or")),
          role: roleLabel(me.role),
        }),
      );
      return;
    }
    if (needsCity && me.city_id === null) {
      refuse(t(`shell.needs_city_${what}`));
      return;
    }
    if (token) sessionStorage.setItem(storageKey, token);
    // Another person's kept answers are forgotten before this one's are kept.
    if (!stale.shown) {
      const who = JSON.stringify([me.user_id ?? null, me.token_id ?? null, me.role, me.city_id]);
      if (await keepCopiesOf(who).catch(() => false)) await api("/me").catch(() => null);
    }
    const cities = new Map((await fetchAll(api, "/cities")).map((c) => [c.id, c]));
    await loadCatalogue(api);
    const city = me.city_id !== null ? cities.get(me.city_id) : null;
    who.replaceChildren(
      ...(me.display_name ? [h("span", { class: "who-name", id: "who-name" }, me.display_name)] : []),
      h("span", { class: "who-city" }, city ? city.name : t("shell.all_cities")),
      h("span", { class: "who-role" }, roleLabel(me.role)),
    );
    signOut.hidden = false;
    main.replaceChildren();
    try {
      await start({
        api,
        me,
        city,
        cities,
        main,
        connect(options) {
          live = new Live({
            api,
            session: !token,
            onAuthLost: () => {
              forgetCopies().catch(() => null);
              if (token) showSignIn("", t("shell.token_lost"));
              else showSignIn(t("shell.signed_out_again"));
            },
            ...options,
            onStatus(state, connection) {
              // Live again: the events since the kept answers' seqs have caught the page up.
              if (state === "live") stale.clear();
              setIndicator(state, connection);
              options.onStatus?.(state, connection);
            },
          });
          setIndicator("connecting", live);
          live.start();
          return live;
        },
      });
    } catch (error) {
      main.replaceChildren(
        h("div", { class: "panel sign-in", role: "alert" },
          h("h1", {}, t("shell.load_failed")),
          h("p", {}, error.message || String(error)),
          h("button", { type: "button", class: "primary", onclick: () => location.reload() }, t("shell.try_again")),
        ),
      );
    }
  }

  signOut.addEventListener("click", async () => {
    sessionStorage.removeItem(storageKey);
    await forgetCopies().catch(() => null);
    if (!token) await api("/auth/sign-out", { method: "POST" }).catch(() => null);
    token = "";
    location.reload();
  });

  /** The invitation's sign-up: choose a password, then sign in with it. */
  function showSignUp(code) {
    const password = h("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: 12 });
    const again = h("input", { id: "new-password-again", type: "password", autocomplete: "new-password", required: true });
    const error = h("p", { class: "form-error", id: "sign-up-error", role: "alert" });
    const form = h(
      "form",
      { class: "panel sign-in", id: "sign-up" },
      h("h1", {}, t("shell.choose_password")),
      h("p", { class: "muted" }, t("shell.password_hint")),
      h("label", { for: "new-password" }, t("shell.password")),
      password,
      h("label", { for: "new-password-again" }, t("shell.password_again")),
      again,
      error,
      h("button", { type: "submit", class: "primary" }, t("shell.create_account")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (password.value !== again.value) {
        error.textContent = t("shell.passwords_differ");
        return;
      }
      try {
        const person = await api("/auth/sign-up", { method: "POST", body: { code, password: password.value } });
        history.replaceState(null, "", location.pathname);
        showSignIn();
        document.getElementById("email").value = person.email;
        document.getElementById("sign-in-error").textContent = t("shell.account_ready");
        document.getElementById("password").focus();
      } catch (failure) {
        error.textContent = failure.message;
      }
    });
    main.replaceChildren(form);
    password.focus();
  }

  setInterval(tick, 1000);
  const signupCode = new URLSearchParams(location.hash.slice(1)).get("signup");
  // An invitation, else a token of this tab, else the browser's session, else the form.
  if (signupCode) showSignUp(signupCode);
  // The session cookie is out of the page's reach; its CSRF cookie says there is one.
  else if (token || cookie("aidmesh_csrf")) enter();
  else showSignIn();
}

