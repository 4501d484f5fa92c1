// Client-side routing: history.pushState navigation, link interception and route matching.
import { store, useStore } from './store.js';

const here = () => ({ path: location.pathname, search: location.search });
export const locationStore = store(here());

export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', to);
  locationStore.set(here());
}

export function useLocation() {
  return useStore(locationStore);
}

export function queryParam(search, name) {
  return new URLSearchParams(search).get(name);
}

// Plain <a href="/..."> links navigate inside the app (unless opened in a new tab or a download).
export function interceptLinks() {
  addEventListener('popstate', () => locationStore.set(here()));
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const href = a.getAttribute('href');
    if (!href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/')) return;
    e.preventDefault();
    navigate(href);
  });
}

const enc = encodeURIComponent;
export const paths = {
  project: (e, p) => `/${enc(e)}/${enc(p)}`,
  workspace: (e, p) => `/${enc(e)}/${enc(p)}/workspace`,
  run: (e, p, r, tab) => `/${enc(e)}/${enc(p)}/runs/${enc(r)}${tab ? '/' + tab : ''}`,
  compare: (e, p, runs) => `/${enc(e)}/${enc(p)}/compare?runs=${runs.map(enc).join(',')}`,
  artifacts: (e, p) => `/${enc(e)}/${enc(p)}/artifacts`,
  artifact: (e, p, type, name, version) => `/${enc(e)}/${enc(p)}/artifacts/${enc(type)}/${enc(name)}/${enc(version)}`,
};

// The page a path shows: {page, entity, project, ...}.
export function match(path) {
  const s = path.split('/').filter(Boolean).map((x) => {
    try { return decodeURIComponent(x); } catch { return x; }
  });
  if (s.length === 1 && s[0] === 'login') return { page: 'login' };
  if (s.length === 0) return { page: 'projects' };
  if (s.length < 2) return { page: 'notfound' };
  const [entity, project] = s;
  const base = { entity, project };
  if (s.length === 2) return { ...base, page: 'runs' };
  if (s[2] === 'workspace' && s.length === 3) return { ...base, page: 'workspace' };
  if (s[2] === 'table' && s.length === 3) return { ...base, page: 'runs' };
  if (s[2] === 'runs' && (s.length === 4 || s.length === 5)) return { ...base, page: 'run', run: s[3], tab: s[4] || 'charts' };
  if (s[2] === 'compare' && s.length === 3) return { ...base, page: 'compare' };
  if (s[2] === 'artifacts' && s.length === 3) return { ...base, page: 'artifacts' };
  if (s[2] === 'artifacts' && s.length === 6) return { ...base, page: 'artifacts', type: s[3], name: s[4], version: s[5] };
  return { page: 'notfound' };
}
