// How a page words a refusal of the server: by its `code` and `params` (the catalogue's
// "error.code.<code>"), in this page's language; in English, by the server's own sentence.
// A code this page does not know falls back to what the status means ("error.<status>")
// and the server's English sentence.

import { has, lang, number, t, tOr } from "./i18n.js";

/** What an HTTP status means, in this page's language ("error.409"). */
export function errorSummary(status) {
  return t(has(`error.${status}`) ? `error.${status}` : "error.other", { status });
}

/** The server's own sentence (English), or its issues by location, as one line. */
export function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        const where = (d.loc || []).filter((p) => p !== "body").join(".");
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  return JSON.stringify(detail);
}

const statusWord = (value) => tOr(`status.${value}`, String(value));
const fieldWord = (loc) => (loc || []).filter((p) => p !== "body").join(".");

/** One validation issue: its field and what is wrong with it, by pydantic's type; a type
 * the page does not know keeps the server's own words for it (`said`, from the detail). */
function issueText(issue, said) {
  const field = fieldWord(issue.loc);
  if (has(`refusal.issue.${issue.type}`)) {
    const limit = typeof issue.limit === "number" ? number(issue.limit) : issue.limit;
    return t(`refusal.issue.${issue.type}`, { field, limit });
  }
  if (said?.msg) return field ? `${field}: ${said.msg}` : said.msg;
  return t("refusal.issue.other", { field });
}

/** The params of `code` as its message takes them: numbers by locale, statuses and
 * roles in this page's words, issues each worded. */
function wordParams(code, params, detail) {
  const worded = { detail: describeDetail(detail) };
  for (const [name, value] of Object.entries(params || {})) {
    worded[name] = typeof value === "number" ? number(value) : value;
  }
  if (params?.current !== undefined) worded.current = statusWord(params.current);
  if (params?.asked !== undefined && typeof params.asked === "string") worded.asked = statusWord(params.asked);
  if (params?.what !== undefined) worded.what = tOr(`refusal.what.${params.what}`, String(params.what));
  if (params?.field !== undefined) worded.field = tOr(`refusal.field.${params.field}`, String(params.field));
  if (Array.isArray(params?.roles)) worded.roles = params.roles.map((r) => tOr(`role.${r}`, r)).join(" / ");
  if (params?.role !== undefined) worded.role = tOr(`role.${params.role}`, String(params.role));
  if (Array.isArray(params?.scopes)) worded.scopes = params.scopes.join(", ");
  if (code === "invalid_input" && Array.isArray(params?.issues)) {
    const said = Array.isArray(detail) ? detail : [];
    worded.issues = params.issues.map((issue, i) => issueText(issue, said[i])).join("; ");
  }
  return worded;
}

/**
 * A refusal in this page's language. In English the server's own sentence says it all,
 * and says more than its code (why a move is refused, "1 unit is claimed"); in another
 * language, the message of its code when the page knows it, else the status's meaning and
 * then the server's sentence.
 */
export function refusalText(status, detail, code = null, params = {}) {
  const said = describeDetail(detail);
  if (lang === "en") return said;
  if (code && has(`error.code.${code}`)) return t(`error.code.${code}`, wordParams(code, params, detail));
  const summary = errorSummary(status);
  return said === summary ? said : `${summary}: ${said}`;
}
