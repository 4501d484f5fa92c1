// The sign-in page: user name and password, or an API key.
import { html, useState } from './html.js';
import { login } from './api.js';
import { navigate, queryParam, useLocation } from './router.js';

export function LoginPage() {
  const loc = useLocation();
  const [mode, setMode] = useState('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    const useKey = apiKey.trim() !== '' && (mode === 'apikey' || (!username && !password));
    if (!useKey && (!username || !password)) {
      setError(mode === 'apikey' ? 'Enter an API key.' : 'Enter your user name and password.');
      return;
    }
    setBusy(true);
    try {
      await login(useKey ? { apiKey: apiKey.trim() } : { username, password });
      const next = queryParam(loc.search, 'next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    } catch (err) {
      setError(err.status === 401 || err.status === 403 ? (useKey ? 'That API key is not valid.' : 'Wrong user name or password.') : err.message);
    } finally {
      setBusy(false);
    }
  };

  // Both ways of signing in stay in the page (the tab only says which one is meant), so either
  // field can be filled directly.
  return html`
    <div class="login">
      <form class="login-card" data-testid="login-form" onSubmit=${submit}>
        <div class="brand big">cairn</div>
        <p class="muted">Sign in to see your projects and runs.</p>
        <div class="seg" role="tablist">
          <button type="button" role="tab" aria-selected=${mode === 'password'} class=${mode === 'password' ? 'on' : ''} onClick=${() => setMode('password')}>Password</button>
          <button type="button" role="tab" aria-selected=${mode === 'apikey'} class=${mode === 'apikey' ? 'on' : ''} onClick=${() => setMode('apikey')}>API key</button>
        </div>
        <div class=${'login-part' + (mode === 'password' ? '' : ' dim')}>
          <label>User name<input data-testid="login-username" name="username" autocomplete="username" value=${username}
            onInput=${(e) => { setUsername(e.target.value); setMode('password'); }} /></label>
          <label>Password<input data-testid="login-password" name="password" type="password" autocomplete="current-password" value=${password}
            onInput=${(e) => { setPassword(e.target.value); setMode('password'); }} /></label>
        </div>
        <div class=${'login-part' + (mode === 'apikey' ? '' : ' dim')}>
          <label>Key<input data-testid="login-apikey" name="apikey" type="password" autocomplete="off" placeholder="the key from wandb login" value=${apiKey}
            onInput=${(e) => { setApiKey(e.target.value); setMode('apikey'); }} /></label>
        </div>
        ${error && html`<div class="error" data-testid="login-error">${error}</div>`}
        <button class="btn primary wide" type="submit" data-testid="login-submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </div>`;
}
