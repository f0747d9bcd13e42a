// Messages to the operator: notices that fade, a modal yes/no question, and a button
// that shows it is busy while its work runs.

import { h } from "./dom.js";

export function notify(message, kind = "error") {
  const region = document.getElementById("notices");
  const note = h(
    "div",
    { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, message),
    h("button", { type: "button", class: "quiet", "aria-label": "Dismiss", onclick: () => note.remove() }, "×"),
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
          h("button", { value: "no", class: "secondary", autofocus: true }, "Keep as is"),
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
