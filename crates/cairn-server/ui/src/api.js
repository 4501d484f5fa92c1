// The JSON API client: same-origin cookies, X-CSRF-Token on writes, 401 → the sign-in page.
import { store } from './store.js';
import { navigate } from './router.js';

// {user:{name,admin}, csrf} once signed in, null when not, undefined before /api/me answered.
export const session = store(undefined);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function toLogin() {
  session.set(null);
  if (location.pathname !== '/login') {
    const next = location.pathname + location.search;
    navigate(next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`, { replace: true });
  }
}

export async function api(path, { method = 'GET', body, signal, noRedirect = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') {
    const s = session.get();
    if (s && s.csrf) headers['X-CSRF-Token'] = s.csrf;
  }
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401 && !noRedirect) {
    toLogin();
    throw new ApiError(401, 'not signed in');
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

export async function loadSession() {
  try {
    session.set(await api('/api/me', { noRedirect: true }));
  } catch (e) {
    if (e.status === 401) session.set(null);
    else throw e;
  }
  return session.get();
}

export async function login(body) {
  const s = await api('/api/login', { method: 'POST', body, noRedirect: true });
  session.set(s);
  return s;
}

export async function logout() {
  try { await api('/api/logout', { method: 'POST', body: {}, noRedirect: true }); } catch { /* gone anyway */ }
  session.set(null);
  navigate('/login');
}

const enc = encodeURIComponent;
export const runBase = (e, p, r) => `/api/projects/${enc(e)}/${enc(p)}/runs/${enc(r)}`;
export const projectBase = (e, p) => `/api/projects/${enc(e)}/${enc(p)}`;

// GET that is ignored when a newer call of the same slot started meanwhile (polling, typing).
export function latest() {
  let seq = 0;
  return async (path) => {
    const mine = ++seq;
    const data = await api(path);
    if (mine !== seq) throw new ApiError(0, 'superseded');
    return data;
  };
}
