// Formatting of numbers, durations, dates, sizes and values for display.

export function fmtNum(v) {
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(5)));
}

// Exact text of a config/summary value (tables on the run page show every digit).
export function fmtExact(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

// Compact text of a value for the runs table.
export function fmtCell(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return fmtNum(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '';
  s = Math.max(0, Math.round(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

// Seconds on a relative-time axis.
export function fmtSeconds(s) {
  const a = Math.abs(s);
  if (a < 120) return `${Number(s.toPrecision(4))}s`;
  if (a < 7200) return `${Number((s / 60).toPrecision(3))}m`;
  if (a < 172800) return `${Number((s / 3600).toPrecision(3))}h`;
  return `${Number((s / 86400).toPrecision(3))}d`;
}

export function fmtDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (isNaN(t)) return String(iso);
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  if (s < 86400 * 30) return `${Math.round(s / 86400)}d ago`;
  return fmtDate(iso).slice(0, 10);
}

export function fmtSize(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  const u = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${u[i]}`;
}

// Distinct run colours (W&B-like palette).
export const COLORS = [
  '#5387dd', '#da4c4c', '#479a5f', '#e87b38', '#7d54b2', '#229487', '#c565c7', '#a0c75c',
  '#5ac5db', '#edb732', '#a12864', '#86592d', '#ec6897', '#3b4a9a', '#6b8e23', '#ff8c69',
];
export const color = (i) => COLORS[i % COLORS.length];

export function withQuery(url, q) {
  return url + (url.includes('?') ? '&' : '?') + q;
}

export const stripAnsi = (s) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
