// The Logs tab: the run's console output, virtualised (fixed line height), fetched in pages as
// the user scrolls, searched on the server (q), following the tail while the run is live.
import { html, useEffect, useRef, useState } from './html.js';
import { api } from './api.js';
import { VirtualList } from './table.js';
import { stripAnsi } from './format.js';

const LINE = 18;
const PAGE = 500;

function Highlight({ text, q }) {
  if (!q) return text;
  const lo = text.toLowerCase(), ql = q.toLowerCase();
  const out = [];
  let i = 0, j;
  while ((j = lo.indexOf(ql, i)) >= 0 && out.length < 200) {
    if (j > i) out.push(text.slice(i, j));
    out.push(html`<mark>${text.slice(j, j + q.length)}</mark>`);
    i = j + q.length;
  }
  out.push(text.slice(i));
  return out;
}

export function Logs({ base, version, live }) {
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const [total, setTotal] = useState(null);
  const [, setTick] = useState(0);
  const pages = useRef(new Map()); // page index → lines | 'loading'
  const range = useRef([0, 0]);
  const gen = useRef(0);
  const handle = useRef(null);
  const follow = useRef(false);

  // Debounced server-side search.
  useEffect(() => {
    const t = setTimeout(() => setSearch(q.trim()), 250);
    return () => clearTimeout(t);
  }, [q]);

  const fetchPage = (p, force = false) => {
    const have = pages.current.get(p);
    if (have && (!force || have === 'loading')) return Promise.resolve();
    if (!have) pages.current.set(p, 'loading');
    const g = gen.current;
    const params = new URLSearchParams({ from: String(p * PAGE), limit: String(PAGE) });
    if (search) params.set('q', search);
    return api(`${base}/console?${params}`).then((d) => {
      if (g !== gen.current) return;
      pages.current.set(p, d.lines || []);
      setTotal(d.total);
      setTick((t) => t + 1);
    }, () => { if (g === gen.current && pages.current.get(p) === 'loading') pages.current.delete(p); });
  };

  const ensure = (first, last) => {
    range.current = [first, last];
    if (last <= first) return;
    for (let p = Math.floor(first / PAGE); p <= Math.floor((last - 1) / PAGE); p++) fetchPage(p);
  };

  // New search: start over.
  useEffect(() => {
    gen.current++;
    pages.current = new Map();
    setTotal(null);
    fetchPage(0);
  }, [base, search]);

  // A live run opens at its tail.
  const started = useRef(false);
  useEffect(() => {
    if (total === null || started.current) return;
    started.current = true;
    if (!live || search || total <= 0) return;
    fetchPage(Math.floor((total - 1) / PAGE)).then(() => requestAnimationFrame(() => handle.current && handle.current.scrollToBottom()));
  }, [total]);

  // Live: the line count grew; refetch the last page and follow the tail if at the bottom.
  useEffect(() => {
    if (total === null) return;
    follow.current = handle.current ? handle.current.atBottom() : false;
    const lastPage = Math.max(0, Math.floor((total - 1) / PAGE));
    fetchPage(lastPage, true).then(() => {
      if (follow.current && handle.current) requestAnimationFrame(() => handle.current && handle.current.scrollToBottom());
    });
  }, [version]);

  const lineAt = (i) => {
    const pg = pages.current.get(Math.floor(i / PAGE));
    return pg && pg !== 'loading' ? pg[i % PAGE] : undefined;
  };

  const renderRow = (i, style) => {
    const l = lineAt(i);
    return html`
      <div class=${"cline" + (l && l.stderr ? " err" : "")} style=${style} key=${i} data-testid="console-line" data-n=${l ? l.n : undefined}>
        <span class="ln" title=${l && l.time ? l.time : undefined}>${l ? l.n + 1 : ''}</span><span class="ct">${l ? html`<${Highlight} text=${stripAnsi(l.text)} q=${search} />` : ''}</span>
      </div>`;
  };

  return html`
    <div class="logs">
      <div class="toolbar">
        <input class="search" type="search" data-testid="console-search" placeholder="Search the logs" value=${q} onInput=${(e) => setQ(e.target.value)} />
        <span class="muted">${total === null ? '' : search ? `${total} matching ${total === 1 ? 'line' : 'lines'}` : `${total} ${total === 1 ? 'line' : 'lines'}`}</span>
        <span class="spacer"></span>
        ${total > 0 && html`<button class="link small" onClick=${() => handle.current && handle.current.scrollToBottom()}>Jump to end</button>`}
      </div>
      ${total === 0
        ? html`<div class="console console-empty" data-testid="console">${search ? 'No matching lines.' : 'No console output.'}</div>`
        : html`<${VirtualList} testid="console" class="console" count=${total || 0} rowHeight=${LINE} overscan=${30}
            renderRow=${renderRow} onRange=${ensure} handle=${handle} />`}
    </div>`;
}
