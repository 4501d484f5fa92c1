// A workspace of chart panels: the controls (x axis, smoothing, log scale, panel search) and the
// panels, one per metric, grouped into collapsible sections by the prefix before the first "/".
// Fetches every metric of every run in one series request per run (points = the plot width),
// refetches when `version` changes (live runs); each panel refetches its own range on zoom.
import { html, useCallback, useEffect, useMemo, useRef, useState } from './html.js';
import { api } from './api.js';
import { store, useStore } from './store.js';
import { Chart } from './chart.js';

const STEP_AXES = [['_step', 'Step'], ['_runtime', 'Relative time'], ['_timestamp', 'Wall time']];
const TIME_AXES = [['_runtime', 'Relative time'], ['_timestamp', 'Wall time']];

// Chart settings live for the whole visit, one set for history charts and one for system charts.
const settings = {
  history: store({ x: '_step', smoothing: 0, log: false }),
  events: store({ x: '_runtime', smoothing: 0, log: false }),
};

export function sectionOf(key, fallback = 'Charts') {
  const i = key.indexOf('/');
  return i > 0 ? key.slice(0, i) : fallback;
}

export function groupSections(keys, fallback = 'Charts') {
  const map = new Map();
  for (const k of keys) {
    const s = sectionOf(k, fallback);
    if (!map.has(s)) map.set(s, []);
    map.get(s).push(k);
  }
  return [...map.entries()].sort((a, b) => (a[0] === fallback ? -1 : b[0] === fallback ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function seriesUrl(base, keys, { x, points, source, from, to }) {
  const q = new URLSearchParams({ keys: keys.join(','), x, points: String(points), source });
  if (from !== undefined) q.set('from', String(from));
  if (to !== undefined) q.set('to', String(to));
  return `${base}/series?${q}`;
}

function ChartControls({ s, set, metrics, source }) {
  const axes = source === 'events' ? TIME_AXES : STEP_AXES;
  return html`
    <div class="controls">
      <label>X axis
        <select data-testid="x-axis" value=${s.x} onChange=${(e) => set({ ...s, x: e.target.value })}>
          ${axes.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
          ${source !== 'events' && metrics.length > 0 && html`<optgroup label="Metrics">${metrics.map((m) => html`<option value=${m}>${m}</option>`)}</optgroup>`}
        </select>
      </label>
      <label title="Exponential moving average; the raw line stays faint behind it">Smoothing
        <input type="range" data-testid="smoothing" min="0" max="0.99" step="0.01" value=${s.smoothing}
          onInput=${(e) => set({ ...s, smoothing: Number(e.target.value) })} />
        <span class="num">${s.smoothing.toFixed(2)}</span>
      </label>
      <label><input type="checkbox" data-testid="log-scale" checked=${s.log} onChange=${(e) => set({ ...s, log: e.target.checked })} /> Log scale</label>
    </div>`;
}

// runs: [{id, label, color, base (the run's API path)}]; metrics: keys to chart.
export function Workspace({ runs, metrics, source = 'history', version = '', syncKey = 'ws', fallbackSection }) {
  const st = settings[source];
  const s = useStore(st);
  const visible = useMemo(() => metrics.filter((m) => !m.startsWith('_')), [metrics]);
  const xOk = (source === 'events' ? TIME_AXES : STEP_AXES).some(([v]) => v === s.x) || visible.includes(s.x);
  const x = xOk ? s.x : source === 'events' ? '_runtime' : '_step';
  const [filter, setFilter] = useState('');
  const shownMetrics = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return f ? visible.filter((m) => m.toLowerCase().includes(f)) : visible;
  }, [visible, filter]);

  return html`
    <div class="workspace">
      <div class="toolbar">
        <${ChartControls} s=${{ ...s, x }} set=${(v) => st.set(v)} metrics=${visible} source=${source} />
        <input class="search" type="search" placeholder="Search panels" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      </div>
      ${runs.length > 1 && html`<div class="legend">${runs.map((r) => html`<span class="legend-item"><i style=${`background:${r.color}`}></i>${r.label}</span>`)}</div>`}
      ${visible.length === 0
        ? html`<div class="empty">${source === 'events' ? 'No system metrics logged.' : 'No metrics logged yet.'}</div>`
        : html`<${PanelGrid} runs=${runs} metrics=${visible} shown=${shownMetrics} source=${source} x=${x}
            smoothing=${s.smoothing} log=${s.log} version=${version} syncKey=${syncKey}
            fallbackSection=${fallbackSection || (source === 'events' ? 'System' : 'Charts')} />`}
    </div>`;
}

function PanelGrid({ runs, metrics, shown, source, x, smoothing, log, version, syncKey, fallbackSection }) {
  const [plotW, setPlotW] = useState(0);
  const [data, setData] = useState(null); // {x, perRun: [{metric: {x, y}}]}
  const [error, setError] = useState(null);
  const [collapsed, setCollapsed] = useState(() => new Set());
  const widthTimer = useRef(0);
  const seq = useRef(0);

  const seen = useRef(false);
  const onPlotWidth = useCallback((w) => {
    clearTimeout(widthTimer.current);
    const apply = () => setPlotW((old) => (old && Math.abs(old - w) < 4 ? old : w));
    if (!seen.current) { seen.current = true; apply(); } else widthTimer.current = setTimeout(apply, 250);
  }, []);

  const runsKey = runs.map((r) => r.base).join('|');
  const metricsKey = metrics.join('\u0000');
  useEffect(() => {
    if (!plotW || !runs.length) return;
    const mine = ++seq.current;
    const points = Math.max(10, Math.round(plotW));
    const chunks = [];
    for (let i = 0; i < metrics.length; i += 60) chunks.push(metrics.slice(i, i + 60));
    Promise.all(runs.map((r) => Promise.all(chunks.map((keys) => api(seriesUrl(r.base, keys, { x, points, source })))).then((parts) => {
      const out = {};
      for (const p of parts) Object.assign(out, (p && p.series) || {});
      return out;
    }))).then((perRun) => {
      if (mine !== seq.current) return;
      setError(null);
      setData({ x, perRun });
    }, (e) => {
      if (mine !== seq.current) return;
      setError(e.message);
    });
  }, [runsKey, metricsKey, x, plotW, version, source]);

  // Per metric, the runs' series in the shape Chart takes; identity only changes with the data.
  const byMetric = useMemo(() => {
    const m = new Map();
    if (!data || data.x !== x || data.perRun.length !== runs.length) return m;
    for (const key of metrics) {
      m.set(key, runs.map((r, i) => {
        const s = data.perRun[i][key];
        return { label: r.label, color: r.color, x: s ? s.x : [], y: s ? s.y : [] };
      }));
    }
    return m;
  }, [data, runsKey, metricsKey]);

  const loaders = useMemo(() => {
    const m = new Map();
    for (const key of metrics) {
      m.set(key, (from, to, points) => Promise.all(runs.map((r) =>
        api(seriesUrl(r.base, [key], { x, points: Math.max(10, Math.round(points)), source, from, to })).then((d) => {
          const s = d && d.series && d.series[key];
          return { label: r.label, color: r.color, x: s ? s.x : [], y: s ? s.y : [] };
        }))));
    }
    return m;
  }, [runsKey, metricsKey, x, source]);

  const lines = useMemo(() => runs.map((r) => ({ label: r.label, color: r.color })), [runs.map((r) => r.label + r.color).join('|')]);
  const sections = useMemo(() => groupSections(shown, fallbackSection), [shown, fallbackSection]);
  const toggle = (name) => setCollapsed((c) => {
    const n = new Set(c);
    if (n.has(name)) n.delete(name); else n.add(name);
    return n;
  });

  return html`
    <div class="sections">
      ${error && html`<div class="error">Could not load the charts: ${error}</div>`}
      ${sections.map(([name, keys]) => html`
        <section class="panel-section" data-testid="panel-section" data-prefix=${name} key=${name}>
          <h3 class="section-head" onClick=${() => toggle(name)}>
            <span class=${'caret' + (collapsed.has(name) ? ' closed' : '')}>▾</span> ${name} <span class="muted">${keys.length}</span>
          </h3>
          ${!collapsed.has(name) && html`
            <div class="panel-grid">
              ${keys.map((k) => html`<${Chart} key=${k} metric=${k} title=${source === 'events' ? k.replace(/^system\./, '') : k}
                runs=${byMetric.get(k) || null} lines=${lines} xKey=${x}
                smoothing=${smoothing} log=${log} loadZoom=${loaders.get(k)} onPlotWidth=${onPlotWidth} syncKey=${syncKey} />`)}
            </div>`}
        </section>`)}
    </div>`;
}
