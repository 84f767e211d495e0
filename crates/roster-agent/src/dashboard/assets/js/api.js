// The agent's API as the dashboard uses it: JSON reads with the API's error shape, and the
// event stream (Server-Sent Events) with reconnection and a state the page shows.

/** A refused request: the status and the API's stable error code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** `GET path` as JSON; throws an ApiError for any status but 2xx. */
export async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      // Not the API's JSON error: keep the status alone.
    }
    throw new ApiError(response.status, body.error || `http_${response.status}`, body.message || response.statusText);
  }
  return response.json();
}

/** A query string of the parameters that are set (`?a=1&b=x`), or ''. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A key as a path: each segment percent-encoded, the slashes kept. */
export function keyPath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

// EventSource delivers a named SSE event only to a listener of that name, so the stream
// listens to every name the agent sends (and to unnamed `message` events).
export const EVENT_NAMES = [
  'message',
  'registered', 'unregistered', 'joined', 'left',
  'node_up', 'node_down', 'node_updated', 'node_status',
  'link_up', 'link_down', 'partition_detected', 'partition_healed', 'node_event',
  'lagged', 'reset',
];

/** How long to wait before opening a closed stream again, at most. */
const MAX_RETRY_MS = 10000;

/**
 * The event stream of `/api/events`. `handlers.event(name, data, id)` gets each event
 * (data parsed from JSON; a `kind` field names it when present); `handlers.state(state,
 * why)` gets `connecting`, `live`, `lost` (the browser retries), `unavailable` (the
 * stream closed: retried here with a growing delay) or `refused` (the agent answered
 * 4xx, `why` is its ApiError: 404 when it has no stream, 400 for a bad pattern; a 400
 * is not retried).
 */
export class EventStream {
  constructor(handlers) {
    this.handlers = handlers;
    this.source = null;
    this.url = null;
    this.retryMs = 1000;
    this.timer = null;
  }

  /** Opens the stream at `url`, closing the previous one. */
  open(url) {
    this.close();
    this.url = url;
    this.handlers.state('connecting');
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => {
      this.retryMs = 1000;
      this.handlers.state('live');
    };
    source.onerror = () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        this.source = null;
        this.diagnose(url);
      } else {
        this.handlers.state('lost');
      }
    };
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => {
        if (this.source !== source) return;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          data = { text: event.data };
        }
        this.handlers.event(name, data, event.lastEventId);
      });
    }
  }

  /**
   * After the browser gave up on `url`: asks the agent why with a plain request (aborted
   * once it answers), then retries unless the request itself is refused.
   */
  async diagnose(url) {
    const probe = new AbortController();
    let refusal = null;
    try {
      const response = await fetch(url, { signal: probe.signal, headers: { accept: 'text/event-stream' } });
      if (!response.ok) {
        let body = {};
        try {
          body = await response.json();
        } catch {
          // No JSON error body: the status says enough.
        }
        refusal = new ApiError(response.status, body.error || `http_${response.status}`, body.message || response.statusText);
      }
    } catch {
      // The agent is not answering at all: retry below.
    } finally {
      probe.abort();
    }
    if (url !== this.url) return;
    if (refusal) this.handlers.state('refused', refusal);
    else this.handlers.state('unavailable');
    if (refusal && refusal.status === 400) return;
    this.timer = setTimeout(() => this.open(this.url), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  /** Closes the stream and stops retrying. */
  close() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }
}
