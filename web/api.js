// Calls to the daemon's JSON API. The token travels as the HttpOnly cookie set by /login.

/** Thrown for answers that are not 2xx; `status` and the JSON `body` are kept. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function toLogin() {
  const next = location.pathname + location.search;
  location.href = `/login?next=${encodeURIComponent(next)}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * fetch + JSON. GETs are retried a few times when the connection fails (the API restarts for a
 * second after a settings change). A 401 sends the browser to the login page.
 */
export async function api(path, { method = 'GET', body, retries } = {}) {
  const tries = 1 + (retries ?? (method === 'GET' ? 4 : 0));
  let lastError;
  for (let i = 0; i < tries; i++) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: body !== undefined ? { 'Content-Type': 'application/json' } : {},
        body: body !== undefined ? JSON.stringify(body) : undefined,
        credentials: 'same-origin',
      });
    } catch (e) {
      lastError = e;
      if (i + 1 < tries) await sleep(500 * (i + 1));
      continue;
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
    if (res.status === 401) { toLogin(); throw new ApiError(401, data); }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
  throw new ApiError(0, { error: String(lastError && lastError.message || lastError) });
}

/**
 * One EventSource on /api/events for the whole application, reopened when it closes.
 * Subscribers get (type, data); `onState` hears 'connecting', 'on' and 'off'.
 */
class Live {
  constructor() {
    this.handlers = new Set();
    this.stateHandlers = new Set();
    this.es = null;
    this.state = 'connecting';
    this.last = Date.now();
    this.timer = null;
  }

  start() {
    if (this.es) return;
    clearTimeout(this.timer);
    const es = new EventSource('/api/events');
    this.es = es;
    this.last = Date.now();
    for (const type of ['activity', 'labels', 'sound_event']) {
      es.addEventListener(type, (ev) => {
        this.last = Date.now();
        let data;
        try { data = JSON.parse(ev.data); } catch { return; }
        for (const h of this.handlers) h(type, data);
      });
    }
    es.addEventListener('lagged', () => { this.last = Date.now(); });
    es.onopen = () => { this.last = Date.now(); this.setState('on'); };
    es.onerror = () => {
      if (this.es !== es) return;
      this.setState('off');
      if (es.readyState === EventSource.CLOSED) {
        this.es = null;
        this.timer = setTimeout(() => this.start(), 3000);
      }
    };
    if (!this.watchdog) {
      // A stream that stays silent for a minute is treated as lost (labels come several times
      // a second while a source plays sound). The daemon ends its streams when it restarts its
      // API, but a proxy or a half-open connection may leave one open and silent.
      this.watchdog = setInterval(() => {
        if (this.es && this.state === 'on' && Date.now() - this.last > 60000) this.reconnect(0);
      }, 10000);
    }
  }

  /** Closes the stream and opens a new one after `delayMs`. */
  reconnect(delayMs) {
    if (this.es) { this.es.close(); this.es = null; }
    clearTimeout(this.timer);
    this.setState('off');
    this.timer = setTimeout(() => this.start(), delayMs);
  }

  setState(s) {
    this.state = s;
    for (const h of this.stateHandlers) h(s);
  }

  subscribe(fn) { this.handlers.add(fn); return () => this.handlers.delete(fn); }
  onState(fn) { this.stateHandlers.add(fn); fn(this.state); return () => this.stateHandlers.delete(fn); }
}

export const live = new Live();

/**
 * After a settings change the daemon restarts its pipeline and API in-process (within a few
 * seconds): reconnects the live stream once the new API is up. Resolves when it is back (true),
 * or after `timeoutMs` (false).
 */
export function afterRestart(timeoutMs = 20000) {
  live.reconnect(2500);
  return new Promise((resolve) => {
    let stop = null;
    const timer = setTimeout(() => { if (stop) stop(); resolve(false); }, timeoutMs);
    stop = live.onState((st) => {
      if (st === 'on') { clearTimeout(timer); if (stop) stop(); resolve(true); }
    });
  });
}
