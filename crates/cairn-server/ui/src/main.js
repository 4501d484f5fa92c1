// The app: checks the session, routes to the pages, and draws the header (breadcrumbs, user).
import { html, render, useEffect } from './html.js';
import { loadSession, logout, session } from './api.js';
import { useStore } from './store.js';
import { interceptLinks, match, navigate, paths, queryParam, useLocation } from './router.js';
import { crumbs } from './crumbs.js';
import { LoginPage } from './login.js';
import { ProjectsPage } from './projects.js';
import { RunsPage } from './runs.js';
import { RunPage } from './run.js';
import { ComparePage, WorkspacePage } from './compare.js';
import { ArtifactsPage } from './artifacts.js';

function Header({ route, user }) {
  const c = useStore(crumbs);
  const parts = [];
  if (route.entity) {
    parts.push(html`<span class="crumb">${route.entity}</span>`);
    parts.push(html`<a class="crumb" href=${paths.project(route.entity, route.project)}>${route.project}</a>`);
    if (route.page === 'run') parts.push(html`<a class="crumb" href=${paths.run(route.entity, route.project, route.run)}>${c.run === route.run ? c.runLabel : route.run}</a>`);
    if (route.page === 'compare') parts.push(html`<span class="crumb">compare</span>`);
    if (route.page === 'artifacts') parts.push(html`<a class="crumb" href=${paths.artifacts(route.entity, route.project)}>artifacts</a>`);
    if (route.page === 'artifacts' && route.name) parts.push(html`<span class="crumb">${route.name}:${route.version}</span>`);
  }
  return html`
    <header class="top">
      <a class="brand" href="/">cairn</a>
      <nav class="crumbs">
        <a class="crumb" href="/">Projects</a>
        ${parts.map((p) => html`<span class="sep">/</span>${p}`)}
      </nav>
      <span class="spacer"></span>
      <span class="user" data-testid="nav-user" title=${user.admin ? 'admin' : ''}>${user.name}</span>
      <button class="btn" data-testid="logout" onClick=${logout}>Sign out</button>
    </header>`;
}

function Page({ route }) {
  switch (route.page) {
    case 'projects': return html`<${ProjectsPage} />`;
    case 'runs': return html`<${RunsPage} key=${route.entity + '/' + route.project} ...${route} />`;
    case 'workspace': return html`<${WorkspacePage} ...${route} />`;
    case 'run': return html`<${RunPage} ...${route} />`;
    case 'compare': return html`<${ComparePage} ...${route} />`;
    case 'artifacts': return html`<${ArtifactsPage} ...${route} />`;
    default: return html`<div class="page"><div class="empty">Nothing here. <a href="/">Go to your projects</a>.</div></div>`;
  }
}

function App() {
  const loc = useLocation();
  const s = useStore(session);
  const route = match(loc.path);

  useEffect(() => {
    const titles = { projects: 'Projects', login: 'Sign in' };
    if (route.page !== 'run') document.title = `${titles[route.page] || route.project || ''} · cairn`;
  }, [loc.path]);
  useEffect(() => {
    if (s && route.page === 'login') {
      const next = queryParam(loc.search, 'next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    }
    if (s === null && route.page !== 'login') {
      const next = loc.path + loc.search;
      navigate(next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`, { replace: true });
    }
  }, [s, route.page]);

  if (s === undefined) return null;
  if (route.page === 'login') return html`<${LoginPage} />`;
  if (!s) return null;
  return html`
    <div class="app">
      <${Header} route=${route} user=${s.user} />
      <main><${Page} route=${route} /></main>
    </div>`;
}

interceptLinks();
loadSession().catch(() => session.set(null)).finally(() => render(html`<${App} />`, document.getElementById('app')));
