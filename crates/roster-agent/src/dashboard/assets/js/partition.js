// The partition panel: the last split-brain verdict of this agent's node.

import { clock, h, setAttr } from './dom.js';

/** Draws `/api/partition` into the panel. */
export function drawPartition(section, fields, p) {
  setAttr(section, 'data-suspected', p.partition_suspected);
  setAttr(section, 'data-keeps-writing', p.keeps_writing);
  setAttr(section, 'data-fenced', p.fenced);
  const yesNo = (value, good) => h('span', { class: value === good ? 'verdict-yes' : 'verdict-no', text: value ? 'yes' : 'no' });
  const rows = [
    ['suspected', yesNo(p.partition_suspected, false)],
    ['unreachable', p.unreachable.length ? p.unreachable.join(', ') : 'none'],
    ['side', p.side.join(', ')],
    ['strategy', p.strategy || '—'],
    ['keeps writing', yesNo(p.keeps_writing, true)],
    ['deciding node', p.deciding_node || '—'],
    ['reason', p.reason],
    ['fence up', yesNo(p.fenced, false)],
    ['checked', p.last_check_ms ? clock(p.last_check_ms) : 'not yet'],
  ];
  const children = [];
  for (const [name, value] of rows) {
    children.push(h('dt', { text: name }), h('dd', { 'data-field': name }, value));
  }
  fields.replaceChildren(...children);
  setAttr(fields, 'data-verdict', p.keeps_writing ? 'keeps-writing' : 'stops-writing');
}
