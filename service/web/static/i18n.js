// The pages' languages: English, German and Swahili, from the message catalogues
// i18n-en.json, i18n-de.json and i18n-sw.json. The language is the first of the browser's
// (navigator.languages) that aidmesh speaks, unless the switcher in the header chose
// another, which this browser remembers (and tells the server in a cookie). t(key, params)
// looks a message up, fills its {placeholders} and picks its plural form; number() and
// dateTime() format by locale.

const STORAGE_KEY = "aidmesh.language";

/** Each language aidmesh speaks, by its code, named in itself. */
export const LANGUAGES = { en: "English", de: "Deutsch", sw: "Kiswahili" };

// Literal addresses, one per catalogue, so a crawl of the pages finds every one.
const CATALOGUES = {
  en: () => fetch("/static/i18n-en.json"),
  de: () => fetch("/static/i18n-de.json"),
  sw: () => fetch("/static/i18n-sw.json"),
};

function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage refused (a private window, say): the browser's language decides
  }
}

// The same choice for the pages the server words itself (the end of a refused sign-in),
// which cannot read localStorage.
const COOKIE = "aidmesh_lang";
const YEAR_S = 365 * 24 * 3600;

function tellServer(code) {
  document.cookie = `${COOKIE}=${code}; path=/; max-age=${YEAR_S}; samesite=lax`;
}

/** The browser's own tags, most preferred first. */
const preferred = () => [...(navigator.languages || []), navigator.language].filter(Boolean);

function choose() {
  const saved = remembered();
  if (saved && saved in LANGUAGES) return saved;
  for (const tag of preferred()) {
    const base = tag.toLowerCase().split("-")[0];
    if (base in LANGUAGES) return base;
  }
  return "en";
}

/** The language of this page: "en", "de" or "sw". */
export const lang = choose();

// A choice remembered before the server was told of it is told now.
if (remembered() === lang) tellServer(lang);

/** The locale numbers and dates follow: the browser's own tag when it is of `lang`
 * ("de-AT", "en-GB"), else the language itself. */
export const locale =
  preferred().find((tag) => tag.toLowerCase().split("-")[0] === lang) || lang;

async function load(code) {
  try {
    const response = await CATALOGUES[code]();
    return response.ok ? await response.json() : {};
  } catch {
    return {};
  }
}

// English is the fallback for a message a catalogue lacks yet.
const [messages, english] = await Promise.all([load(lang), lang === "en" ? null : load("en")]);

const plurals = new Intl.PluralRules(locale);

/** The message of `key` in this page's language, its {name} placeholders filled from
 * `params` (as given: number() formats by locale); a message with plural forms ({"one": …, "other": …}) picks its form by
 * `params.count`. An unknown key shows as itself. */
export function t(key, params = {}) {
  let message = messages[key] ?? english?.[key] ?? key;
  if (typeof message === "object") {
    const count = Number(params.count ?? 0);
    message = message[plurals.select(count)] ?? message.other;
  }
  // Values go in as given: an id or a count stays "1234" (number() formats by locale).
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Whether the catalogue has `key` (for labels keyed by a value the server may extend). */
export const has = (key) => key in messages || Boolean(english && key in english);

/** The message of `key` when there is one, else `fallback`. */
export const tOr = (key, fallback, params = {}) => (has(key) ? t(key, params) : fallback);

/** A number as this locale writes it: "1,234.5", "1.234,5". */
export const number = (value, options = {}) => new Intl.NumberFormat(locale, options).format(value);

/** A moment as this locale writes it (`options` as Intl.DateTimeFormat's). */
export const dateTime = (iso, options = {}) => new Date(iso).toLocaleString(locale, options);

/** Remember `code` as this browser's language for aidmesh, and show the page in it. */
export function switchTo(code) {
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Not remembered, but this page still turns.
  }
  tellServer(code);
  location.reload();
}

/** The header's language switcher. */
function switcher() {
  const select = document.createElement("select");
  select.id = "language";
  select.className = "language";
  select.setAttribute("aria-label", t("shell.language"));
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const option = document.createElement("option");
    option.value = code;
    option.lang = code;
    option.textContent = name;
    option.selected = code === lang;
    select.append(option);
  }
  select.addEventListener("change", () => switchTo(select.value));
  return select;
}

/** Put the server-drawn shell into this language: <html lang>, the title, every
 * [data-i18n] element (navigation, skip link) and the switcher. */
function translateShell() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
  const page = document.body?.dataset.page;
  if (page) {
    const title = t(`page.${page}.title`);
    document.title = page === "index" ? title : `${title} · aidmesh`;
  }
  document.querySelector("header.topbar")?.append(switcher());
}

translateShell();
