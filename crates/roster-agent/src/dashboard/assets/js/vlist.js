// A virtualised list: a scroller holding a spacer as tall as every row, and only the rows
// in view (plus a few) as elements, placed with a transform. Rows have one fixed height,
// so 100,000 items cost the DOM a few dozen elements.

import { h, schedule } from './dom.js';

const OVERSCAN = 8;

export class VirtualList {
  /**
   * `container`: the scrolling element; `rowHeight` in pixels; `render(item, row)` fills
   * a row element for an item (rows are reused: set everything each time);
   * `onNearEnd()` is called when the view reaches the last rows (infinite scroll).
   */
  constructor(container, { rowHeight, render, onNearEnd, onClick }) {
    this.container = container;
    this.rowHeight = rowHeight;
    this.render = render;
    this.onNearEnd = onNearEnd;
    this.items = [];
    this.rows = new Map(); // index -> element
    this.free = [];
    this.dirty = false; // redraw the rows in view even where their index is unchanged
    this.spacer = h('div', { class: 'vlist-spacer' });
    container.append(this.spacer);
    this.key = `vlist-${Math.random()}`;
    container.addEventListener('scroll', () => this.refresh(), { passive: true });
    new ResizeObserver(() => this.refresh()).observe(container);
    if (onClick) {
      container.addEventListener('click', (event) => {
        const row = event.target.closest('.vrow');
        if (row && row.dataset.index !== undefined) {
          const item = this.items[Number(row.dataset.index)];
          if (item !== undefined) onClick(item, row);
        }
      });
    }
  }

  /** Replaces the items (the array is kept, not copied) and redraws at the next frame. */
  setItems(items) {
    this.items = items;
    this.refresh(true);
  }

  /** Redraws at the next frame; `all` redraws the rows in view even if their index is the same. */
  refresh(all = false) {
    if (all) this.dirty = true;
    schedule(this.key, () => this.draw());
  }

  draw() {
    const count = this.items.length;
    this.spacer.style.height = `${count * this.rowHeight}px`;
    const top = this.container.scrollTop;
    const height = this.container.clientHeight || 300;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - OVERSCAN);
    const last = Math.min(count, Math.ceil((top + height) / this.rowHeight) + OVERSCAN);
    for (const [index, row] of this.rows) {
      if (index < first || index >= last) {
        this.rows.delete(index);
        row.hidden = true;
        this.free.push(row);
      }
    }
    for (let index = first; index < last; index += 1) {
      let row = this.rows.get(index);
      const fresh = !row;
      if (fresh) {
        row = this.free.pop() || this.container.appendChild(h('div', { class: 'vrow' }));
        row.hidden = false;
        row.dataset.index = String(index);
        row.style.transform = `translateY(${index * this.rowHeight}px)`;
        this.rows.set(index, row);
      }
      if (fresh || this.dirty) this.render(this.items[index], row);
    }
    this.dirty = false;
    if (this.onNearEnd && count > 0 && last >= count - 1) this.onNearEnd();
  }
}
