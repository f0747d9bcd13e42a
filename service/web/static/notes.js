// Notes: the thread of each request (its claims' notes with it). A thread is read from the
// API when it is opened, and kept current by the `note.added` events the store folds in.

import { h, keepTyped } from "./dom.js";
import { cityName, liveTime } from "./format.js";
import { busy, notify } from "./notices.js";
import { t } from "./i18n.js";

const PAGE = 100; // the newest notes shown when a thread opens
const NOTE_MAX = 2000;

export class NoteThreads {
  constructor(api, render) {
    this.api = api;
    this.render = render;
    this.open = new Set(); // request ids whose thread is open: kept across re-renders
    this.earlier = new Map(); // request id → notes older than those loaded
    this.loaded = new Set();
  }

  notesOf(entry, requestId) {
    return [...entry.notes.values()].filter((n) => n.request_id === requestId).sort((a, b) => a.id - b.id);
  }

  /** What a thread shows: part of the signature its card is patched by. */
  signature(entry, requestId) {
    const notes = this.notesOf(entry, requestId).map((n) => n.id);
    return [this.open.has(requestId), this.loaded.has(requestId), entry.history === "done", notes];
  }

  async load(entry, requestId) {
    if (this.loaded.has(requestId)) return;
    this.loaded.add(requestId);
    try {
      const path = `/requests/${requestId}/notes?limit=${PAGE}`;
      let page = await this.api(path);
      if (page.next_offset !== null && page.next_offset !== undefined) {
        page = await this.api(`${path}&offset=${page.count - PAGE}`);
      }
      for (const note of page.data) entry.notes.set(note.id, note);
      this.earlier.set(requestId, page.offset);
    } catch (error) {
      this.loaded.delete(requestId);
      notify(t("notes.load_failed", { error: error.message }));
    }
    this.render();
  }

  /** A request's thread as a disclosure; with a form to add a note when `writable`. */
  view(entry, request, cities, { writable = false } = {}) {
    const id = request.id;
    const notes = this.notesOf(entry, id);
    const loaded = this.loaded.has(id);
    // Exact once the thread was read, or when the whole event history is folded in;
    // otherwise only the notes that arrived live are known.
    const exact = loaded || entry.history === "done";
    const total = notes.length + (this.earlier.get(id) || 0);
    const count = exact ? t("notes.count", { count: total }) : notes.length ? t("notes.new", { count: notes.length }) : t("notes.title");
    const older = this.earlier.get(id);
    const open = this.open.has(id);
    // A closed thread holds only its summary: its notes and form are drawn when it opens.
    const details = h("details", { class: "notes", open, dataset: { requestId: id } },
      h("summary", {}, count),
      open && older ? h("p", { class: "muted small" }, t("notes.older", { count: older })) : null,
      !open ? null
        : notes.length ? h("ol", { class: "note-list" }, notes.map((note) => noteItem(note, cities)))
        : loaded ? h("p", { class: "muted small empty-notes" }, t("notes.none")) : null,
      open && writable ? this.form(entry, request) : null,
    );
    details.addEventListener("toggle", () => {
      if (details.open === this.open.has(id)) return;
      if (details.open) {
        this.open.add(id);
        this.load(entry, id);
      } else this.open.delete(id);
      this.render();
    });
    return details;
  }

  form(entry, request) {
    const key = `note-${request.id}`;
    const text = h("textarea", { id: key, rows: 2, maxlength: NOTE_MAX, required: true, dataset: { keep: key, focus: key }, oninput: keepTyped });
    const send = h("button", { type: "submit", class: "secondary small", dataset: { focus: `${key}-send` } }, t("notes.add"));
    const form = h("form", { class: "note-form" }, h("label", { for: key, class: "visually-hidden" }, t("notes.new_note")), text, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = text.value.trim();
      if (!body) return text.focus();
      busy(send, async () => {
        const note = await this.api(`/requests/${request.id}/notes`, { method: "POST", body: { body } });
        entry.notes.set(note.id, note);
        text.value = "";
        delete text.dataset.dirty;
        this.render();
      });
    });
    return form;
  }
}

function noteItem(note, cities) {
  return h("li", { class: "note", dataset: { noteId: note.id } },
    h("p", { class: "note-meta fine" },
      h("strong", {}, cityName(cities, note.city_id)), ` · ${t(`role.${note.author_role}`)}`,
      note.claim_id ? ` · ${t("notes.on_claim", { id: note.claim_id })}` : "", " · ", liveTime(note.created_at, "ago"),
    ),
    h("p", { class: "note-body" }, note.body),
  );
}
