// Comparing runs: overlaid charts for the union of their metrics and a config/summary diff
// table (one column per run, differing rows highlighted, "only differences" toggle). Also the
// project's Workspace tab, which charts the picked runs (or the first 10 in the table).
import { html, useEffect, useMemo, useState } from './html.js';
import { api, projectBase, runBase } from './api.js';
import { useStore } from './store.js';
import { paths, queryParam, useLocation } from './router.js';
import { color, fmtExact } from './format.js';
import { Workspace } from './panels.js';
import { ProjectTabs, runsCache, selection } from './project.js';
import { StateDot } from './runs.js';

// Details of the given runs, refreshed every 5 s while any of them runs.
function useRunDetails(entity, project, ids) {
  const [state, setState] = useState({ runs: null, error: null });
  const key = ids.join(',');
  useEffect(() => {
    let stop = false, timer = 0;
    setState({ runs: null, error: null });
    if (!ids.length) { setState({ runs: [], error: null }); return undefined; }
    const load = () => Promise.all(ids.map((id) => api(runBase(entity, project, id)).catch((e) => {
      if (e.status === 404) return null;
      throw e;
    }))).then((rs) => {
      if (stop) return;
      const runs = rs.filter(Boolean);
      setState({ runs, error: null });
      if (runs.some((r) => r.state === 'running')) timer = setTimeout(load, 5000);
    }, (e) => { if (!stop && e.status !== 401) setState((s) => ({ ...s, error: e.message })); });
    load();
    return () => { stop = true; clearTimeout(timer); };
  }, [entity, project, key]);
  return state;
}

function chartRuns(entity, project, runs) {
  return runs.map((r, i) => ({ id: r.name, label: r.displayName || r.name, color: color(i), base: runBase(entity, project, r.name) }));
}

function unionMetrics(runs) {
  const s = new Set();
  for (const r of runs) for (const m of r.metrics || []) s.add(m);
  return [...s].sort();
}

const versionOf = (runs) => runs.map((r) => r.historyLines).join(',');

function DiffTable({ runs, entity, project }) {
  const [onlyDiff, setOnlyDiff] = useState(false);
  const rows = useMemo(() => {
    const out = [];
    for (const section of ['config', 'summary']) {
      const keys = new Set();
      for (const r of runs) for (const k of Object.keys(r[section] || {})) keys.add(k);
      const sorted = [...keys].sort((a, b) => {
        const ua = a.startsWith('_'), ub = b.startsWith('_');
        return ua !== ub ? (ua ? 1 : -1) : a < b ? -1 : a > b ? 1 : 0;
      });
      const list = sorted.map((k) => {
        const vals = runs.map((r) => (r[section] || {})[k]);
        const texts = vals.map((v) => (v === undefined ? undefined : JSON.stringify(v)));
        return { section, key: k, vals, differs: texts.some((t) => t !== texts[0]) };
      });
      out.push({ section, list });
    }
    return out;
  }, [runs]);
  const ndiff = rows.reduce((a, s) => a + s.list.filter((r) => r.differs).length, 0);
  return html`
    <div class="diff">
      <div class="toolbar">
        <h3>Config and summary</h3>
        <label><input type="checkbox" checked=${onlyDiff} onChange=${(e) => setOnlyDiff(e.target.checked)} /> Only differences</label>
        <span class="muted">${ndiff} differing</span>
      </div>
      <div class="diff-scroll">
        <table class="grid diff-table" data-testid="compare-diff">
          <thead>
            <tr><th>Key</th>${runs.map((r, i) => html`
              <th><i class="swatch" style=${`background:${color(i)}`}></i><a href=${paths.run(entity, project, r.name)}>${r.displayName || r.name}</a></th>`)}</tr>
          </thead>
          <tbody>
            ${rows.map(({ section, list }) => {
              const shown = onlyDiff ? list.filter((r) => r.differs) : list;
              return html`
                <tr class="diff-section"><td colspan=${runs.length + 1}>${section === 'config' ? 'Config' : 'Summary'} <span class="muted">${shown.length}</span></td></tr>
                ${shown.map((r) => html`
                  <tr data-testid="diff-row" data-key=${r.key} data-section=${section} class=${r.differs ? 'differs' : ''}>
                    <td class="k">${r.key}</td>
                    ${r.vals.map((v) => html`<td class=${v === undefined ? 'missing' : ''}>${v === undefined ? '—' : fmtExact(v)}</td>`)}
                  </tr>`)}`;
            })}
          </tbody>
        </table>
      </div>
    </div>`;
}

export function ComparePage({ entity, project }) {
  const loc = useLocation();
  const ids = (queryParam(loc.search, 'runs') || '').split(',').map((s) => s.trim()).filter(Boolean);
  const { runs, error } = useRunDetails(entity, project, ids);
  const cr = useMemo(() => (runs ? chartRuns(entity, project, runs) : []), [runs && runs.map((r) => r.name).join(',')]);
  const metrics = useMemo(() => (runs ? unionMetrics(runs) : []), [runs]);
  return html`
    <div class="page">
      <${ProjectTabs} entity=${entity} project=${project} active="compare" />
      <div class="run-head">
        <h1>Comparing ${ids.length} ${ids.length === 1 ? 'run' : 'runs'}</h1>
        ${runs && runs.map((r, i) => html`
          <a class="legend-item" href=${paths.run(entity, project, r.name)}><i style=${`background:${color(i)}`}></i><${StateDot} state=${r.state} /> ${r.displayName || r.name}</a>`)}
      </div>
      ${error && html`<div class="error">${error}</div>`}
      ${!ids.length ? html`<div class="empty">Pick runs in the <a href=${paths.project(entity, project)}>runs table</a> to compare them.</div>`
        : !runs ? html`<div class="empty">Loading runs…</div>`
        : html`
          <${DiffTable} runs=${runs} entity=${entity} project=${project} />
          <${Workspace} runs=${cr} metrics=${metrics} version=${versionOf(runs)} syncKey="compare" />`}
    </div>`;
}

export function WorkspacePage({ entity, project }) {
  const picked = useStore(selection(entity, project));
  const [order, setOrder] = useState(() => {
    const c = runsCache.get(`${entity}/${project}`);
    return c ? c.order || c.runs.map((r) => r.name) : null;
  });
  useEffect(() => {
    if (order) return;
    api(`${projectBase(entity, project)}/runs`).then((d) => setOrder((d.runs || []).map((r) => r.name)), () => {});
  }, [entity, project]);
  const ids = picked.length ? picked : (order || []).slice(0, 10);
  const { runs, error } = useRunDetails(entity, project, order || picked.length ? ids : []);
  const cr = useMemo(() => (runs ? chartRuns(entity, project, runs) : []), [runs && runs.map((r) => r.name).join(',')]);
  const metrics = useMemo(() => (runs ? unionMetrics(runs) : []), [runs]);
  return html`
    <div class="page">
      <${ProjectTabs} entity=${entity} project=${project} active="workspace" />
      <div class="muted pad">
        ${picked.length ? `Charting the ${picked.length} selected ${picked.length === 1 ? 'run' : 'runs'}.` : 'Charting the first 10 runs of the table; tick runs in the Runs tab to choose.'}
      </div>
      ${error && html`<div class="error">${error}</div>`}
      ${!runs || !(order || picked.length) ? html`<div class="empty">Loading…</div>`
        : !runs.length ? html`<div class="empty">No runs yet.</div>`
        : html`<${Workspace} runs=${cr} metrics=${metrics} version=${versionOf(runs)} syncKey="workspace" />`}
    </div>`;
}
