// Small DOM helpers: element builders, per-frame batching of updates, and formatting.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An HTML element with attributes (`text` sets its text) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...children);
  return el;
}

/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  el.append(...children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'text') el.textContent = value;
    else if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  }
}

/** Sets an attribute only when it changes (no needless style work). */
export function setAttr(el, name, value) {
  const text = String(value);
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

/** Sets text only when it changes. */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

// Updates wanted for the next animation frame, by key: many events in one frame cost one
// update per panel.
const pending = new Map();
let scheduled = false;

/** Runs `fn` at the next animation frame; a later call with the same key replaces it. */
export function schedule(key, fn) {
  pending.set(key, fn);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  scheduled = false;
  const jobs = [...pending.values()];
  pending.clear();
  for (const job of jobs) job();
}

/** `HH:MM:SS` of a time in milliseconds since the epoch. */
export function clock(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** How long ago `ms` was, shortly: `4s`, `3m`, `2h`, `5d`. */
export function ago(ms, now = Date.now()) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Bytes as KiB, MiB or GiB. */
export function bytes(n) {
  if (n == null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A JSON value on one line, cut at `max` characters. */
export function brief(value, max = 160) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (text === undefined) return '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Shows a message in the banner; `tone` is `info`, `good` or `bad`; `null` hides it. */
export function banner(message, tone = 'info') {
  const el = document.getElementById('banner');
  if (message === null) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.dataset.tone = tone;
  setText(el, message);
}
