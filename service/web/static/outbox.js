// The outbox: actions a person meant to take, each with one idempotency key, kept in
// localStorage until the service has answered, and sent in order, one at a time.
//
// An action whose fate is unknown (the link dropped, the command timed out, the service
// said 503) stays in the outbox and is sent again with the same key; the service replays
// the first result for a key it has seen, so each action is made at most once however
// often it is sent. Only an answer (an ack, or a refusal such as 409) takes it out.

import { ApiError } from "./api.js";
import { t, tOr } from "./i18n.js";

/** The window event the shell sends when the person is signed out. */
export const SIGNED_OUT = "aidmesh-signed-out";
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 15_000;

/** True when an error leaves the action's fate unknown: send it again, same key. */
export function fateUnknown(error) {
  const status = error?.status ?? 0;
  return Boolean(error?.transport) || status === 0 || status === 429 || status >= 500;
}

/** A fresh idempotency key for one intended action. */
function mintKey(kind) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${kind}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The pending actions of one person (`storageKey`), oldest first.
 *
 * `send(action)` delivers one action and resolves with the service's answer, or rejects
 * (see fateUnknown). `onAnswer(action, result, error)` runs once per action, when it is
 * answered; `onChange(outbox)` whenever what waits, or its state, changed.
 */
export class Outbox {
  constructor({ storageKey, send, onAnswer, onChange }) {
    Object.assign(this, { storageKey, send, onAnswer, onChange });
    this.actions = this.read();
    this.flushing = false;
    this.sending = null; // the key being sent right now
    this.failures = 0;
    this.retryTimer = null;
    this.stopped = false;
    // Signed out (or the session ended): this person's actions stay stored, unsent, for
    // their next sign-in; this page never sends them under whoever signs in next.
    window.addEventListener(SIGNED_OUT, () => this.stop());
    // Another tab of the same person changed the outbox: show what it shows.
    window.addEventListener("storage", (event) => {
      if (event.key !== this.storageKey) return;
      this.actions = this.read();
      this.onChange?.(this);
    });
    window.addEventListener("online", () => this.flush());
  }

  read() {
    try {
      const stored = JSON.parse(localStorage.getItem(this.storageKey) || "[]");
      return Array.isArray(stored) ? stored.filter((a) => a && typeof a.key === "string") : [];
    } catch {
      return [];
    }
  }

  save() {
    if (this.actions.length) localStorage.setItem(this.storageKey, JSON.stringify(this.actions));
    else localStorage.removeItem(this.storageKey);
  }

  /** Every action still waiting for an answer, oldest first. */
  pending() {
    return [...this.actions];
  }

  /** The waiting action `match` picks, if any: one intended action, not a second one. */
  find(match) {
    return this.actions.find(match) ?? null;
  }

  /** "waiting" or "sending", for the action with this key. */
  stateOf(action) {
    return this.sending === action.key ? "sending" : "waiting";
  }

  /**
   * Queue an intended action (`kind`, `body`, a `label` in words) under a new key and
   * try to send it; returns the queued action. The key is stored before any attempt,
   * so a reload or a reconnect sends it again under the same key.
   */
  add(kind, body, label) {
    const action = { key: mintKey(kind), kind, body, label, queued_at: new Date().toISOString() };
    this.actions = [...this.read().filter((a) => a.key !== action.key), action];
    this.save();
    this.onChange?.(this);
    this.flush();
    return action;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Send what waits, in order, until it is empty or the link fails; one run at a time. */
  async flush() {
    if (this.flushing || this.stopped) return;
    this.flushing = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    try {
      for (;;) {
        this.actions = this.read();
        const action = this.actions[0];
        if (!action || this.stopped) break;
        if (!navigator.onLine) {
          // Nothing can get through; `online` sends it, the timer is a fallback.
          this.retryLater();
          return;
        }
        // Counted before it goes: an action sent before may have landed unanswered.
        action.attempts = (action.attempts ?? 0) + 1;
        this.save();
        this.sending = action.key;
        this.onChange?.(this);
        let result;
        let refusal = null;
        try {
          result = await this.send(action);
        } catch (error) {
          if (fateUnknown(error)) {
            this.sending = null;
            this.retryLater();
            return;
          }
          if (error?.status === 401) {
            // Not made, and not refused: the person is signed out. It waits for them.
            this.sending = null;
            this.stop();
            return;
          }
          refusal = error;
        }
        this.failures = 0;
        this.sending = null;
        this.actions = this.read().filter((a) => a.key !== action.key);
        this.save();
        this.onChange?.(this);
        this.onAnswer?.(action, result, refusal);
      }
    } finally {
      this.flushing = false;
      if (this.sending !== null) {
        this.sending = null;
        this.onChange?.(this);
      }
    }
  }

  retryLater() {
    this.failures += 1;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.failures - 1, 4));
    this.onChange?.(this);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.flush(), delay * (0.8 + Math.random() * 0.4));
  }
}

/** "2 actions waiting to be sent · sending…", or "" when nothing waits. */
export function describeOutbox(outbox) {
  const count = outbox.pending().length;
  if (!count) return "";
  const waiting = t("outbox.waiting", { count });
  return outbox.sending !== null ? `${waiting} · ${t("outbox.sending")}` : waiting;
}

// A claim's move in words, for the outbox's list: "accept claim #12 (4 units of cots)".
/** An outbox action's label for moving claim `claim` to `status` (`what`: its units). */
export function moveLabel(claim, status, what) {
  const move = tOr(`outbox.move.${status}`, `${status} claim #${claim.id}`, { id: claim.id });
  return what ? t("outbox.move_what", { move, what }) : move;
}

/**
 * Send a claim's move (`body`: claim_id, status and the move's details): over the
 * websocket when live, else REST. A move has no key of its own at the service, so one
 * sent again after a lost answer is reconciled instead: refused (409) because the claim
 * is already where the move takes it, it was the first attempt that landed, and the
 * claim as it is now is the answer.
 */
export async function sendMove({ live, api }, action) {
  const { claim_id: claimId, status, extra = {} } = action.body;
  try {
    try {
      if (!live) throw new ApiError(0, "not connected", { transport: true });
      return await live.command("claim_status", { claim_id: claimId, status, ...extra });
    } catch (error) {
      if (!(error instanceof ApiError) || !fateUnknown(error)) throw error;
      return await api(`/claims/${claimId}/status`, { method: "POST", body: { status, ...extra } });
    }
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 409) throw error;
    const claim = await api(`/claims/${claimId}`, { fresh: true });
    if (claim.status === status) return claim;
    throw error;
  }
}

/**
 * Send an edit of a request (`body`: request_id and the fields that change). An edit
 * sets values, and one that changes nothing records nothing, so sending it again after
 * a lost answer has the effect of sending it once.
 */
export async function sendRequestEdit({ api }, action) {
  const { request_id: requestId, changes } = action.body;
  return api(`/requests/${requestId}`, { method: "PATCH", body: changes });
}

/** True when an earlier attempt of `action` went out: it may have landed unanswered. */
const sentBefore = (action) => (action.attempts ?? 1) > 1;

/**
 * Reconcile a refusal (409) of an action that ends something (closing an incident,
 * cancelling a request, passing): when an earlier attempt went out and `landed()` finds
 * what the action does already done, that attempt was the one that made it, and what
 * `landed()` read is the answer. A first attempt refused is a refusal: someone else did
 * it, or it cannot be done.
 */
async function reconciled(action, send, landed) {
  try {
    return await send();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 409 || !sentBefore(action)) throw error;
    const found = await landed();
    if (found) return found;
    throw error;
  }
}

/**
 * Pass on a request (`body`: request_id, reason, and city_id, the passing city): over the
 * websocket when live, else REST. A city passes once per request, so a pass sent again
 * after its answer was lost is refused, and the city's pass on record is the answer.
 */
export async function sendPass({ live, api }, action) {
  const { request_id: requestId, reason, city_id: cityId } = action.body;
  return reconciled(action, async () => {
    try {
      if (!live) throw new ApiError(0, "not connected", { transport: true });
      return await live.command("pass", { request_id: requestId, reason });
    } catch (error) {
      if (!(error instanceof ApiError) || !fateUnknown(error)) throw error;
      return await api(`/requests/${requestId}/passes`, { method: "POST", body: { reason } });
    }
  }, async () => {
    const page = await api(`/requests/${requestId}/passes?limit=500`, { fresh: true });
    return page.data.find((p) => p.city_id === cityId) ?? null;
  });
}

/**
 * A sender of an action that ends something with one POST (`post(body)`), whose effect
 * is read back at `read(body)`: a repeat that landed unanswered is reconciled when what
 * it reads has reached `status`.
 */
function ending(post, read, status) {
  return ({ api }, action) =>
    reconciled(
      action,
      () => api(post(action.body), { method: "POST" }),
      async () => {
        const found = await api(read(action.body), { fresh: true });
        return found.status === status ? found : null;
      },
    );
}

/** Close an incident (`body`: incident_id). */
export const sendClose = ending((b) => `/incidents/${b.incident_id}/close`, (b) => `/incidents/${b.incident_id}`, "closed");

/** Cancel a request (`body`: request_id). */
export const sendCancel = ending((b) => `/requests/${b.request_id}/cancel`, (b) => `/requests/${b.request_id}`, "cancelled");

/**
 * Add a note to a request's thread, or to a claim's when `body.claim_id` is set. The
 * action's key goes as the note's Idempotency-Key: sent again, the service returns the
 * first note and adds none.
 */
export async function sendNote({ api }, action) {
  const { request_id: requestId, claim_id: claimId, text } = action.body;
  const path = claimId ? `/claims/${claimId}/notes` : `/requests/${requestId}/notes`;
  return api(path, { method: "POST", body: { body: text }, headers: { "Idempotency-Key": action.key } });
}

/**
 * Edit an incident (`body`: incident_id and the fields that change). An edit sets values,
 * and one that changes nothing records nothing: sent again, it has the effect of one.
 */
export async function sendIncidentEdit({ api }, action) {
  const { incident_id: incidentId, changes } = action.body;
  return api(`/incidents/${incidentId}`, { method: "PATCH", body: changes });
}

/**
 * Tick or untick a checklist item (`body`: incident_id, checklist, item, done). It sets
 * the item to `done`, and a tick that changes nothing records nothing: sent again, it
 * has the effect of one.
 */
export async function sendTick({ api }, action) {
  const { incident_id: incidentId, checklist, item, done } = action.body;
  return api(`/incidents/${incidentId}/checklist`, { method: "POST", body: { checklist, item, done } });
}

/** How each kind of action a page queues is sent (`context`: { live, api }). */
const SENDERS = {
  move: sendMove,
  "request-edit": sendRequestEdit,
  pass: sendPass,
  note: sendNote,
  "incident-edit": sendIncidentEdit,
  close: sendClose,
  cancel: sendCancel,
  tick: sendTick,
};

/** Send one queued action by its kind; an unknown kind is refused, never retried. */
export function sendAction(context, action) {
  const send = SENDERS[action.kind];
  if (!send) return Promise.reject(new ApiError(400, `unknown action ${action.kind}`));
  return send(context, action);
}
