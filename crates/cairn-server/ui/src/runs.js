// The project page's runs table: state, name, tags, group, created, duration and chosen
// config/summary columns; sort by any column, search and key=value filters, group by, a
// column picker, checkboxes to compare runs. Virtualised so 10,000 runs open at once.
import { html, useEffect, useMemo, useRef, useState } from './html.js';
import { api, projectBase } from './api.js';
import { useStore } from './store.js';
import { navigate, paths, queryParam } from './router.js';
import { VirtualList } from './table.js';
import { fmtAgo, fmtCell, fmtDate, fmtDuration } from './format.js';
import { ProjectTabs, runsCache, selection } from './project.js';

const ROW = 32;
const HEAD = 34;

const lower = (v) => (v === null || v === undefined || v === '' ? null : typeof v === 'string' ? v.toLowerCase() : v);
const sortable = (v) => {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') return v.toLowerCase();
  return JSON.stringify(v).toLowerCase();
};

// Precomputed per run: the text the search box matches and the created time.
export function indexRuns(runs) {
  for (const r of runs) {
    r.tags = r.tags || [];
    r.config = r.config || {};
    r.summary = r.summary || {};
    r._hay = [r.name, r.displayName, r.group, r.jobType, r.user, r.state, ...r.tags].filter(Boolean).join('\u0001').toLowerCase();
    r._created = Date.parse(r.createdAt) || 0;
  }
  return runs;
}

const FIXED = [
  { id: 'state', label: '', title: 'State', width: 30, get: (r) => r.state },
  { id: 'name', label: 'Name', width: 230, get: (r) => lower(r.displayName || r.name) },
  { id: 'tags', label: 'Tags', width: 150, get: (r) => lower(r.tags.join(', ')) },
  { id: 'group', label: 'Group', width: 130, get: (r) => lower(r.group) },
  { id: 'created', label: 'Created', width: 110, get: (r) => r._created },
  { id: 'duration', label: 'Duration', width: 96, get: (r) => (Number.isFinite(r.duration) ? r.duration : null) },
];

function dynColumn(id) {
  const kind = id.startsWith('c:') ? 'config' : 'summary';
  const key = id.slice(2);
  return { id, key, kind, label: key, title: `${kind}.${key}`, width: 130, get: (r) => sortable(r[kind][key]) };
}

// A run's value for a filter key: config./summary. prefixes, run fields, then summary, config.
function lookup(r, k) {
  if (k.startsWith('config.') && !(k in r.summary) && !(k in r.config)) return r.config[k.slice(7)];
  if (k.startsWith('summary.') && !(k in r.summary) && !(k in r.config)) return r.summary[k.slice(8)];
  switch (k) {
    case 'name': return r.displayName || r.name;
    case 'id': return r.name;
    case 'state': return r.state;
    case 'group': return r.group;
    case 'tags': case 'tag': return r.tags;
    case 'jobType': case 'job_type': case 'job': return r.jobType;
    case 'user': return r.user;
    case 'duration': case 'runtime': return r.duration;
  }
  if (k in r.summary) return r.summary[k];
  return r.config[k];
}

function compare(v, op, t) {
  if (Array.isArray(v)) return op === '!=' ? !v.some((x) => compare(x, '=', t)) : v.some((x) => compare(x, op, t));
  if (v === undefined || v === null) return op === '!=';
  const tn = Number(t);
  const numeric = typeof v === 'number' && t.trim() !== '' && !isNaN(tn);
  const a = numeric ? v : String(typeof v === 'object' ? JSON.stringify(v) : v).toLowerCase();
  const b = numeric ? tn : t.toLowerCase();
  switch (op) {
    case '=': return a === b;
    case '!=': return a !== b;
    case '>': return a > b;
    case '<': return a < b;
    case '>=': return a >= b;
    case '<=': return a <= b;
    case '~': return String(a).includes(String(b));
  }
  return false;
}

// "resnet lr>0.01 tags=baseline group=\"a b\"": words match name/tags/group/...,
// key<op>value filters on config/summary keys and run fields.
export function parseFilter(q) {
  const preds = [];
  for (const raw of q.match(/(?:[^\s"]+|"[^"]*"?)+/g) || []) {
    const tok = raw.replace(/"/g, '');
    const m = /^([^=<>!~]+)(>=|<=|!=|=|>|<|~)(.*)$/.exec(tok);
    if (m) {
      const [, k, op, t] = m;
      preds.push((r) => compare(lookup(r, k), op, t));
    } else {
      const w = tok.toLowerCase();
      preds.push((r) => r._hay.includes(w));
    }
  }
  return preds;
}

function groupKeyFn(by) {
  if (by === 'group') return (r) => r.group || '';
  if (by === 'jobType') return (r) => r.jobType || '';
  if (by === 'user') return (r) => r.user || '';
  if (by.startsWith('c:')) {
    const k = by.slice(2);
    return (r) => (r.config[k] === undefined ? '' : fmtCell(r.config[k]));
  }
  return null;
}

function defaultColumns(summaryCounts) {
  return [...summaryCounts.entries()]
    .filter(([k]) => !k.startsWith('_'))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 6)
    .map(([k]) => 's:' + k);
}

export function StateDot({ state }) {
  return html`<span class=${'dot s-' + state} title=${state}></span>`;
}

function ColumnPicker({ configKeys, summaryKeys, chosen, setChosen, reset }) {
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState('');
  const ref = useRef(null);
  useEffect(() => {
    if (!open) return;
    const close = (e) => { if (ref.current && !ref.current.contains(e.target)) setOpen(false); };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, [open]);
  const f = q.trim().toLowerCase();
  const on = new Set(chosen);
  const toggle = (id) => setChosen(on.has(id) ? chosen.filter((c) => c !== id) : [...chosen, id]);
  const list = (title, prefix, keys) => {
    const ks = f ? keys.filter((k) => k.toLowerCase().includes(f)) : keys;
    return html`
      <div class="picker-group">${title} <span class="muted">${keys.length}</span></div>
      ${ks.length === 0 && html`<div class="muted picker-none">none</div>`}
      ${ks.slice(0, 500).map((k) => html`
        <label class="picker-item" title=${k}>
          <input type="checkbox" data-key=${prefix + k} checked=${on.has(prefix + k)} onChange=${() => toggle(prefix + k)} /> ${k}
        </label>`)}`;
  };
  return html`
    <div class="picker" data-testid="column-picker" ref=${ref}>
      <button class="btn" onClick=${() => setOpen(!open)} aria-expanded=${open}>Columns <span class="muted">${chosen.length}</span></button>
      ${open && html`
        <div class="popover">
          <div class="picker-top">
            <input type="search" placeholder="Search keys" value=${q} onInput=${(e) => setQ(e.target.value)} />
            <button class="link small" onClick=${reset}>Reset</button>
          </div>
          <div class="picker-list">
            ${list('Config', 'c:', configKeys)}
            ${list('Summary', 's:', summaryKeys)}
          </div>
        </div>`}
    </div>`;
}

export function RunsPage({ entity, project }) {
  const cacheKey = `${entity}/${project}`;
  const cached = runsCache.get(cacheKey);
  const [runs, setRuns] = useState(cached ? cached.runs : null);
  const [error, setError] = useState(null);
  // Search, sort and grouping survive leaving the page and coming back (runsCache).
  const view = (cached && cached.view) || {};
  const [query, setQuery] = useState(() => queryParam(location.search, 'q') ?? view.query ?? '');
  const [sort, setSort] = useState(view.sort || { col: 'created', dir: -1 });
  const [groupBy, setGroupBy] = useState(view.groupBy || '');
  const [closed, setClosed] = useState(() => new Set());
  const colsKey = `cairn.cols.${cacheKey}`;
  const [chosenCols, setChosenCols] = useState(() => {
    try { return JSON.parse(localStorage.getItem(colsKey)); } catch { return null; }
  });
  const sel = selection(entity, project);
  const picked = useStore(sel);

  useEffect(() => {
    let stop = false, timer = 0;
    const load = () => api(`${projectBase(entity, project)}/runs`).then((d) => {
      if (stop) return;
      const rs = indexRuns(d.runs || []);
      runsCache.set(cacheKey, { ...(runsCache.get(cacheKey) || {}), runs: rs });
      setRuns(rs);
      setError(null);
      if (rs.some((r) => r.state === 'running')) timer = setTimeout(load, 5000);
    }, (e) => {
      if (stop || e.status === 401) return;
      setError(e.message);
      timer = setTimeout(load, 5000);
    });
    load();
    return () => { stop = true; clearTimeout(timer); };
  }, [entity, project]);

  const keys = useMemo(() => {
    const cfg = new Set(), sum = new Map();
    for (const r of runs || []) {
      for (const k in r.config) cfg.add(k);
      for (const k in r.summary) sum.set(k, (sum.get(k) || 0) + 1);
    }
    return { config: [...cfg].sort(), summary: [...sum.keys()].sort(), summaryCounts: sum };
  }, [runs]);

  const chosen = chosenCols || defaultColumns(keys.summaryCounts);
  const setChosen = (c) => {
    setChosenCols(c);
    try { localStorage.setItem(colsKey, JSON.stringify(c)); } catch { /* full */ }
  };
  const columns = useMemo(() => [...FIXED, ...chosen.map(dynColumn)], [chosen.join('\u0000')]);
  const width = 34 + columns.reduce((a, c) => a + c.width, 0);

  // Sorted run indices; the sort keys are computed once per sort.
  const sorted = useMemo(() => {
    if (!runs) return [];
    const col = columns.find((c) => c.id === sort.col) || FIXED[4];
    const ks = runs.map(col.get);
    const idx = runs.map((_, i) => i);
    const dir = sort.dir;
    idx.sort((i, j) => {
      const a = ks[i], b = ks[j];
      if (a === null || a === undefined) return b === null || b === undefined ? i - j : 1;
      if (b === null || b === undefined) return -1;
      let c;
      if (typeof a === 'number' && typeof b === 'number') c = a - b;
      else if (typeof a === 'number') c = -1;
      else if (typeof b === 'number') c = 1;
      else c = a < b ? -1 : a > b ? 1 : 0;
      return c * dir || i - j;
    });
    return idx;
  }, [runs, sort, columns]);

  const filtered = useMemo(() => {
    const preds = parseFilter(query);
    if (!preds.length) return sorted;
    return sorted.filter((i) => preds.every((p) => p(runs[i])));
  }, [sorted, query]);

  useEffect(() => {
    const c = runsCache.get(cacheKey);
    if (c && runs) c.order = filtered.map((i) => runs[i].name);
  }, [filtered]);
  useEffect(() => {
    const c = runsCache.get(cacheKey);
    if (c) c.view = { query, sort, groupBy };
  }, [query, sort, groupBy, runs]);

  // Rows: run indices, or {group, count} header rows when grouping.
  const items = useMemo(() => {
    const gk = groupKeyFn(groupBy);
    if (!gk) return filtered;
    const groups = new Map();
    for (const i of filtered) {
      const g = gk(runs[i]);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(i);
    }
    const out = [];
    for (const [g, members] of groups) {
      out.push({ group: g, count: members.length });
      if (!closed.has(g)) for (const i of members) out.push(i);
    }
    return out;
  }, [filtered, groupBy, closed]);

  const pickedSet = useMemo(() => new Set(picked), [picked]);
  const togglePick = (id) => sel.set(pickedSet.has(id) ? picked.filter((p) => p !== id) : [...picked, id]);
  const allPicked = filtered.length > 0 && runs && filtered.every((i) => pickedSet.has(runs[i].name));
  const pickAll = () => {
    if (allPicked) {
      const drop = new Set(filtered.map((i) => runs[i].name));
      sel.set(picked.filter((p) => !drop.has(p)));
    } else {
      const add = filtered.map((i) => runs[i].name).filter((n) => !pickedSet.has(n));
      sel.set([...picked, ...add]);
    }
  };
  const toggleGroup = (g) => setClosed((c) => {
    const n = new Set(c);
    if (n.has(g)) n.delete(g); else n.add(g);
    return n;
  });
  const clickHead = (id) => setSort((s) => (s.col === id ? { col: id, dir: -s.dir } : { col: id, dir: id === 'created' || id === 'duration' || id.startsWith('s:') ? -1 : 1 }));

  const header = html`
    <div class="tr thead">
      <div class="td sel"><input type="checkbox" title="Select all shown runs" checked=${allPicked} onChange=${pickAll} /></div>
      ${columns.map((c) => html`
        <div class=${'td th' + (c.kind ? ' ' + c.kind : '')} style=${`width:${c.width}px`} title=${c.title || c.label}
          onClick=${() => clickHead(c.id)} data-col=${c.id}>
          ${c.kind && html`<span class="kind">${c.kind === 'config' ? 'c' : 's'}</span>`}
          <span class="th-label">${c.label}</span>
          ${sort.col === c.id && html`<span class="arrow">${sort.dir > 0 ? '▲' : '▼'}</span>`}
        </div>`)}
    </div>`;

  const renderRow = (i, style) => {
    const it = items[i];
    if (typeof it !== 'number') {
      const label = it.group === '' ? '(none)' : it.group;
      return html`
        <div class="tr group-row" style=${style} key=${'g:' + it.group} onClick=${() => toggleGroup(it.group)}>
          <span class=${'caret' + (closed.has(it.group) ? ' closed' : '')}>▾</span>
          <b>${label}</b> <span class="count">${it.count} ${it.count === 1 ? 'run' : 'runs'}</span>
        </div>`;
    }
    const r = runs[it];
    return html`
      <div class=${'tr' + (pickedSet.has(r.name) ? ' picked' : '')} style=${style} key=${r.name} data-testid="run-row" data-run=${r.name}>
        <div class="td sel"><input type="checkbox" data-testid="compare-select" checked=${pickedSet.has(r.name)} onChange=${() => togglePick(r.name)} /></div>
        ${columns.map((c) => html`<div class=${'td c-' + (c.kind || c.id)} style=${`width:${c.width}px`}>${cell(c, r)}</div>`)}
      </div>`;
  };
  const cell = (c, r) => {
    switch (c.id) {
      case 'state': return html`<${StateDot} state=${r.state} />`;
      case 'name': return html`<a href=${paths.run(entity, project, r.name)} title=${r.name}>${r.displayName || r.name}</a>`;
      case 'tags': return r.tags.map((t) => html`<span class="tag">${t}</span>`);
      case 'group': return r.group || '';
      case 'created': return html`<span title=${fmtDate(r.createdAt)}>${fmtAgo(r.createdAt)}</span>`;
      case 'duration': return fmtDuration(r.duration);
    }
    const v = r[c.kind][c.key];
    const t = fmtCell(v);
    return html`<span title=${t}>${t}</span>`;
  };

  const n = filtered.length;
  return html`
    <div class="page page-fill">
      <${ProjectTabs} entity=${entity} project=${project} active="runs" />
      <div class="toolbar">
        <input class="search" type="search" data-testid="runs-search" placeholder="Search runs, or filter: lr>0.01 state=running"
          value=${query} onInput=${(e) => setQuery(e.target.value)} />
        <label>Group by
          <select data-testid="runs-group-by" value=${groupBy} onChange=${(e) => { setGroupBy(e.target.value); setClosed(new Set()); }}>
            <option value="">None</option>
            <option value="group">Group</option>
            <option value="jobType">Job type</option>
            <option value="user">User</option>
            ${keys.config.length > 0 && html`<optgroup label="Config">${keys.config.map((k) => html`<option value=${'c:' + k}>${k}</option>`)}</optgroup>`}
          </select>
        </label>
        <${ColumnPicker} configKeys=${keys.config} summaryKeys=${keys.summary} chosen=${chosen} setChosen=${setChosen}
          reset=${() => { setChosenCols(null); try { localStorage.removeItem(colsKey); } catch { /* */ } }} />
        <span class="spacer"></span>
        <span class="muted" data-testid="runs-count">${n} ${n === 1 ? 'run' : 'runs'}</span>
        ${picked.length > 0 && html`<button class="link small" onClick=${() => sel.set([])}>clear ${picked.length} selected</button>`}
        <button class="btn primary" data-testid="compare-button" disabled=${picked.length === 0}
          onClick=${() => navigate(paths.compare(entity, project, picked))}>Compare${picked.length ? ` (${picked.length})` : ''}</button>
      </div>
      ${error && html`<div class="error">${error}</div>`}
      ${!runs ? html`<div class="empty">Loading runs…</div>`
        : runs.length === 0 ? html`<div class="empty">No runs in this project yet.</div>`
        : html`<${VirtualList} testid="runs-table" class="runs-table" count=${items.length} rowHeight=${ROW}
            header=${header} headerHeight=${HEAD} width=${width} renderRow=${renderRow} />`}
    </div>`;
}
