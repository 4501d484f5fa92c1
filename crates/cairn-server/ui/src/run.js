// A run's page: state badge, name and tabs (Overview, Charts, System, Logs, Files, Artifacts).
// While the run is running it polls every 2 s (details; charts and logs refetch when their
// line counts grow) and stops once the run has ended.
import { html, useEffect, useState } from './html.js';
import { api, runBase } from './api.js';
import { paths } from './router.js';
import { crumbs } from './crumbs.js';
import { fmtAgo, fmtDate, fmtDuration, fmtExact } from './format.js';
import { Workspace } from './panels.js';
import { Logs } from './logs.js';
import { Files } from './files.js';

const TABS = [['overview', 'Overview'], ['charts', 'Charts'], ['system', 'System'], ['logs', 'Logs'], ['files', 'Files'], ['artifacts', 'Artifacts']];

export function StateBadge({ state, testid }) {
  return html`<span class=${'badge s-' + state} data-testid=${testid}>${state}</span>`;
}

function gitLink(repo, commit) {
  if (!repo) return null;
  let url = repo.replace(/\.git$/, '');
  const ssh = /^git@([^:]+):(.+)$/.exec(url);
  if (ssh) url = `https://${ssh[1]}/${ssh[2]}`;
  if (!/^https?:\/\//.test(url)) return null;
  return commit ? `${url}/commit/${commit}` : url;
}

function KeyTable({ values, testid, rowId, valueId, empty }) {
  const keys = Object.keys(values || {}).sort((a, b) => {
    const ua = a.startsWith('_'), ub = b.startsWith('_');
    return ua !== ub ? (ua ? 1 : -1) : a < b ? -1 : a > b ? 1 : 0;
  });
  if (!keys.length) return html`<div class="muted pad" data-testid=${testid}>${empty}</div>`;
  return html`
    <table class="grid kv" data-testid=${testid}>
      <tbody>
        ${keys.map((k) => html`
          <tr data-testid=${rowId} data-key=${k}>
            <td class="k">${k}</td>
            <td class="v" data-testid=${valueId}>${fmtExact(values[k])}</td>
          </tr>`)}
      </tbody>
    </table>`;
}

function Overview({ run, entity, project }) {
  const git = gitLink(run.gitRepo, run.gitCommit);
  const row = (k, v) => (v === null || v === undefined || v === '' || (Array.isArray(v) && !v.length) ? null : html`<tr><th>${k}</th><td>${v}</td></tr>`);
  return html`
    <div class="overview">
      <table class="grid info">
        <tbody>
          ${row('State', html`<${StateBadge} state=${run.state} />`)}
          ${row('Run id', html`<code>${run.name}</code>`)}
          ${row('Created', html`${fmtDate(run.createdAt)} <span class="muted">(${fmtAgo(run.createdAt)})</span>`)}
          ${row('Duration', fmtDuration(run.duration))}
          ${row('Last heartbeat', run.heartbeatAt ? fmtDate(run.heartbeatAt) : null)}
          ${row('User', run.user)}
          ${row('Host', run.host)}
          ${row('Program', run.program && html`<code>${run.program}</code>`)}
          ${row('Command', run.command && html`<code class="wrap">${run.command}</code>`)}
          ${row('OS', run.os)}
          ${row('Python', run.python)}
          ${row('Git repository', run.gitRepo && (git ? html`<a href=${git.replace(/\/commit\/.*$/, '')} target="_blank" rel="noopener">${run.gitRepo}</a>` : run.gitRepo))}
          ${row('Git commit', run.gitCommit && (git ? html`<a href=${git} target="_blank" rel="noopener"><code>${run.gitCommit}</code></a>` : html`<code>${run.gitCommit}</code>`))}
          ${row('Exit code', run.exitcode === null || run.exitcode === undefined ? null : String(run.exitcode))}
          ${row('Group', run.group && html`<a href=${`${paths.project(entity, project)}?q=${encodeURIComponent(/\s/.test(run.group) ? `group="${run.group}"` : `group=${run.group}`)}`} title="Runs of this group">${run.group}</a>`)}
          ${row('Job type', run.jobType)}
          ${row('Tags', run.tags && run.tags.map((t) => html`<span class="tag">${t}</span>`))}
          ${row('Notes', run.notes && html`<span class="notes">${run.notes}</span>`)}
        </tbody>
      </table>
      <div class="two-col">
        <div>
          <h3>Config</h3>
          <${KeyTable} values=${run.config} testid="run-config" rowId="config-row" valueId="config-value" empty="No config." />
        </div>
        <div>
          <h3>Summary</h3>
          <${KeyTable} values=${run.summary} testid="run-summary" rowId="summary-row" valueId="summary-value" empty="No summary." />
        </div>
      </div>
    </div>`;
}

function Artifacts({ run, entity, project }) {
  const list = (title, items) => html`
    <h3>${title} <span class="muted">${items.length}</span></h3>
    ${items.length === 0 ? html`<div class="muted pad">None.</div>` : html`
      <table class="grid">
        <thead><tr><th>Artifact</th><th>Type</th><th>Aliases</th></tr></thead>
        <tbody>
          ${items.map((a) => html`
            <tr data-artifact=${a.name}>
              <td><a href=${paths.artifact(entity, project, a.type, a.collection, a.version)}>${a.name}</a></td>
              <td>${a.type}</td>
              <td>${(a.aliases || []).map((al) => html`<span class="alias">${al}</span>`)}</td>
            </tr>`)}
        </tbody>
      </table>`}`;
  const arts = run.artifacts || {};
  return html`<div class="run-artifacts">${list('Output artifacts', arts.output || [])}${list('Input artifacts', arts.input || [])}</div>`;
}

export function RunPage({ entity, project, run: id, tab }) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  const base = runBase(entity, project, id);

  useEffect(() => {
    let stop = false, timer = 0;
    setRun(null);
    setError(null);
    const load = () => api(base).then((r) => {
      if (stop) return;
      r.tags = r.tags || [];
      setRun(r);
      setError(null);
      crumbs.set({ run: id, runLabel: r.displayName || r.name });
      document.title = `${r.displayName || r.name} · ${project} · cairn`;
      if (r.state === 'running') timer = setTimeout(load, 2000);
    }, (e) => {
      if (stop || e.status === 401) return;
      setError(e.status === 404 ? 'This run does not exist.' : e.message);
      if (e.status !== 404) timer = setTimeout(load, 4000);
    });
    load();
    return () => { stop = true; clearTimeout(timer); crumbs.set({}); };
  }, [base]);

  if (!run) return html`<div class="page">${error ? html`<div class="error">${error}</div>` : html`<div class="empty">Loading run…</div>`}</div>`;
  const live = run.state === 'running';
  const me = [{ id: run.name, label: run.displayName || run.name, color: '#5387dd', base }];
  const t = TABS.some(([k]) => k === tab) ? tab : 'charts';
  return html`
    <div class="page">
      <div class="run-head">
        <${StateBadge} state=${run.state} testid="run-state" />
        <h1 data-testid="run-name">${run.displayName || run.name}</h1>
        <span class="muted">${run.name}</span>
        ${run.tags.map((tg) => html`<span class="tag">${tg}</span>`)}
        <span class="spacer"></span>
        ${live && html`<span class="live" title="This page updates every 2 seconds">● live</span>`}
        <span class="muted" title=${fmtDate(run.createdAt)}>${fmtAgo(run.createdAt)} · ${fmtDuration(run.duration)}</span>
      </div>
      ${error && html`<div class="error">${error}</div>`}
      <nav class="tabs">
        ${TABS.map(([k, l]) => html`<a class=${'tab' + (t === k ? ' active' : '')} data-testid=${'tab-' + k} href=${paths.run(entity, project, id, k === 'charts' ? '' : k)}>${l}</a>`)}
      </nav>
      ${t === 'overview' && html`<${Overview} run=${run} entity=${entity} project=${project} />`}
      ${t === 'charts' && html`<${Workspace} key="charts" runs=${me} metrics=${run.metrics || []} source="history" version=${String(run.historyLines)} syncKey=${'run:' + id} />`}
      ${t === 'system' && html`<${Workspace} key="system" runs=${me} metrics=${run.systemMetrics || []} source="events" version=${String(run.eventsLines)} syncKey=${'sys:' + id} />`}
      ${t === 'logs' && html`<${Logs} base=${base} version=${run.logLines} live=${live} />`}
      ${t === 'files' && html`<${Files} files=${run.files} />`}
      ${t === 'artifacts' && html`<${Artifacts} run=${run} entity=${entity} project=${project} />`}
    </div>`;
}
