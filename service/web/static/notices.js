// Messages to the operator: notices that fade, a modal yes/no question, and a button
// that shows it is busy while its work runs.

import { h } from "./dom.js";
import { t } from "./i18n.js";

export function notify(message, kind = "error") {
  const region = document.getElementById("notices");
  const note = h(
    "div",
    { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, message),
    h("button", { type: "button", class: "quiet", "aria-label": t("notice.dismiss"), onclick: () => note.remove() }, "×"),
  );
  region.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 12_000 : 5_000);
}

/** A modal yes/no question; resolves true when confirmed. */
export function confirmAction(question, confirmLabel, details = "") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-q" },
      h("form", { method: "dialog" },
        h("p", { id: "confirm-q", class: "question" }, question),
        details ? h("p", { class: "muted" }, details) : null,
        h("div", { class: "actions" },
          h("button", { value: "no", class: "secondary", autofocus: true }, t("notice.keep")),
          h("button", { value: "yes", class: "danger" }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A modal form: `fields` are [name, label, props] for inputs (props as h()'s, e.g.
 * `{ type: "number", required: true }`, or `{ tag: "textarea" }`). Resolves to the
 * values typed, by name (blank ones left out), or null when kept as is.
 */
export function askDetails(question, confirmLabel, fields, details = "") {
  return new Promise((resolve) => {
    const inputs = fields.map(([name, label, { tag = "input", ...props } = {}]) => {
      const id = `ask-${name}`;
      return [name, h("label", { for: id }, label), h(tag, { id, name, ...props })];
    });
    const form = h("form", { method: "dialog" },
      h("p", { id: "ask-q", class: "question" }, question),
      details ? h("p", { class: "muted" }, details) : null,
      inputs.map(([, label, input]) => h("div", { class: "field" }, label, input)),
      h("div", { class: "actions" },
        h("button", { value: "no", class: "secondary", formnovalidate: true }, t("notice.keep")),
        h("button", { value: "yes", class: "primary" }, confirmLabel),
      ),
    );
    const dialog = h("dialog", { class: "confirm ask", "aria-labelledby": "ask-q" }, form);
    dialog.addEventListener("close", () => {
      const values = {};
      for (const [name, , input] of inputs) {
        if (input.value.trim()) values[name] = input.value.trim();
      }
      resolve(dialog.returnValue === "yes" ? values : null);
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    inputs[0]?.[2].focus();
  });
}

/** Disable a button while `work` runs, and report its error. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    notify(error.message || String(error));
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
