// One chart panel: a uPlot line chart of one metric for one or more runs, with W&B-style
// smoothing (debiased EMA over a faint raw line), log scale, drag-to-zoom that asks the server
// for the finer range, shift-drag (or middle-drag) to pan, double-click to reset, and a hover
// legend with every run's value.
import uPlot from 'uplot';
import { html, useEffect, useMemo, useRef, useState } from './html.js';
import { fmtNum, fmtSeconds, fmtDate } from './format.js';

// W&B's "exponential moving average": TensorBoard's debiased EMA with weight `a`.
export function ema(ys, a) {
  const out = new Array(ys.length);
  let last = 0, w = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined) { out[i] = null; continue; }
    last = last * a + (1 - a) * y;
    w = w * a + (1 - a);
    out[i] = last / w;
  }
  return out;
}

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

function ascending(xs) {
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) return false;
  return true;
}

// Series as drawn: sorted by x, values log scale can't show removed, smoothed copies,
// the uPlot data table, and the numbers the tests read (points, last, max).
export function prepare(runs, smoothing, log) {
  const tables = [];
  const drawn = [];
  let points = 0, last, max;
  runs.forEach((r, ri) => {
    let x = r.x || [], y = r.y || [];
    if (!ascending(x)) {
      const idx = x.map((_, i) => i).sort((a, b) => x[a] - x[b]);
      x = idx.map((i) => r.x[i]);
      y = idx.map((i) => r.y[i]);
    }
    const yy = new Array(y.length);
    let m = -Infinity, l;
    for (let i = 0; i < y.length; i++) {
      const v = y[i];
      if (finite(v)) {
        points++;
        if (v > m) m = v;
        l = v;
        yy[i] = log && v <= 0 ? null : v;
      } else yy[i] = null;
    }
    // data-last: the first run (with points) ends there; data-max: the highest point drawn.
    if (last === undefined && l !== undefined) last = l;
    if (l !== undefined && (max === undefined || m > max)) max = m;
    const sm = smoothing > 0 ? ema(yy, smoothing) : null;
    drawn.push({ x, raw: yy, smooth: sm });
    tables.push(sm ? [x, yy, sm] : [x, yy]);
  });
  let data;
  if (tables.length === 0) data = [[]];
  else if (tables.length === 1) data = tables[0];
  else data = uPlot.join(tables);
  return { data, drawn, points, last, max };
}

function rgba(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
}

export function fmtX(xKey, v) {
  if (v === null || v === undefined) return '';
  if (xKey === '_timestamp') return fmtDate(new Date(v * 1000).toISOString());
  if (xKey === '_runtime') return fmtSeconds(v);
  return fmtNum(v);
}

// Index of the point nearest to x in a sorted array.
function nearest(xs, x) {
  let lo = 0, hi = xs.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1; else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) lo--;
  return lo;
}

// Room the y axis and the padding take: the plot's width is the container's less this.
const Y_AXIS = 56;
const PAD = [10, 24, 0, 0];
const plotPixels = (cssWidth) => Math.max(10, Math.round((cssWidth - Y_AXIS - PAD[1] - PAD[3]) * (window.devicePixelRatio || 1)));

function makeOpts({ width, height, runs, smoothing, log, xKey, syncKey, onSelect, onCursor, onPan }) {
  const series = [{ label: 'x' }];
  // Values a log scale can't show are gaps, not bridged; other gaps (runs logging at
  // different x) are bridged.
  const spanGaps = !log;
  for (const r of runs) {
    if (smoothing > 0) {
      series.push({ label: r.label, stroke: rgba(r.color, 0.22), width: 1, spanGaps, points: { show: false } });
      series.push({ label: r.label + ' (smoothed)', stroke: r.color, width: 1.6, spanGaps, points: { show: false } });
    } else {
      series.push({ label: r.label, stroke: r.color, width: 1.4, spanGaps });
    }
  }
  const axis = { stroke: '#6b7280', grid: { stroke: '#eef0f3', width: 1 }, ticks: { stroke: '#e5e7eb', width: 1 }, font: '11px system-ui, sans-serif' };
  const xAxis = { ...axis };
  if (xKey === '_runtime') xAxis.values = (u, splits) => splits.map((s) => (s === null ? '' : fmtSeconds(s)));
  else if (xKey !== '_timestamp') xAxis.values = (u, splits) => splits.map((s) => (s === null ? '' : fmtNum(s)));
  return {
    width, height, series,
    legend: { show: false },
    // Fixed padding: the plot keeps its width whatever the labels, so the points asked for
    // before the data came still fit it.
    padding: PAD,
    scales: { x: { time: xKey === '_timestamp' }, y: log ? { distr: 3 } : {} },
    axes: [xAxis, { ...axis, size: Y_AXIS, values: (u, splits) => splits.map((s) => (s === null ? '' : fmtNum(s))) }],
    cursor: {
      y: false,
      drag: { x: true, y: false, setScale: false },
      // Shift-drag or middle-drag pans instead of selecting a range to zoom into.
      bind: {
        mousedown: (u, targ, handler) => (e) => {
          if (e.shiftKey || e.button === 1) { e.preventDefault(); onPan(u, e); return null; }
          return handler(e);
        },
      },
      sync: syncKey ? { key: syncKey, filters: { pub: (type) => type === 'mousemove' || type === 'mouseleave' } } : undefined,
      points: { size: 6 },
    },
    hooks: {
      setSelect: [(u) => {
        const s = u.select;
        if (s.width > 3) onSelect(u.posToVal(s.left, 'x'), u.posToVal(s.left + s.width, 'x'));
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      }],
      setCursor: [(u) => onCursor(u)],
    },
  };
}

// runs: the series ({label, color, x, y}) or null while loading; lines: their labels and
// colours, known before the data (so the plot is built once).
export function Chart({ metric, title, runs, lines, xKey, smoothing, log, loadZoom, onPlotWidth, syncKey, height = 210 }) {
  const box = useRef(null), plotEl = useRef(null), tip = useRef(null), plot = useRef(null);
  const [zoom, setZoom] = useState(null); // {from, to, runs | null while loading}
  const shown = zoom && zoom.runs ? zoom.runs : runs;
  const prep = useMemo(() => (shown ? prepare(shown, smoothing, log) : null), [shown, smoothing, log]);
  const cur = useRef({});
  cur.current = { shown, prep, zoom, xKey, smoothing, loadZoom };

  // keep: the zoomed range is only refreshed (live data), so its current points stay drawn.
  const doZoom = (from, to, keep = false) => {
    if (!(to > from)) return;
    setZoom((old) => ({ from, to, runs: keep && old && old.from === from && old.to === to ? old.runs : null }));
    const u = plot.current;
    if (u) u.setScale('x', { min: from, max: to });
    const { loadZoom: load } = cur.current;
    if (!load || !u) return;
    load(from, to, plotPixels(box.current ? box.current.clientWidth : 400)).then((rs) => {
      setZoom((old) => (old && old.from === from && old.to === to ? { from, to, runs: rs } : old));
    }, () => {});
  };

  const onCursor = (u) => {
    const el = tip.current;
    if (!el) return;
    const { idx, left } = u.cursor;
    const { shown: rs, prep: p, xKey: xk, smoothing: sm } = cur.current;
    // Charts that only mirror another chart's cursor (sync) show the crosshair, not the tip.
    if (idx === null || idx === undefined || left === undefined || left < 0 || !rs || !p || !u.cursor.event) {
      el.style.display = 'none';
      return;
    }
    const xv = u.data[0][idx];
    const rows = [];
    p.drawn.forEach((d, i) => {
      const j = nearest(d.x, xv);
      if (j < 0) return;
      const raw = d.raw[j];
      if (raw === null || raw === undefined) return;
      const s = d.smooth ? d.smooth[j] : null;
      rows.push({ label: rs[i].label, color: rs[i].color, v: s !== null ? s : raw, raw: s !== null ? raw : null });
    });
    if (!rows.length) { el.style.display = 'none'; return; }
    if (rows.length > 1) rows.sort((a, b) => b.v - a.v);
    const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
    el.innerHTML = `<div class="tip-x">${esc(fmtX(xk, xv))}</div>` + rows.map((r) =>
      `<div class="tip-row"><i style="background:${r.color}"></i><span class="tip-label">${esc(r.label)}</span>` +
      `<b>${esc(fmtNum(r.v))}</b>${sm > 0 && r.raw !== null ? `<span class="tip-raw">${esc(fmtNum(r.raw))}</span>` : ''}</div>`).join('');
    el.style.display = 'block';
    const w = el.offsetWidth, total = u.over.clientWidth;
    const x = left + 14 + w > total ? left - w - 10 : left + 14;
    el.style.transform = `translate(${Math.max(0, x) + u.over.offsetLeft}px, ${u.over.offsetTop + 4}px)`;
  };

  // Pan: the scale follows the pointer while dragging; on release the new range is asked for
  // at full resolution, like a zoom.
  const onPan = (u, down) => {
    const { min, max } = u.scales.x;
    if (!(max > min)) return;
    const width = u.over.clientWidth || 1;
    let shift = 0;
    const move = (e) => {
      shift = ((down.clientX - e.clientX) / width) * (max - min);
      u.setScale('x', { min: min + shift, max: max + shift });
    };
    const up = () => {
      document.removeEventListener('mousemove', move);
      document.removeEventListener('mouseup', up);
      if (shift !== 0) doZoom(min + shift, max + shift);
    };
    document.addEventListener('mousemove', move);
    document.addEventListener('mouseup', up);
  };

  const legend = lines || shown || [{ label: metric, color: '#5387dd' }];
  const structure = [smoothing > 0, log, xKey, syncKey, legend.map((r) => r.color + r.label).join('|')].join(';');

  useEffect(() => {
    const el = box.current;
    const width = Math.max(160, el.clientWidth);
    const opts = makeOpts({ width, height, runs: legend, smoothing, log, xKey, syncKey, onSelect: doZoom, onCursor, onPan });
    const empty = [[]];
    for (let i = 1; i < opts.series.length; i++) empty.push([]);
    const u = new uPlot(opts, prep ? prep.data : empty, plotEl.current);
    plot.current = u;
    // The points to ask for: the plot's width in device pixels (fixed axis and padding, so
    // known before any data is drawn).
    if (onPlotWidth) onPlotWidth(plotPixels(width));
    const reset = () => setZoom(null);
    u.over.addEventListener('dblclick', reset);
    const leave = () => { if (tip.current) tip.current.style.display = 'none'; };
    u.over.addEventListener('mouseleave', leave);
    let lastW = width;
    const ro = new ResizeObserver(() => {
      const w = Math.max(160, el.clientWidth);
      if (w === lastW) return;
      lastW = w;
      u.setSize({ width: w, height });
      if (onPlotWidth) onPlotWidth(plotPixels(w));
    });
    ro.observe(el);
    return () => { ro.disconnect(); u.destroy(); plot.current = null; };
  }, [structure]);

  useEffect(() => {
    const u = plot.current;
    if (!u || !prep) return;
    u.setData(prep.data, true);
    if (zoom) u.setScale('x', { min: zoom.from, max: zoom.to });
  }, [prep, zoom, structure]);

  // Live data arrived while zoomed: ask again for the zoomed range.
  const firstRuns = useRef(true);
  useEffect(() => {
    if (firstRuns.current) { firstRuns.current = false; return; }
    if (zoom) doZoom(zoom.from, zoom.to, true);
  }, [runs]);
  // A new x axis invalidates the zoom range.
  useEffect(() => setZoom(null), [xKey]);

  const empty = prep && prep.points === 0;
  return html`
    <div class="panel" data-testid="chart" data-metric=${metric}
      data-points=${prep ? String(prep.points) : undefined}
      data-last=${prep && prep.last !== undefined ? String(prep.last) : undefined}
      data-max=${prep && prep.max !== undefined ? String(prep.max) : undefined}
      data-zoomed=${zoom ? 'true' : undefined}
      data-range=${zoom ? `${zoom.from},${zoom.to}` : undefined}>
      <div class="panel-title" title=${metric}>${title || metric}${zoom && html`<button class="link small" onClick=${() => setZoom(null)} title="Reset zoom (or double-click the chart). Drag to zoom, shift-drag to pan.">reset zoom</button>`}</div>
      <div class="panel-plot" ref=${box}>
        <div ref=${plotEl}></div>
        <div class="tip" ref=${tip}></div>
        ${!prep ? html`<div class="panel-note">Loading…</div>` : empty ? html`<div class="panel-note">No data</div>` : null}
      </div>
    </div>`;
}
