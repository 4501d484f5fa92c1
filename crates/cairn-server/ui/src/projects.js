// The projects page: every project the viewer can reach, with run counts and last activity.
import { html, useEffect, useState } from './html.js';
import { api } from './api.js';
import { paths } from './router.js';
import { fmtAgo, fmtDate } from './format.js';

export function ProjectsPage() {
  const [projects, setProjects] = useState(null);
  const [error, setError] = useState(null);
  const [q, setQ] = useState('');
  useEffect(() => {
    api('/api/projects').then((d) => setProjects(d.projects || []), (e) => e.status !== 401 && setError(e.message));
  }, []);
  const f = q.trim().toLowerCase();
  const list = (projects || [])
    .filter((p) => !f || `${p.entity}/${p.name}`.toLowerCase().includes(f))
    .sort((a, b) => (b.lastRunAt || b.createdAt || '').localeCompare(a.lastRunAt || a.createdAt || ''));
  return html`
    <div class="page">
      <div class="run-head"><h1>Projects</h1><span class="spacer"></span>
        <input class="search" type="search" placeholder="Search projects" value=${q} onInput=${(e) => setQ(e.target.value)} /></div>
      ${error && html`<div class="error">${error}</div>`}
      ${!projects ? html`<div class="empty">Loading…</div>`
        : !projects.length ? html`<div class="empty">No projects yet. Log a run with <code>wandb.init(project="…")</code> and it shows up here.</div>`
        : html`
          <table class="grid projects">
            <thead><tr><th>Project</th><th class="r">Runs</th><th>Last run</th><th>Created</th></tr></thead>
            <tbody>
              ${list.map((p) => html`
                <tr>
                  <td><a data-testid="project-link" href=${paths.project(p.entity, p.name)}>${p.entity}/${p.name}</a></td>
                  <td class="r">${p.runCount}</td>
                  <td title=${fmtDate(p.lastRunAt)}>${fmtAgo(p.lastRunAt)}</td>
                  <td title=${fmtDate(p.createdAt)}>${fmtAgo(p.createdAt)}</td>
                </tr>`)}
            </tbody>
          </table>`}
    </div>`;
}
