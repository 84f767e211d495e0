// The cluster graph: an SVG force-directed layout written small. Nodes repel each other,
// links pull their ends together, a weak pull keeps everything near the centre. Updates
// keep the positions of known nodes and warm the simulation up a little, so the picture
// moves only as much as the cluster changed.

import { setAttr, setText, svg } from './dom.js';

const WIDTH = 800;
const HEIGHT = 420;
const REPULSION = 9000;
const SPRING = 0.02;
const SPRING_LENGTH = 140;
const GRAVITY = 0.01;
const DAMPING = 0.85;
const COOLING = 0.985;
const MIN_HEAT = 0.02;

export class ClusterGraph {
  constructor(root) {
    this.linkLayer = root.querySelector('#graph-links');
    this.nodeLayer = root.querySelector('#graph-nodes');
    this.nodes = new Map(); // name -> {x, y, vx, vy, el, circle, label}
    this.links = new Map(); // "a|b" -> {source, target, el, line, label}
    this.heat = 0;
    this.running = false;
  }

  /** Sets the graph to `{nodes, links}` as `/api/graph` gives it. */
  update(graph) {
    // An external node has a `keeper`, and an `external` link from its keeper to it.
    const keepers = new Map();
    for (const link of graph.links) {
      if (link.kind === 'external') keepers.set(link.target, link.source);
    }
    const seen = new Set();
    for (const node of graph.nodes) {
      seen.add(node.name);
      const known = this.nodes.get(node.name) || this.addNode(node.name);
      const keeper = node.keeper || keepers.get(node.name);
      const external = Boolean(keeper);
      if (known.external !== external) this.setShape(known, external);
      setAttr(known.el, 'data-status', node.status);
      setAttr(known.el, 'data-external', external);
      setText(known.title, `${node.name}: ${node.status}${node.role ? `, role ${node.role}` : ''}${external ? `, kept by ${keeper}` : ''}`);
    }
    for (const [name, known] of this.nodes) {
      if (!seen.has(name)) {
        known.el.remove();
        this.nodes.delete(name);
      }
    }
    const live = new Set();
    for (const link of graph.links) {
      if (!this.nodes.has(link.source) || !this.nodes.has(link.target)) continue;
      const id = [link.source, link.target].sort().join('|');
      live.add(id);
      const known = this.links.get(id) || this.addLink(id, link);
      setAttr(known.el, 'data-kind', link.kind);
      setAttr(known.el, 'data-stale', Boolean(link.stale));
      setText(known.label, link.rtt_ms == null ? '' : `${link.rtt_ms.toFixed(link.rtt_ms < 10 ? 2 : 0)} ms`);
    }
    for (const [id, known] of this.links) {
      if (!live.has(id)) {
        known.el.remove();
        this.links.delete(id);
      }
    }
    this.warm(0.3);
  }

  /** Sets one node's status now (from an event), if it is drawn. */
  setStatus(name, status) {
    const known = this.nodes.get(name);
    if (known) setAttr(known.el, 'data-status', status);
  }

  addNode(name) {
    // A new node starts near a random point of a circle around the centre.
    const angle = Math.random() * Math.PI * 2;
    const known = {
      x: WIDTH / 2 + Math.cos(angle) * 120,
      y: HEIGHT / 2 + Math.sin(angle) * 120,
      vx: 0,
      vy: 0,
      external: null,
      title: svg('title'),
      shape: null,
    };
    known.el = svg('g', { class: 'gnode', 'data-node': name });
    known.label = svg('text', { x: 12, y: 4, text: name });
    known.el.append(known.title, known.label);
    this.nodeLayer.append(known.el);
    this.nodes.set(name, known);
    this.warm(1);
    return known;
  }

  setShape(known, external) {
    if (known.shape) known.shape.remove();
    known.shape = external
      ? svg('rect', { x: -7, y: -7, width: 14, height: 14, rx: 2 })
      : svg('circle', { r: 9 });
    known.el.insertBefore(known.shape, known.label);
    known.external = external;
  }

  addLink(id, link) {
    const known = { source: link.source, target: link.target };
    known.line = svg('line');
    known.label = svg('text', { 'text-anchor': 'middle' });
    known.el = svg('g', { class: 'glink', 'data-source': link.source, 'data-target': link.target }, known.line, known.label);
    this.linkLayer.append(known.el);
    this.links.set(id, known);
    return known;
  }

  /** Lets the layout move for a while (heat 0..1). */
  warm(heat) {
    this.heat = Math.max(this.heat, heat);
    if (!this.running) {
      this.running = true;
      requestAnimationFrame(() => this.tick());
    }
  }

  tick() {
    this.step();
    this.draw();
    this.heat *= COOLING;
    if (this.heat > MIN_HEAT) requestAnimationFrame(() => this.tick());
    else this.running = false;
  }

  step() {
    const nodes = [...this.nodes.values()];
    for (let i = 0; i < nodes.length; i += 1) {
      const a = nodes[i];
      for (let j = i + 1; j < nodes.length; j += 1) {
        const b = nodes[j];
        let dx = a.x - b.x;
        let dy = a.y - b.y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 1) {
          dx = Math.random() - 0.5;
          dy = Math.random() - 0.5;
          d2 = 1;
        }
        const force = REPULSION / d2;
        const d = Math.sqrt(d2);
        a.vx += (dx / d) * force;
        a.vy += (dy / d) * force;
        b.vx -= (dx / d) * force;
        b.vy -= (dy / d) * force;
      }
    }
    for (const link of this.links.values()) {
      const a = this.nodes.get(link.source);
      const b = this.nodes.get(link.target);
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const pull = (d - SPRING_LENGTH) * SPRING;
      a.vx += (dx / d) * pull;
      a.vy += (dy / d) * pull;
      b.vx -= (dx / d) * pull;
      b.vy -= (dy / d) * pull;
    }
    for (const node of nodes) {
      node.vx += (WIDTH / 2 - node.x) * GRAVITY;
      node.vy += (HEIGHT / 2 - node.y) * GRAVITY;
      node.vx *= DAMPING;
      node.vy *= DAMPING;
      node.x = clamp(node.x + node.vx * this.heat, 20, WIDTH - 60);
      node.y = clamp(node.y + node.vy * this.heat, 20, HEIGHT - 20);
    }
  }

  draw() {
    for (const node of this.nodes.values()) {
      node.el.setAttribute('transform', `translate(${node.x.toFixed(1)},${node.y.toFixed(1)})`);
    }
    for (const link of this.links.values()) {
      const a = this.nodes.get(link.source);
      const b = this.nodes.get(link.target);
      link.line.setAttribute('x1', a.x.toFixed(1));
      link.line.setAttribute('y1', a.y.toFixed(1));
      link.line.setAttribute('x2', b.x.toFixed(1));
      link.line.setAttribute('y2', b.y.toFixed(1));
      link.label.setAttribute('x', ((a.x + b.x) / 2).toFixed(1));
      link.label.setAttribute('y', ((a.y + b.y) / 2 - 3).toFixed(1));
    }
  }
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

/** Fills the legend: one entry per status, external nodes and stale links. */
export function legend(list) {
  for (const status of ['online', 'degraded', 'draining', 'unreachable', 'offline']) {
    const li = document.createElement('li');
    li.dataset.status = status;
    li.textContent = status;
    list.append(li);
  }
  const ext = document.createElement('li');
  ext.className = 'ext';
  ext.textContent = 'external (kept by a node)';
  const stale = document.createElement('li');
  stale.className = 'stale';
  stale.textContent = 'stale link';
  list.append(ext, stale);
}
