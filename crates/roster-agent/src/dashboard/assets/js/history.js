// The audit log and the alerts, from `/api/audit` and `/api/alerts` when the agent keeps a
// history; a 404 says that history is off on this agent. Entries are shown generically:
// a time, a kind, a subject and the other fields; a name conflict also in words, with the
// rule that decided it; who recorded an audit item (every recorder of a fact that agents
// sharing a database each recorded).

import { brief, clock, h } from './dom.js';
import { ApiError, getJson, query } from './api.js';

const TIME_FIELDS = ['at_ms', 'fired_at_ms', 'time_ms', 'recorded_ms', 'since_ms', 'at', 'time'];
const KIND_FIELDS = ['kind', 'rule', 'name', 'action'];
const SUBJECT_FIELDS = ['key', 'node', 'subject'];

/**
 * Reads and draws one history endpoint (`/api/audit` or `/api/alerts`) into `box`;
 * returns false when the agent keeps no history (404).
 */
export async function drawHistory(box, path, limit) {
  let body;
  try {
    body = await getJson(path + query({ limit }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      box.dataset.state = 'off';
      box.replaceChildren(h('div', { class: 'off', text: 'history is off on this agent' }));
      return false;
    }
    box.dataset.state = 'error';
    box.replaceChildren(h('div', { class: 'off', text: `cannot read ${path}: ${error.message}` }));
    return true;
  }
  const entries = Array.isArray(body) ? body : (body.items || alerts(body));
  box.dataset.state = 'on';
  if (entries.length === 0) {
    box.replaceChildren(h('div', { class: 'off', text: 'nothing yet' }));
    return true;
  }
  box.replaceChildren(...entries.map(entry));
  return true;
}

/** The alerts of `{firing, resolved}`: the firing ones first. */
function alerts(body) {
  return [...(body.firing || []), ...(body.resolved || [])];
}

function pick(object, fields) {
  const field = fields.find((name) => object[name] !== undefined && object[name] !== null);
  return field === undefined ? [undefined, undefined] : [field, object[field]];
}

/** A name conflict in words: who kept the name, who lost it, and by which rule. */
function conflict(flat) {
  const side = (pid, node) => (node ? `${pid} on ${node}` : pid);
  const rule = flat.rule ? ` by ${flat.rule}` : ' (rule not recorded)';
  return `${side(flat.winner, flat.winner_node)} kept it over ${side(flat.loser, flat.loser_node)}${rule}`;
}

function entry(item) {
  const flat = item.record && typeof item.record === 'object' ? { ...item, ...item.record, record: undefined } : item;
  const [timeField, time] = pick(flat, TIME_FIELDS);
  const [kindField, kind] = pick(flat, KIND_FIELDS);
  const [subjectField, subject] = pick(flat, SUBJECT_FIELDS);
  const used = new Set([timeField, kindField, subjectField, 'record']);
  const recorders = Array.isArray(flat.recorded_by) ? flat.recorded_by : [];
  if (recorders.length > 0) {
    used.add('recorder');
    used.add('recorded_by');
  }
  if (kind === 'name_conflict') {
    ['winner', 'loser', 'rule', 'winner_node', 'loser_node'].forEach((name) => used.add(name));
  }
  const rest = Object.entries(flat)
    .filter(([name, value]) => !used.has(name) && value !== undefined && value !== null)
    .map(([name, value]) => `${name}=${brief(value, 80)}`)
    .join(' ');
  const when = typeof time === 'number' ? clock(time) : (time ?? '');
  const what = kind === 'name_conflict'
    ? [h('span', { class: 'conflict', 'data-rule': flat.rule ?? '', text: conflict(flat) })]
    : [];
  return h('div', { class: 'entry', 'data-kind': kind ?? '', 'data-state': flat.state ?? '' },
    h('span', { class: 'muted', text: when }),
    h('strong', { text: kind ?? '' }),
    h('span', { class: 'mono', text: subject ?? '' }),
    ...what,
    ...(recorders.length > 0
      ? [h('span', { class: 'recorders muted', text: `recorded by ${recorders.join(', ')}` })]
      : []),
    h('span', { class: 'muted', text: rest }));
}
