// The page shell: the server draws the header, navigation and an empty main from the
// table of pages (service/web/pages.py); this adds sign-in, who is signed in and the
// connection indicator, then hands the page's module its context.

import { makeApi, fetchAll } from "./api.js";
import { h, shellData } from "./dom.js";
import { loadCatalogue, tick } from "./format.js";
import { Live } from "./live.js";

/** This page's row of the table of pages. */
export function thisPage() {
  const { page, pages } = shellData();
  return pages.find((p) => p.id === page);
}

/** Every row of the table of pages, in navigation order. */
export const allPages = () => shellData().pages;

const STATE_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/**
 * Finish the shell the server drew (header, navigation, main) and sign in. The page's
 * title, the token roles it accepts and whether the token must be a city's come from the
 * table of pages; `start(ctx)` runs once signed in, with the API, who is signed in and
 * the cities, and returns nothing. The token stays in this tab's sessionStorage.
 */
export function startPage({ hint, start }) {
  const page = thisPage();
  const { title, roles } = page;
  const needsCity = page.needs_city;
  const storageKey = `aidmesh.token.${page.id}`;
  const indicator = h(
    "div",
    { class: "conn", id: "conn", role: "status", dataset: { state: "offline" } },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "conn-label" }, "Not connected"),
  );
  const who = h("div", { class: "who", id: "who" });
  const signOut = h("button", { type: "button", class: "secondary small", id: "sign-out", hidden: true }, "Sign out");
  document.querySelector("header.topbar").append(h("div", { class: "topbar-end" }, who, indicator, signOut));
  const main = document.getElementById("main");

  let token = sessionStorage.getItem(storageKey) || "";
  const api = makeApi(() => token);
  let live = null;

  function setIndicator(state, connection) {
    indicator.dataset.state = state;
    indicator.querySelector(".conn-label").textContent = STATE_LABELS[state] || state;
    indicator.title =
      state === "live"
        ? "Receiving events as they happen"
        : state === "offline"
          ? "No connection; retrying in the background"
          : "Connecting to the live stream";
    indicator.onclick = state === "offline" ? () => connection?.retryNow() : null;
  }

  function showSignIn(message = "") {
    live?.stop();
    live = null;
    who.textContent = "";
    signOut.hidden = true;
    setIndicator("offline");
    indicator.querySelector(".conn-label").textContent = "Signed out";
    const input = h("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      placeholder: "amk_…",
    });
    const error = h("p", { class: "form-error", id: "token-error", role: "alert" }, message);
    const form = h(
      "form",
      { class: "panel sign-in", id: "sign-in" },
      h("h1", {}, title),
      h("p", { class: "muted" }, hint),
      h("label", { for: "token" }, "Access token"),
      input,
      error,
      h("button", { type: "submit", class: "primary" }, "Sign in"),
      h(
        "p",
        { class: "fine" },
        "The token stays in this browser tab only (session storage) and is sent as a bearer header, never in an address.",
      ),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      token = input.value.trim();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await enter();
      } finally {
        button.disabled = false;
      }
    });
    main.replaceChildren(form);
    input.focus();
  }

  async function enter() {
    let me;
    try {
      me = await api("/me");
    } catch (error) {
      sessionStorage.removeItem(storageKey);
      showSignIn(error.status === 401 ? "That token is not valid (or was revoked)." : error.message);
      return;
    }
    if (roles && !roles.includes(me.role)) {
      sessionStorage.removeItem(storageKey);
      showSignIn(`This page needs a ${roles.join(" or ")} token; this one is a ${me.role} token.`);
      return;
    }
    if (needsCity && me.city_id === null) {
      sessionStorage.removeItem(storageKey);
      showSignIn("This page needs a token of a city.");
      return;
    }
    sessionStorage.setItem(storageKey, token);
    const cities = new Map((await fetchAll(api, "/cities")).map((c) => [c.id, c]));
    await loadCatalogue(api);
    const city = me.city_id !== null ? cities.get(me.city_id) : null;
    who.replaceChildren(
      h("span", { class: "who-city" }, city ? city.name : "All cities"),
      h("span", { class: "who-role" }, me.role),
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
            onAuthLost: () => showSignIn("The token is no longer valid; sign in again."),
            ...options,
            onStatus(state, connection) {
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
          h("h1", {}, "Could not load this page"),
          h("p", {}, error.message || String(error)),
          h("button", { type: "button", class: "primary", onclick: () => location.reload() }, "Try again"),
        ),
      );
    }
  }

  signOut.addEventListener("click", () => {
    sessionStorage.removeItem(storageKey);
    token = "";
    location.reload();
  });

  setInterval(tick, 1000);
  if (token) enter();
  else showSignIn();
}

