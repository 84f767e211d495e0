// The live event feed: newest first, the last 1,000 kept, drawn by a virtualised list.
// Each row shows the time it arrived, the event's kind, its key or node, and its other
// fields as `name=value`, whatever they are.

import { brief, clock, setText } from './dom.js';
import { VirtualList } from './vlist.js';

const KEEP = 1000;
const ROW_HEIGHT = 24;

export class EventFeed {
  constructor(container, count) {
    this.count = count;
    this.rows = []; // newest first
    this.total = 0;
    this.list = new VirtualList(container, {
      rowHeight: ROW_HEIGHT,
      render: (entry, row) => render(entry, row),
    });
  }

  /** Adds an event (`kind` from its data, else the SSE name). */
  add(name, data, id) {
    const kind = typeof data.kind === 'string' ? data.kind : name;
    const subjectField = data.key ? 'key' : (data.node ? 'node' : null);
    const subject = subjectField ? String(data[subjectField]) : '';
    const details = Object.entries(data)
      .filter(([field, value]) => field !== 'kind' && field !== subjectField && value !== null && value !== undefined)
      .map(([field, value]) => `${field}=${brief(value, 100)}`)
      .join(' ');
    this.push({ at: Date.now(), kind, subject, details, id });
  }

  /** A line of the dashboard's own about the stream (lost, back, reset, lagged). */
  notice(text) {
    this.push({ at: Date.now(), kind: 'stream', subject: '', details: text, id: '' });
  }

  push(entry) {
    this.rows.unshift(entry);
    if (this.rows.length > KEEP) this.rows.length = KEEP;
    this.total += 1;
    this.list.setItems(this.rows);
    setText(this.count, `${this.rows.length} shown of ${this.total} received`);
  }

  /** Forgets the rows (a new filter). */
  clear() {
    this.rows = [];
    this.list.setItems(this.rows);
    setText(this.count, '');
  }
}

function render(entry, row) {
  row.dataset.kind = entry.kind;
  row.dataset.key = entry.subject;
  row.title = `${entry.id ? `event ${entry.id}: ` : ''}${entry.details}`;
  const cell = (cls, text) => {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    return span;
  };
  row.replaceChildren(cell('t', clock(entry.at)), cell('kind', entry.kind), cell('k', entry.subject), cell('n', entry.details));
}
