// The dashboard: wires the panels to the agent. The event stream updates them as things
// happen; a slower poll reads what events do not carry (RTT, heartbeats, last seen) and
// corrects anything missed. Updates are batched per animation frame.

import './errors.js';
import { banner, schedule, setText } from './dom.js';
import { ApiError, EventStream, getJson, keyPath, query } from './api.js';
import { ClusterGraph, legend } from './graph.js';
import { NodeTable } from './nodes.js';
import { drawPartition } from './partition.js';
import { RegistryBrowser } from './registry.js';
import { EventFeed } from './events.js';
import { drawHistory } from './history.js';

const CLUSTER_POLL_MS = 3000;
const HEARTBEAT_POLL_MS = 10000;
const HISTORY_POLL_MS = 5000;
const HISTORY_OFF_POLL_MS = 60000;
const SOON_MS = 150;
const REGISTRY_KINDS = new Set(['registered', 'unregistered', 'joined', 'left']);

const $ = (id) => document.getElementById(id);

const graph = new ClusterGraph($('graph'));
legend($('legend'));
const table = new NodeTable($('node-rows'), $('node-count'));
const browser = new RegistryBrowser($('browser'));
const feed = new EventFeed($('feed'), $('feed-count'));
setText($('agent-host'), location.host);

// Reads overlap (a poll and a read after events): only a newer read than the one drawn is
// drawn.
let readSeq = 0;
let drawnSeq = 0;
let heartbeatsStarted = false;

/** Reads the graph, the nodes and the partition, and draws them at the next frame. */
async function pollCluster() {
  readSeq += 1;
  const seq = readSeq;
  try {
    const [clusterGraph, nodes, partition] = await Promise.all([
      getJson('/api/graph'),
      getJson('/api/nodes'),
      getJson('/api/partition'),
    ]);
    if (seq < drawnSeq) return;
    drawnSeq = seq;
    schedule('cluster', () => {
      graph.update(clusterGraph);
      table.update(nodes);
      drawPartition($('partition'), $('partition-fields'), partition);
      if (!heartbeatsStarted) {
        heartbeatsStarted = true;
        every(HEARTBEAT_POLL_MS, pollHeartbeats);
      }
    });
    setText($('poll-state'), `read ${new Date().toLocaleTimeString([], { hour12: false })}`);
  } catch (error) {
    setText($('poll-state'), unreachable(error));
  }
}

/** Reads the recent heartbeats of every node shown, for the sparklines. */
async function pollHeartbeats() {
  await Promise.all(table.names().map(async (name) => {
    try {
      const beats = await getJson(`/api/nodes/${keyPath(name)}/heartbeats${query({ minutes: 5 })}`);
      schedule(`beats-${name}`, () => table.heartbeats(name, beats));
    } catch {
      // A node forgotten since the last read: the next cluster poll drops its row.
    }
  }));
}

/** Reads the alerts and the audit log; when the agent keeps no history, asks again rarely. */
async function pollHistory() {
  const kept = await Promise.all([
    drawHistory($('alerts'), '/api/alerts'),
    drawHistory($('audit'), '/api/audit', 100),
  ]);
  return kept.some(Boolean) ? HISTORY_POLL_MS : HISTORY_OFF_POLL_MS;
}

function unreachable(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    return 'this agent needs a read token: the dashboard works where reads are open';
  }
  return `cannot read the agent: ${error.message}`;
}

/** Runs `task` now and again `ms` after it finishes (or after the delay it returns). */
function every(ms, task) {
  const run = async () => {
    const next = await task();
    setTimeout(run, typeof next === 'number' ? next : ms);
  };
  run();
}

// A cluster read soon after node events (several events in a burst cost one read).
let soonTimer = null;
function soon() {
  if (soonTimer === null) {
    soonTimer = setTimeout(() => {
      soonTimer = null;
      pollCluster();
    }, SOON_MS);
  }
}

/** Reads everything again: after a lost stream, a reset or a lag, events were missed. */
function rereadAll() {
  pollCluster();
  browser.reload();
}

function onEvent(name, data, id) {
  const kind = typeof data.kind === 'string' ? data.kind : name;
  if (kind === 'lagged' || name === 'lagged') {
    feed.notice(`the stream lagged${data.missed ? ` (${data.missed} events missed)` : ''}: lists read again`);
    rereadAll();
    return;
  }
  if (kind === 'reset' || name === 'reset') {
    feed.notice('the stream was reset (events were missed): lists read again');
    rereadAll();
    return;
  }
  feed.add(name, data, id);
  if (REGISTRY_KINDS.has(kind)) {
    browser.event({ ...data, kind });
    return;
  }
  if (kind === 'node_status' && data.node && data.new) {
    table.setStatus(data.node, data.new);
    graph.setStatus(data.node, data.new);
  } else if (kind === 'node_down' && data.node) {
    table.setStatus(data.node, 'offline');
    graph.setStatus(data.node, 'offline');
  }
  soon();
}

let everLive = false;
let lost = false;
function onState(state, why) {
  const pill = $('stream-state');
  pill.dataset.state = state;
  const labels = { connecting: 'connecting…', live: 'live', lost: 'reconnecting…', unavailable: 'reconnecting…', refused: 'no event stream' };
  setText(pill, labels[state]);
  if (state === 'live') {
    if (lost) {
      banner('Event stream back: lists read again.', 'good');
      feed.notice('stream back');
      rereadAll();
      setTimeout(() => banner(null), 4000);
    } else {
      banner(null);
    }
    everLive = true;
    lost = false;
  } else if (state === 'refused' && why.status === 400) {
    banner(`The event filter is refused: ${why.message}`, 'bad');
    feed.notice(`filter refused: ${why.code}`);
  } else if (state === 'refused' && why.status === 404) {
    banner('This agent does not serve the event stream (/api/events): the page polls every few seconds.', 'bad');
  } else if (state === 'refused') {
    banner(`The event stream is refused (${why.message}): the page polls every few seconds.`, 'bad');
  } else if ((state === 'lost' || state === 'unavailable') && !lost && everLive) {
    lost = true;
    banner('Event stream lost: reconnecting…', 'bad');
    feed.notice('stream lost: reconnecting…');
  }
}

const stream = new EventStream({ event: onEvent, state: onState });
function openStream() {
  const pattern = $('pattern').value.trim();
  stream.open(`/api/events${query({ nodes: 'true', pattern })}`);
}
$('pattern-form').addEventListener('submit', (event) => {
  event.preventDefault();
  feed.clear();
  feed.notice(`filter: ${$('pattern').value.trim() || 'every key'}`);
  openStream();
});

every(CLUSTER_POLL_MS, pollCluster);
every(HISTORY_POLL_MS, pollHistory);
setInterval(() => schedule('tick', () => table.tick()), 1000);
browser.reload();
openStream();
