// Notes: the thread of each request (its claims' notes with it). A thread is read from the
// API when it is opened, and kept current by the `note.added` events the store folds in.
// A note written goes through the page's outbox (outbox.js): shown as waiting in its
// thread until the service has answered, added once however often it is sent.

import { h, keepTyped } from "./dom.js";
import { cityName, liveTime } from "./format.js";
import { notify } from "./notices.js";
import { t } from "./i18n.js";

const PAGE = 100; // the newest notes shown when a thread opens
const NOTE_MAX = 2000;

export class NoteThreads {
  /** `outbox`: the page's, through which notes are written (none: threads are read only). */
  constructor(api, render, outbox = null) {
    this.api = api;
    this.render = render;
    this.outbox = outbox;
    this.open = new Set(); // request ids whose thread is open: kept across re-renders
    this.earlier = new Map(); // request id → notes older than those loaded
    this.loaded = new Set();
  }

  notesOf(entry, requestId) {
    return [...entry.notes.values()].filter((n) => n.request_id === requestId).sort((a, b) => a.id - b.id);
  }

  /** The notes on this request waiting in the outbox, oldest first. */
  waitingOn(requestId) {
    return this.outbox ? this.outbox.pending().filter((a) => a.kind === "note" && a.body.request_id === requestId) : [];
  }

  /** What a thread shows: part of the signature its card is patched by. */
  signature(entry, requestId) {
    const notes = this.notesOf(entry, requestId).map((n) => n.id);
    const waiting = this.waitingOn(requestId).map((a) => a.key);
    return [this.open.has(requestId), this.loaded.has(requestId), entry.history === "done", notes, waiting];
  }

  /**
   * The service's answer to a queued note: the note joins its thread in `book` (the
   * event brings the same), or the refusal is said.
   */
  answered(book, action, note, refusal) {
    if (refusal) notify(t("outbox.not_done", { label: action.label, error: refusal.message || String(refusal) }));
    else book.entry(note.incident_id).notes.set(note.id, note);
    this.render();
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

  /**
   * A request's thread as a disclosure; with a form to add a note when `writable`, which
   * may be about one of `claims` (those the viewer's city may write on) or the request.
   */
  view(entry, request, cities, { writable = false, claims = [] } = {}) {
    const id = request.id;
    const notes = this.notesOf(entry, id);
    const loaded = this.loaded.has(id);
    // Exact once the thread was read, or when the whole event history is folded in;
    // otherwise only the notes that arrived live are known.
    const exact = loaded || entry.history === "done";
    const total = notes.length + (this.earlier.get(id) || 0);
    const count = exact ? t("notes.count", { count: total }) : notes.length ? t("notes.new", { count: notes.length }) : t("notes.title");
    const older = this.earlier.get(id);
    const waiting = this.waitingOn(id);
    // A thread with a note waiting is open: the note shows where it was written.
    const open = this.open.has(id) || waiting.length > 0;
    // A closed thread holds only its summary: its notes and form are drawn when it opens.
    const details = h("details", { class: "notes", open, dataset: { requestId: id } },
      h("summary", {}, count),
      open && older ? h("p", { class: "muted small" }, t("notes.older", { count: older })) : null,
      !open ? null
        : notes.length ? h("ol", { class: "note-list" }, notes.map((note) => noteItem(note, cities)))
        : loaded && !waiting.length ? h("p", { class: "muted small empty-notes" }, t("notes.none")) : null,
      waiting.length ? h("ol", { class: "note-list waiting-notes" }, waiting.map(waitingItem)) : null,
      open && writable && this.outbox ? this.form(request, claims, cities) : null,
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

  form(request, claims, cities) {
    const key = `note-${request.id}`;
    const text = h("textarea", { id: key, rows: 2, maxlength: NOTE_MAX, required: true, dataset: { keep: key, focus: key }, oninput: keepTyped });
    const send = h("button", { type: "submit", class: "secondary small", dataset: { focus: `${key}-send` } }, t("notes.add"));
    // The note is about the request, or about one claim on it (its thread is the claim's).
    const about = claims.length
      ? h("select", { id: `${key}-about`, dataset: { keep: `${key}-about`, focus: `${key}-about` }, oninput: keepTyped },
          h("option", { value: "" }, t("notes.about_request", { id: request.id })),
          claims.map((claim) =>
            h("option", { value: String(claim.id) },
              t("notes.about_claim", { id: claim.id, city: cityName(cities, claim.city_id), count: claim.quantity }))),
        )
      : null;
    const form = h("form", { class: "note-form" },
      about ? [h("label", { for: about.id }, t("notes.about")), about] : null,
      h("label", { for: key, class: "visually-hidden" }, t("notes.new_note")), text, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = text.value.trim();
      if (!body) return text.focus();
      const claimId = about && about.value ? Number(about.value) : null;
      // One key per note written: sent until answered, added once.
      this.outbox.add(
        "note",
        { request_id: request.id, ...(claimId ? { claim_id: claimId } : {}), text: body },
        claimId ? t("notes.claim_action", { id: claimId }) : t("notes.action", { id: request.id }),
      );
      text.value = "";
      delete text.dataset.dirty;
      this.render();
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

/** A note written here that waits in the outbox: its text, said to be waiting. */
function waitingItem(action) {
  return h("li", { class: "note waiting", dataset: { key: action.key } },
    h("p", { class: "note-meta fine queued" }, t("notes.waiting")),
    h("p", { class: "note-body" }, action.body.text),
  );
}
