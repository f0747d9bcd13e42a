// The live connection: one websocket that stays up (ticket, connect, subscribe with
// the last seq of each incident, heartbeat watchdog, reconnect with backoff, the quick
// retry after a 1012 rolling restart) and the command ops sent over it.

import { ApiError } from "./api.js";

const SILENCE_MS = 45_000; // three heartbeats (20 s) missed, give or take: the socket is dead
const OFFLINE_AFTER_MS = 30_000; // this long without a connection reads as "offline"
const SERVICE_RESTART = 1012; // close code of a replica shutting down (rolling restart)
// After a 1012 the service is expected back soon (another replica, or this one once it
// has restarted): retry this often, not with the growing backoff, for this long.
const RESTART_RETRY_MS = 400;
const RESTART_WINDOW_MS = 60_000;
const COMMAND_TIMEOUT_MS = 10_000;

/**
 * One websocket that stays up: ticket, connect, subscribe with the last seq of
 * each incident, apply what arrives; on loss, reconnect with backoff and resume.
 * States: connecting → live → reconnecting (→ offline after a while) → live.
 */
export class Live {
  constructor({ api, scopes, since, onEvent, onReset, onStatus, onAuthLost, onNotice, session = false }) {
    Object.assign(this, { api, scopes, since, onEvent, onReset, onStatus, onAuthLost, onNotice, session });
    this.state = "connecting";
    this.ws = null;
    this.failures = 0;
    this.downSince = Date.now();
    this.everLive = false;
    this.pending = new Map();
    this.nextRef = 1;
    this.lastHeard = Date.now();
    this.silenceMs = SILENCE_MS;
    this.retryTimer = null;
    this.restartUntil = 0;
    this.stopped = false;
  }

  start() {
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.wentOffline());
    this.watchdog = setInterval(() => this.checkSilence(), 2_000);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000, "signed out");
    }
    this.setState("offline");
  }

  retryNow() {
    if (this.stopped || this.ws || this.connecting) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /**
   * The browser says it has no network: whatever the socket last did, it cannot be
   * trusted to deliver, so drop it and say "Offline"; `online` reconnects and resumes.
   */
  wentOffline() {
    if (this.stopped) return;
    const ws = this.ws;
    if (ws) {
      ws.onclose = null;
      ws.close(4001, "browser offline");
      this.lost(ws);
    } else {
      this.setState("offline");
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onStatus?.(state, this);
  }

  async connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connecting = true;
    let ticket;
    try {
      // A signed-in page connects with its session cookie (checked first, so an
      // ended session signs the page out instead of retrying); a token, by ticket.
      ticket = this.session ? (await this.api("/me", { fresh: true }), { url: "/ws" }) : await this.api("/ws-ticket", { method: "POST" });
    } catch (error) {
      if (error.status === 401) {
        this.stop();
        this.onAuthLost?.();
        return;
      }
      this.scheduleRetry();
      return;
    } finally {
      this.connecting = false;
    }
    if (this.stopped) return;
    const url = new URL(ticket.url, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this.ws = ws;
    this.lastHeard = Date.now();
    ws.onmessage = (message) => this.receive(ws, message);
    ws.onclose = (event) => this.lost(ws, event.code);
  }

  receive(ws, message) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    let msg;
    try {
      msg = JSON.parse(message.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case "welcome":
        this.silenceMs = Math.max(SILENCE_MS, (msg.heartbeat_s || 20) * 2250);
        ws.send(
          JSON.stringify({ op: "subscribe", scopes: this.scopes(), since: this.since(), ref: "subscribe" }),
        );
        break;
      case "subscribed":
        this.failures = 0;
        this.restartUntil = 0;
        this.everLive = true;
        this.setState("live");
        break;
      case "event":
        this.onEvent(msg.event);
        break;
      case "reset":
        this.onReset(msg);
        break;
      case "notice":
        // Not an incident's event: e.g. a city's webhook endpoint was disabled.
        this.onNotice?.(msg.notice);
        break;
      case "ack":
      case "error":
        this.settle(msg);
        break;
      default:
        break; // heartbeat, pong
    }
  }

  settle(msg) {
    const waiting = this.pending.get(msg.ref);
    if (!waiting) {
      if (msg.type === "error") console.warn("aidmesh websocket:", msg.status, msg.detail);
      return;
    }
    this.pending.delete(msg.ref);
    clearTimeout(waiting.timer);
    if (msg.type === "ack") waiting.resolve(msg.result);
    else waiting.reject(new ApiError(msg.status, msg.detail, { code: msg.code ?? null, params: msg.params ?? {} }));
  }

  lost(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const [ref, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new ApiError(0, "the connection dropped", { transport: true }));
      this.pending.delete(ref);
    }
    if (this.state === "live") this.downSince = Date.now();
    if (code === SERVICE_RESTART) {
      // The replica is restarting on purpose and others are up (or it is back soon):
      // back at once, with a little jitter so its clients do not all arrive together.
      this.restartUntil = Date.now() + RESTART_WINDOW_MS;
      this.setState("reconnecting");
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), 100 + Math.random() * 300);
      return;
    }
    this.scheduleRetry();
  }

  checkSilence() {
    if (this.ws && Date.now() - this.lastHeard > this.silenceMs) {
      const ws = this.ws;
      ws.onclose = null;
      ws.close(4000, "no heartbeat");
      this.lost(ws);
    }
  }

  scheduleRetry() {
    if (this.stopped) return;
    this.failures += 1;
    const down = Date.now() - this.downSince;
    const offline = !navigator.onLine || (down > OFFLINE_AFTER_MS && this.failures > 2);
    this.setState(offline ? "offline" : this.everLive ? "reconnecting" : "connecting");
    const base =
      Date.now() < this.restartUntil
        ? RESTART_RETRY_MS
        : Math.min(15_000, 400 * 2 ** Math.min(this.failures - 1, 6));
    const delay = base * (0.8 + Math.random() * 0.4);
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Send a command op; resolves with the ack's result, rejects with an ApiError. */
  command(op, body) {
    const ws = this.ws;
    if (!ws || this.state !== "live" || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ApiError(0, "not connected", { transport: true }));
    }
    const ref = `c${this.nextRef++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ApiError(0, "no answer in time", { transport: true }));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
      ws.send(JSON.stringify({ op, ref, ...body }));
    });
  }
}

