// The node table: one row per node (kept by name, updated in place), with sparklines of
// CPU load, memory used and mean RTT to peers from the node's recent heartbeats.

import { ago, bytes, h, setAttr, setText, svg } from './dom.js';

const SPARK_W = 64;
const SPARK_H = 20;

export class NodeTable {
  constructor(tbody, count) {
    this.tbody = tbody;
    this.count = count;
    this.rows = new Map(); // name -> {tr, cells, node}
  }

  /** Sets the rows to the nodes of `/api/nodes` (sorted by name). */
  update(nodes) {
    const seen = new Set();
    let before = null;
    for (const node of [...nodes].reverse()) {
      seen.add(node.name);
      const row = this.rows.get(node.name) || this.addRow(node.name);
      row.node = node;
      this.fill(row);
      if (row.tr.nextSibling !== before || row.tr.parentNode !== this.tbody) this.tbody.insertBefore(row.tr, before);
      before = row.tr;
    }
    for (const [name, row] of this.rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    this.countOnline();
  }

  countOnline() {
    const rows = [...this.rows.values()];
    const online = rows.filter((row) => row.node.status === 'online').length;
    setText(this.count, `${rows.length} known, ${online} online`);
  }

  /** The names of the nodes shown. */
  names() {
    return [...this.rows.keys()];
  }

  /** Sets one node's status now (from an event). */
  setStatus(name, status) {
    const row = this.rows.get(name);
    if (!row) return;
    row.node = { ...row.node, status };
    this.fill(row);
    this.countOnline();
  }

  /** Draws a node's sparklines from its heartbeats (oldest first). */
  heartbeats(name, beats) {
    const row = this.rows.get(name);
    if (!row) return;
    const cpu = beats.map((b) => b.cpu_load);
    const mem = beats.map((b) => b.mem_used_bytes);
    const rtt = beats.map((b) => {
      const samples = (b.peers || []).map((p) => p.rtt_us).filter((v) => v != null);
      return samples.length ? samples.reduce((a, v) => a + v, 0) / samples.length / 1000 : null;
    });
    spark(row.cpu, cpu, (v) => v.toFixed(2));
    spark(row.mem, mem, bytes);
    spark(row.rtt, rtt, (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms`);
  }

  /** Redraws the "last seen" column (time passes without events). */
  tick() {
    const now = Date.now();
    for (const row of this.rows.values()) setText(row.seen, ago(row.node.last_seen_ms, now));
  }

  addRow(name) {
    const cell = () => h('td');
    const row = {
      name: h('td', { class: 'mono', text: name }),
      status: h('span', { class: 'status' }),
      role: cell(),
      labels: cell(),
      version: cell(),
      seen: cell(),
      cpu: sparkCell(),
      mem: sparkCell(),
      rtt: sparkCell(),
    };
    const statusCell = h('td', {}, row.status);
    row.tr = h('tr', { 'data-node': name }, row.name, statusCell, row.role, row.labels, row.version, row.seen, row.cpu.td, row.mem.td, row.rtt.td);
    this.rows.set(name, row);
    return row;
  }

  fill(row) {
    const node = row.node;
    setAttr(row.tr, 'data-status', node.status);
    setAttr(row.status, 'data-status', node.status);
    setText(row.status, node.status);
    setAttr(row.status, 'title', node.status_reason || '');
    setText(row.role, node.role || '');
    const labels = Object.entries(node.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ');
    if (row.labels.dataset.text !== labels) {
      row.labels.dataset.text = labels;
      row.labels.replaceChildren(...Object.entries(node.labels || {}).map(([k, v]) => h('span', { class: 'chip', text: `${k}=${v}` })));
    }
    setText(row.version, node.version || '');
    setText(row.seen, ago(node.last_seen_ms));
  }
}

function sparkCell() {
  const line = svg('polyline');
  const title = svg('title');
  const chart = svg('svg', { class: 'spark', viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, preserveAspectRatio: 'none' }, title, line);
  const value = h('span', { class: 'spark-value' });
  return { td: h('td', {}, chart, value), line, title, value };
}

/** Draws `values` (nulls skipped) as a polyline scaled to its own range. */
function spark(cell, values, format) {
  const points = values.map((v, i) => [i, v]).filter(([, v]) => v != null && Number.isFinite(v));
  if (points.length === 0) {
    setAttr(cell.line, 'points', '');
    setText(cell.value, '');
    setText(cell.title, 'no heartbeats yet');
    return;
  }
  const ys = points.map(([, v]) => v);
  const low = Math.min(...ys);
  const high = Math.max(...ys);
  const span = high - low || 1;
  const step = values.length > 1 ? SPARK_W / (values.length - 1) : 0;
  const text = points
    .map(([i, v]) => `${(i * step).toFixed(1)},${(SPARK_H - 2 - ((v - low) / span) * (SPARK_H - 4)).toFixed(1)}`)
    .join(' ');
  setAttr(cell.line, 'points', points.length === 1 ? `0,${SPARK_H / 2} ${SPARK_W},${SPARK_H / 2}` : text);
  const last = ys[ys.length - 1];
  setText(cell.value, format(last));
  setText(cell.title, `last ${format(last)}, min ${format(low)}, max ${format(high)} over ${values.length} heartbeats`);
}
