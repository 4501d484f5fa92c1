// State shared by a project's pages: the runs list cache, the runs picked for comparison,
// and the tab bar (Runs, Workspace, Artifacts).
import { html } from './html.js';
import { store } from './store.js';
import { paths } from './router.js';

const selections = new Map();

// The run ids ticked in the runs table (kept for the browser tab's life).
export function selection(entity, project) {
  const k = `${entity}/${project}`;
  if (!selections.has(k)) {
    let init = [];
    try { init = JSON.parse(sessionStorage.getItem('cairn.sel.' + k) || '[]'); } catch { /* none */ }
    const s = store(init);
    s.subscribe((v) => { try { sessionStorage.setItem('cairn.sel.' + k, JSON.stringify(v)); } catch { /* full */ } });
    selections.set(k, s);
  }
  return selections.get(k);
}

// The last runs list fetched per project and the order the table showed it in.
export const runsCache = new Map();

export function ProjectTabs({ entity, project, active }) {
  const tab = (id, href, label) => html`<a class=${'tab' + (active === id ? ' active' : '')} href=${href}>${label}</a>`;
  return html`
    <nav class="tabs">
      ${tab('runs', paths.project(entity, project), 'Runs')}
      ${tab('workspace', paths.workspace(entity, project), 'Workspace')}
      ${tab('artifacts', paths.artifacts(entity, project), 'Artifacts')}
    </nav>`;
}
