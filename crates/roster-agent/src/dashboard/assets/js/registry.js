// The registry and group browser of the default scope: names or groups under a prefix,
// read a page at a time over the API's cursors (infinite scroll or "load more"), kept in
// key order and patched by registry events; a virtualised list draws only the rows in view.

import { brief, setText } from './dom.js';
import { ApiError, getJson, keyPath, query } from './api.js';
import { VirtualList } from './vlist.js';

const PAGE = 500;
const ROW_HEIGHT = 24;

export class RegistryBrowser {
  constructor(root) {
    this.status = root.querySelector('#browser-status');
    this.more = root.querySelector('#load-more');
    this.detail = root.querySelector('#browser-detail');
    this.prefixInput = root.querySelector('#prefix');
    this.tabs = [...root.querySelectorAll('[data-tab]')];
    this.tab = 'names';
    this.prefix = '';
    this.items = [];
    this.index = new Map(); // key -> item
    this.cursor = null;
    this.loading = false;
    this.generation = 0;
    this.list = new VirtualList(root.querySelector('#browser-list'), {
      rowHeight: ROW_HEIGHT,
      render: (item, row) => this.renderRow(item, row),
      onNearEnd: () => this.loadMore(),
      onClick: (item) => this.show(item),
    });
    for (const button of this.tabs) {
      button.addEventListener('click', () => this.select(button.dataset.tab));
    }
    root.querySelector('#prefix-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.prefix = normalise(this.prefixInput.value);
      this.prefixInput.value = this.prefix;
      this.reload();
    });
    this.more.addEventListener('click', () => this.loadMore());
  }

  select(tab) {
    this.tab = tab;
    for (const button of this.tabs) button.setAttribute('aria-selected', String(button.dataset.tab === tab));
    this.reload();
  }

  /** Reads the first page again (after a new prefix, tab, or a lost event stream). */
  reload() {
    this.generation += 1;
    this.items = [];
    this.index = new Map();
    this.cursor = null;
    this.loading = false;
    this.detail.hidden = true;
    this.list.container.scrollTop = 0;
    this.list.setItems(this.items);
    this.fetchPage(null);
  }

  loadMore() {
    if (this.cursor && !this.loading) this.fetchPage(this.cursor);
  }

  async fetchPage(cursor) {
    const generation = this.generation;
    this.loading = true;
    this.showStatus();
    const path = this.tab === 'names' ? '/api/registry' : '/api/groups';
    try {
      const page = await getJson(path + query({ prefix: this.prefix, limit: PAGE, cursor }));
      if (generation !== this.generation) return;
      for (const item of page.items) this.put(item);
      this.cursor = page.next_cursor;
    } catch (error) {
      if (generation !== this.generation) return;
      setText(this.status, error instanceof ApiError ? error.message : `cannot read: ${error}`);
      this.loading = false;
      return;
    }
    this.loading = false;
    this.list.setItems(this.items);
    this.showStatus();
  }

  showStatus() {
    const what = this.tab === 'names' ? 'names' : 'groups';
    const where = this.prefix ? ` under ${this.prefix}` : '';
    const more = this.cursor ? ', more to load' : '';
    const loading = this.loading ? ' (loading…)' : '';
    setText(this.status, `${this.items.length.toLocaleString()} ${what}${where}${more}${loading}`);
    this.more.hidden = !this.cursor;
  }

  /** Inserts or replaces an item in key order. */
  put(item) {
    const known = this.index.get(item.key);
    if (known) {
      Object.assign(known, item);
      return;
    }
    const at = lowerBound(this.items, item.key);
    this.items.splice(at, 0, item);
    this.index.set(item.key, item);
  }

  remove(key) {
    if (!this.index.has(key)) return;
    this.index.delete(key);
    this.items.splice(lowerBound(this.items, key), 1);
  }

  /**
   * A registry event of the stream: patches the list when its key is under the prefix and
   * within the keys loaded so far (later keys come with their page).
   */
  event(data) {
    if (typeof data.key !== 'string' || !data.key.startsWith(this.prefix)) return;
    if (data.scope && data.scope !== 'default') return;
    const loaded = !this.cursor || (this.items.length > 0 && data.key <= this.items[this.items.length - 1].key);
    if (this.tab === 'names') {
      if (data.kind === 'registered' && loaded) {
        this.put({ key: data.key, pid: data.pid, node: data.node, meta: data.meta ?? null });
      } else if (data.kind === 'unregistered') {
        this.remove(data.key);
      } else {
        return;
      }
    } else {
      const group = this.index.get(data.key);
      if (data.kind === 'joined') {
        if (group) group.members += 1;
        else if (loaded) this.put({ key: data.key, members: 1 });
      } else if (data.kind === 'left' && group) {
        group.members -= 1;
        if (group.members <= 0) this.remove(data.key);
      } else {
        return;
      }
    }
    this.list.setItems(this.items);
    this.showStatus();
  }

  renderRow(item, row) {
    row.dataset.key = item.key;
    row.className = 'vrow clickable';
    const key = document.createElement('span');
    key.className = 'k';
    key.textContent = item.key;
    const rest = document.createElement('span');
    rest.className = 'n';
    rest.textContent = this.tab === 'names'
      ? `${item.node ?? '?'} ${item.pid ?? ''} ${item.meta == null ? '' : brief(item.meta, 80)}`
      : `${item.members} member${item.members === 1 ? '' : 's'}`;
    row.replaceChildren(key, rest);
  }

  async show(item) {
    this.detail.hidden = false;
    if (this.tab === 'names') {
      this.detail.textContent = JSON.stringify(item, null, 2);
      return;
    }
    this.detail.textContent = `${item.key}: loading members…`;
    try {
      const group = await getJson(`/api/groups/${keyPath(item.key)}${query({ limit: 1000 })}`);
      const lines = group.members.map((m) => `${m.pid}  ${m.node ?? '?'}  ${m.meta == null ? '' : brief(m.meta, 120)}`);
      const shown = group.count > group.members.length ? ` (first ${group.members.length})` : '';
      this.detail.textContent = `${group.key}: ${group.count} member${group.count === 1 ? '' : 's'}${shown}\n${lines.join('\n')}`;
    } catch (error) {
      this.detail.textContent = `${item.key}: ${error.message}`;
    }
  }
}

/** A prefix as the API wants it: empty, or ending with `/`. */
function normalise(text) {
  const prefix = text.trim();
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** The index of the first item whose key is not less than `key`. */
function lowerBound(items, key) {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (items[mid].key < key) low = mid + 1;
    else high = mid;
  }
  return low;
}
