// A virtualised list: fixed row height, only the rows in view (plus a margin) are in the DOM,
// positioned absolutely inside a spacer as tall as all rows. Used by the runs table and the console.
import { html, useEffect, useLayoutEffect, useRef, useState } from './html.js';

export function VirtualList({
  count, rowHeight, renderRow, header = null, headerHeight = 0, width = null,
  class: cls = '', testid, overscan = 10, onRange, handle, onScroll,
}) {
  const box = useRef(null);
  const [view, setView] = useState({ top: 0, height: 800 });
  const frame = useRef(0);

  useLayoutEffect(() => {
    const el = box.current;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight || 800 });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  if (handle) {
    handle.current = {
      el: () => box.current,
      scrollToIndex(i) { box.current.scrollTop = i * rowHeight; },
      scrollToBottom() { box.current.scrollTop = box.current.scrollHeight; },
      atBottom() {
        const el = box.current;
        return !el || el.scrollTop + el.clientHeight >= el.scrollHeight - rowHeight - 2;
      },
    };
  }

  const scrolled = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      const el = box.current;
      if (el) setView({ top: el.scrollTop, height: el.clientHeight || 800 });
      if (onScroll) onScroll();
    });
  };
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const first = Math.max(0, Math.floor((view.top - headerHeight) / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((view.top - headerHeight + view.height) / rowHeight) + overscan);
  useEffect(() => { if (onRange) onRange(first, last); }, [first, last, count]);

  const rows = [];
  for (let i = first; i < last; i++) rows.push(renderRow(i, `top:${i * rowHeight}px;height:${rowHeight}px`));
  const w = width ? `width:${width}px;` : '';
  return html`
    <div class=${'vlist ' + cls} data-testid=${testid} ref=${box} onScroll=${scrolled}>
      ${header && html`<div class="vhead" style=${w + `height:${headerHeight}px`}>${header}</div>`}
      <div class="vbody" style=${w + `height:${count * rowHeight}px`}>${rows}</div>
    </div>`;
}
