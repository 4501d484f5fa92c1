#!/usr/bin/env node
// cairn's web UI in a real browser: Chromium driven by playwright-core (the UI's
// devDependency), against a server the pytest suite in this folder started and seeded.
//
//   node tests/ui/e2e.mjs --config CONFIG.json SCENARIO [SCENARIO...]
//   E2E_CONFIG=CONFIG.json node tests/ui/e2e.mjs SCENARIO [SCENARIO...]
//   node tests/ui/e2e.mjs --list
//
// CONFIG.json (written by conftest.py): baseUrl, chromium (binary), playwright (path of
// playwright-core's index.mjs), screenshots (folder), user, password, passwordError (why
// the password could not be set, or null), apiKey, and `expect`: the seeded data
// (seed.py's Seeded.expectations()).
//
// Every check goes through the `data-testid` contract of crates/cairn-server/ui/README.md.
// Each scenario gets a fresh browser context; every page it visits is saved as a full-page
// screenshot `<scenario>-<n>-<what>.png` in the screenshots folder (and `…-FAILED.png` where
// it failed). A failure prints `FAIL <scenario>: <step>: <what was expected and seen>`,
// the page's errors and failed requests, and exits 1.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const SCENARIOS = {};
const scenario = (name, fn) => { SCENARIOS[name] = fn; };

// -------------------------------------------------------------------------------------
// Small helpers

const DEFAULT_TIMEOUT = 20_000;

class Failure extends Error {}

// A number shown as text ("1,000", " 0.049 ", "1e3"); NaN when it is not one.
function num(text) {
  if (text === null || text === undefined) return NaN;
  const t = String(text).trim().replace(/,/g, '').replace(/\u2212/g, '-');
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) return NaN;
  return Number(t);
}

// Equal within `rel` (relative) — tight for data-* attributes, looser for shown values,
// which may be rounded to a few significant digits.
function close(a, b, rel = 1e-9) {
  return Number.isFinite(a) && Math.abs(a - b) <= Math.max(1e-12, rel * Math.abs(b));
}

const DISPLAY_REL = 5e-4;

class Run {
  constructor(name, browser, cfg) {
    this.name = name;
    this.browser = browser;
    this.cfg = cfg;
    this.expect = cfg.expect;
    this.base = cfg.baseUrl.replace(/\/$/, '');
    this.shots = 0;
    this.stepName = 'start';
    this.pageErrors = [];
    this.badResponses = [];
    this.requests = [];
  }

  log(msg) { console.log(`[${this.name}] ${msg}`); }

  step(name) { this.stepName = name; this.log(name); }

  fail(msg) { throw new Failure(msg); }

  async newPage() {
    this.context = await this.browser.newContext({ viewport: { width: 1280, height: 900 } });
    this.context.setDefaultTimeout(DEFAULT_TIMEOUT);
    const page = await this.context.newPage();
    page.on('pageerror', (e) => this.pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') this.pageErrors.push(`console.error: ${m.text()}`); });
    page.on('request', (r) => this.requests.push(r.url()));
    page.on('response', (r) => {
      if (r.status() >= 400) this.badResponses.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
    this.page = page;
    return page;
  }

  url(p) { return this.base + p; }

  // Signs the context in through the API (the sign-in page itself is the login scenarios').
  async signIn() {
    const r = await this.context.request.post(this.url('/api/login'), { data: { apiKey: this.cfg.apiKey } });
    if (r.status() !== 200) this.fail(`POST /api/login with the API key: HTTP ${r.status()} ${await r.text()}`);
  }

  async goto(p, what) {
    this.step(`open ${p}`);
    const resp = await this.page.goto(this.url(p), { waitUntil: 'domcontentloaded' });
    if (!resp || resp.status() !== 200) this.fail(`GET ${p}: HTTP ${resp && resp.status()}`);
    return resp;
  }

  async shot(what) {
    this.shots += 1;
    const file = path.join(this.cfg.screenshots,
      `${this.name}-${String(this.shots).padStart(2, '0')}-${what.replace(/[^a-z0-9]+/gi, '-')}.png`);
    try {
      await this.page.screenshot({ path: file, fullPage: true, timeout: 15_000 });
    } catch (e) {
      this.log(`screenshot ${file} failed: ${e.message.split('\n')[0]}`);
    }
    return file;
  }

  tid(id) { return `[data-testid="${id}"]`; }

  loc(sel) { return this.page.locator(sel); }

  // Waits until `sel` is visible.
  async visible(sel, what, timeout = DEFAULT_TIMEOUT) {
    try {
      await this.loc(sel).first().waitFor({ state: 'visible', timeout });
    } catch (e) {
      const n = await this.loc(sel).count().catch(() => 0);
      this.fail(`${what}: no visible ${sel} within ${timeout} ms (${n} in the DOM; page ${this.page.url()})`);
    }
    return this.loc(sel).first();
  }

  // Polls `probe` (async, returns {ok, seen}) until ok; fails with the last `seen`.
  async until(what, probe, timeout = DEFAULT_TIMEOUT, every = 200) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        last = await probe();
      } catch (e) {
        last = { ok: false, seen: `error: ${e.message.split('\n')[0]}` };
      }
      if (last.ok) return last;
      if (Date.now() > deadline) this.fail(`${what}: not so within ${timeout} ms; seen: ${last.seen}`);
      await new Promise((r) => setTimeout(r, every));
    }
  }

  async text(sel) { return (await this.loc(sel).first().innerText()).trim(); }

  async attr(sel, name) { return this.loc(sel).first().getAttribute(name); }

  async count(sel) { return this.loc(sel).count(); }

  // Every `attr` value of the elements matching `sel`.
  async attrs(sel, name) {
    return this.loc(sel).evaluateAll((els, a) => els.map((e) => e.getAttribute(a)), name);
  }

  // `chart` of metric `m` (scrolled into view: charts may draw only when seen).
  chartSel(metric, within = '') {
    return `${within ? within + ' ' : ''}${this.tid('chart')}[data-metric="${metric}"]`;
  }

  async chartAttr(metric, attr, expected, what, timeout = DEFAULT_TIMEOUT) {
    const sel = this.chartSel(metric);
    const el = await this.visible(sel, `${what}: the chart of ${metric}`);
    await el.scrollIntoViewIfNeeded().catch(() => {});
    return this.until(`${what}: ${attr} of the ${metric} chart should be ${expected}`, async () => {
      const v = await this.attr(sel, attr);
      return { ok: close(num(v), expected), seen: JSON.stringify(v), value: v };
    }, timeout);
  }

  // runs-count as a number.
  async runsCount(expected, what, timeout = DEFAULT_TIMEOUT) {
    const sel = this.tid('runs-count');
    await this.visible(sel, what);
    return this.until(`${what}: runs-count should read "${expected} runs"`, async () => {
      const t = await this.text(sel);
      const m = /^([\d,]+)\s+runs?\b/.exec(t);
      return { ok: !!m && num(m[1]) === expected, seen: JSON.stringify(t) };
    }, timeout);
  }
}

// -------------------------------------------------------------------------------------
// Scenarios

async function loginPage(t) {
  await t.goto('/login');
  await t.visible(t.tid('login-form'), 'the sign-in page');
}

async function submitLogin(t) {
  await t.loc(t.tid('login-submit')).first().click();
}

async function expectSignedIn(t, what) {
  const nav = await t.visible(t.tid('nav-user'), `${what}: the header's user`);
  await t.until(`${what}: nav-user should name ${t.cfg.user}`, async () => {
    const txt = await nav.innerText();
    return { ok: txt.includes(t.cfg.user), seen: JSON.stringify(txt) };
  });
  await t.until(`${what}: the page should leave /login`, async () => ({
    ok: !new URL(t.page.url()).pathname.startsWith('/login'), seen: t.page.url(),
  }));
}

async function fillCredentials(t, username, password) {
  await (await t.visible(t.tid('login-username'), 'the user name field')).fill(username);
  await (await t.visible(t.tid('login-password'), 'the password field')).fill(password);
}

scenario('login-password', async (t) => {
  await t.newPage();
  t.step('an unauthenticated visit of / lands on the sign-in page');
  await t.goto('/');
  await t.visible(t.tid('login-form'), 'GET / while signed out');
  await t.until('signed out, / should route to /login', async () => ({
    ok: new URL(t.page.url()).pathname === '/login', seen: t.page.url(),
  }));
  await t.shot('signed-out');
  if (t.cfg.passwordError) t.fail(`the admin password could not be set: ${t.cfg.passwordError}`);

  t.step('a wrong password shows login-error');
  await fillCredentials(t, t.cfg.user, 'not the password');
  await submitLogin(t);
  await t.visible(t.tid('login-error'), 'after a wrong password');
  if ((await t.text(t.tid('login-error'))) === '') t.fail('login-error is empty');
  if (await t.count(t.tid('nav-user'))) t.fail('a wrong password signed in (nav-user shown)');
  await t.shot('wrong-password');

  t.step('the right password signs in');
  await fillCredentials(t, t.cfg.user, t.cfg.password);
  await submitLogin(t);
  await expectSignedIn(t, 'after signing in with the password');
  await t.shot('signed-in');
  const cookie = (await t.context.cookies()).find((c) => c.name === 'cairn_session');
  if (!cookie) t.fail('no cairn_session cookie after signing in');
  if (!cookie.httpOnly) t.fail('the cairn_session cookie is not HttpOnly');
  if (cookie.sameSite !== 'Strict') t.fail(`the cairn_session cookie is SameSite=${cookie.sameSite}, not Strict`);

  t.step('the session survives a reload');
  await t.page.reload({ waitUntil: 'domcontentloaded' });
  await expectSignedIn(t, 'after a reload');

  t.step('logout signs out');
  await (await t.visible(t.tid('logout'), 'the logout control')).click();
  await t.visible(t.tid('login-form'), 'after logout');
  await t.shot('logged-out');
  const me = await t.context.request.get(t.url('/api/me'));
  if (me.status() !== 401) t.fail(`GET /api/me after logout: HTTP ${me.status()}, expected 401`);
});

scenario('login-apikey', async (t) => {
  await t.newPage();
  await loginPage(t);
  t.step('an unknown API key shows login-error');
  const key = await t.visible(t.tid('login-apikey'), 'the API key field');
  await key.fill('local-' + '0'.repeat(40));
  await submitLogin(t);
  await t.visible(t.tid('login-error'), 'after an unknown API key');
  await t.shot('wrong-key');
  t.step('the admin API key signs in');
  await (await t.visible(t.tid('login-apikey'), 'the API key field')).fill(t.cfg.apiKey);
  await submitLogin(t);
  await expectSignedIn(t, 'after signing in with the API key');
  await t.shot('signed-in');
});

scenario('projects', async (t) => {
  await t.newPage();
  await t.signIn();
  await t.goto('/');
  const e = t.expect;
  const want = e.projects.map((p) => `${e.entity}/${p}`);
  await t.until('the projects page should list every seeded project', async () => {
    const texts = await t.loc(t.tid('project-link')).allInnerTexts();
    const shown = texts.map((s) => s.trim());
    return { ok: want.every((w) => shown.includes(w)), seen: JSON.stringify(shown) };
  });
  await t.shot('projects');
  t.step('a project link opens its runs table');
  await t.loc(t.tid('project-link')).filter({ hasText: new RegExp(`^\\s*${e.entity}/${e.demo.project}\\s*$`) }).first().click();
  await t.until('the link should lead to the project', async () => ({
    ok: new URL(t.page.url()).pathname === `/${e.entity}/${e.demo.project}`, seen: t.page.url(),
  }));
  await t.visible(t.tid('runs-table'), 'the project page');
  await t.runsCount(e.demo.runs.length, 'the project page');
  await t.shot('project');
});

scenario('runs-table', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  await t.goto(`/${e.entity}/${e.demo.project}`);
  await t.visible(t.tid('runs-table'), 'the small project');
  await t.runsCount(e.demo.runs.length, 'the small project');
  await t.until('every run of the small project should have a run-row', async () => {
    const runs = (await t.attrs(t.tid('run-row'), 'data-run')).sort();
    return { ok: JSON.stringify(runs) === JSON.stringify([...e.demo.runs].sort()), seen: JSON.stringify(runs) };
  });
  const mainRow = `${t.tid('run-row')}[data-run="${e.demo.main.id}"]`;
  const rowText = await t.text(mainRow);
  if (!rowText.includes(e.demo.main.name)) t.fail(`the main run's row does not show its name ${e.demo.main.name}: ${JSON.stringify(rowText)}`);
  await t.shot('small-project');

  t.step('10,000 runs: counted, virtualised');
  await t.goto(`/${e.entity}/${e.many.project}`);
  await t.visible(t.tid('runs-table'), 'the 10k project');
  await t.runsCount(e.many.count, 'the 10k project', 60_000);
  await t.visible(t.tid('run-row'), 'the 10k project rows');
  const rendered = await t.count(t.tid('run-row'));
  t.log(`${rendered} run-row elements rendered of ${e.many.count}`);
  if (rendered < 5 || rendered > 300) t.fail(`the 10k table renders ${rendered} run-row elements: expected a virtualised window (5..300)`);
  await t.shot('10k-top');
  const firstWindow = await t.attrs(t.tid('run-row'), 'data-run');
  t.step('scrolling to the end renders other rows, still few');
  await t.loc(t.tid('runs-table')).first().evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await t.page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await t.until('after scrolling the 10k table to the end, the rendered rows should change', async () => {
    const now = await t.attrs(t.tid('run-row'), 'data-run');
    const fresh = now.filter((r) => !firstWindow.includes(r));
    return { ok: fresh.length > 0 && now.length <= 300, seen: `${now.length} rows, ${fresh.length} new: ${now.slice(0, 5)}` };
  });
  await t.shot('10k-bottom');

  t.step(`searching "${e.many.search}" narrows the count`);
  await t.loc(t.tid('runs-table')).first().evaluate((el) => { el.scrollTop = 0; });
  await (await t.visible(t.tid('runs-search'), 'the runs search')).fill(e.many.search);
  await t.runsCount(e.many.searchCount, `after searching ${e.many.search}`);
  await t.until(`after searching, the rows should be the ${e.many.searchCount} matching runs`, async () => {
    const runs = await t.attrs(t.tid('run-row'), 'data-run');
    return { ok: runs.length === e.many.searchCount && runs.every((r) => r.startsWith(e.many.search)), seen: JSON.stringify(runs) };
  });
  await t.shot('10k-search');

  t.step(`a config filter "${e.many.filter}"`);
  await t.loc(t.tid('runs-search')).first().fill(e.many.filter);
  await t.runsCount(e.many.filterCount, `after filtering ${e.many.filter}`);
  await t.shot('10k-filter');

  t.step('?q= pre-fills the search');
  await t.goto(`/${e.entity}/${e.many.project}?q=${encodeURIComponent(e.many.search)}`);
  await t.runsCount(e.many.searchCount, `/${e.many.project}?q=${e.many.search}`, 60_000);
  const q = await t.loc(t.tid('runs-search')).first().inputValue();
  if (q !== e.many.search) t.fail(`?q=${e.many.search} left the search box at ${JSON.stringify(q)}`);
  await t.shot('10k-q');
});

scenario('run-page', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const m = e.demo.main;
  await t.goto(`/${e.entity}/${e.demo.project}/runs/${m.id}`);
  await t.visible(t.tid('run-name'), 'the run page');
  await t.until('run-name should show the run\'s name', async () => {
    const s = await t.text(t.tid('run-name'));
    return { ok: s.includes(m.name), seen: JSON.stringify(s) };
  });
  await t.until('run-state should be finished', async () => {
    const s = await t.text(t.tid('run-state'));
    return { ok: /finished/i.test(s), seen: JSON.stringify(s) };
  });

  t.step('charts (the default tab) are grouped into sections by prefix');
  for (const [prefix, metrics] of Object.entries(m.sections)) {
    const section = `${t.tid('panel-section')}[data-prefix="${prefix}"]`;
    await t.visible(section, `the ${prefix} section`);
    for (const metric of metrics) {
      await t.visible(t.chartSel(metric, section), `the ${metric} chart in section ${prefix}`);
    }
  }
  t.step('spiky: the spike survives the reduction');
  await t.chartAttr('spiky', 'data-max', m.spiky.max, 'spiky');
  await t.chartAttr('spiky', 'data-last', m.spiky.last, 'spiky');
  await t.chartAttr('train/loss', 'data-last', m.summary['train/loss'], 'train/loss');
  await t.chartAttr('val/acc', 'data-last', m.summary['val/acc'], 'val/acc');
  const points = num(await t.attr(t.chartSel('spiky'), 'data-points'));
  if (!(points > 0)) t.fail(`spiky: data-points is ${points}`);
  await t.shot('charts');

  t.step('overview: summary and config');
  await (await t.visible(t.tid('tab-overview'), 'the Overview tab')).click();
  await t.visible(t.tid('run-summary'), 'the Overview tab');
  for (const [key, value] of Object.entries(m.summary)) {
    const row = `${t.tid('summary-row')}[data-key="${key}"]`;
    await t.visible(row, `the summary row of ${key}`);
    await t.until(`summary ${key} should show ${value}`, async () => {
      const s = await t.text(`${row} ${t.tid('summary-value')}`);
      return { ok: close(num(s), value, DISPLAY_REL), seen: JSON.stringify(s) };
    });
  }
  await t.visible(t.tid('run-config'), 'the config table');
  for (const [key, value] of Object.entries(m.config)) {
    const row = `${t.tid('config-row')}[data-key="${key}"]`;
    await t.visible(row, `the config row of ${key}`);
    const s = await t.text(row);
    const ok = typeof value === 'number'
      ? s.split(/\s+/).some((w) => close(num(w), value, DISPLAY_REL))
      : s.includes(String(value));
    if (!ok) t.fail(`config ${key} should show ${value}: ${JSON.stringify(s)}`);
  }
  await t.shot('overview');

  t.step('the System tab charts the system metrics');
  if (!m.system.length) t.fail('the wandb run logged no system metrics (seeding): nothing to check on the System tab');
  await (await t.visible(t.tid('tab-system'), 'the System tab')).click();
  const sys = `${t.tid('panel-section')}[data-prefix="System"]`;
  await t.visible(sys, 'the System tab\'s section');
  await t.until('the System tab should draw system metrics', async () => {
    const metrics = await t.attrs(`${sys} ${t.tid('chart')}`, 'data-metric');
    const drawn = await t.attrs(`${sys} ${t.tid('chart')}`, 'data-points');
    const unknown = metrics.filter((k) => !m.system.includes(k));
    return {
      ok: metrics.length > 0 && unknown.length === 0 && drawn.some((p) => num(p) > 0),
      seen: `charts ${JSON.stringify(metrics.slice(0, 8))} (not system metrics: ${JSON.stringify(unknown)}), points ${JSON.stringify(drawn.slice(0, 8))}`,
    };
  });
  await t.shot('system');

  t.step('the Rust SDK run');
  const r = e.demo.rusty;
  await t.goto(`/${e.entity}/${e.demo.project}/runs/${r.id}`);
  await t.visible(t.tid('run-name'), 'the Rust run page');
  for (const [key, value] of Object.entries(r.summary)) {
    await t.chartAttr(key, 'data-last', value, `rust run ${key}`);
  }
  await t.visible(`${t.tid('panel-section')}[data-prefix="train"] ${t.chartSel('train/m1')}`, 'the Rust run\'s train section');
  await t.shot('rust-run');
});

scenario('chart-controls', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const m = e.demo.main;
  await t.goto(`/${e.entity}/${e.demo.project}/runs/${m.id}`);
  await t.chartAttr('spiky', 'data-max', m.spiky.max, 'spiky');
  const xAxis = await t.visible(t.tid('x-axis'), 'the x-axis select');
  await t.visible(t.tid('smoothing'), 'the smoothing slider');
  await t.visible(t.tid('log-scale'), 'the log-scale checkbox');
  t.step('x-axis _runtime: the spike is still drawn');
  const options = await xAxis.locator('option').evaluateAll((os) => os.map((o) => o.value));
  if (!options.includes('_runtime')) t.fail(`the x-axis select offers ${JSON.stringify(options)}, not _runtime`);
  const before = t.requests.length;
  await xAxis.selectOption('_runtime');
  await t.until('choosing x=_runtime should fetch series with x=_runtime', async () => {
    const asked = t.requests.slice(before).filter((u) => u.includes('/series') && u.includes('x=_runtime'));
    return { ok: asked.length > 0, seen: JSON.stringify(t.requests.slice(before).slice(-3)) };
  });
  await t.chartAttr('spiky', 'data-max', m.spiky.max, 'spiky against _runtime');
  await t.shot('x-runtime');
  t.step('log scale keeps the values');
  await t.loc(t.tid('log-scale')).first().check();
  await t.chartAttr('spiky', 'data-max', m.spiky.max, 'spiky on a log scale');
  await t.shot('log-scale');
});

scenario('million', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const mm = e.stream.million;
  await t.goto(`/${e.entity}/${e.stream.project}/runs/${mm.id}`);
  await t.chartAttr(mm.metric, 'data-max', mm.max, `the ${mm.steps}-step run`, 60_000);
  await t.chartAttr(mm.metric, 'data-last', mm.last, `the ${mm.steps}-step run`);
  const sel = t.chartSel(mm.metric);
  const box = await t.loc(sel).first().boundingBox();
  const points = num(await t.attr(sel, 'data-points'));
  if (!(points > 0)) t.fail(`data-points is ${points}`);
  if (points > 8 * box.width) t.fail(`the chart draws ${points} points for ${Math.round(box.width)} px: not reduced (limit ${Math.round(8 * box.width)})`);
  t.log(`${points} points drawn in ${Math.round(box.width)} px`);
  await t.shot('million');

  t.step('drag-zoom around the spike asks the server for the finer range');
  const over = await t.loc(`${sel} .u-over`).first().boundingBox();
  const at = (f) => over.x + over.width * f;
  const y = over.y + over.height / 2;
  const frac = mm.spike_step / (mm.steps - 1);
  const before = t.requests.length;
  await t.page.mouse.move(at(frac - 0.02), y);
  await t.page.mouse.down();
  await t.page.mouse.move(at(frac + 0.02), y, { steps: 8 });
  await t.page.mouse.up();
  const zoomed = await t.until('the chart is zoomed', async () => {
    const r = await t.attr(sel, 'data-range');
    return { ok: !!r, seen: JSON.stringify(r), value: r };
  });
  const [from, to] = zoomed.value.split(',').map(Number);
  if (!(from < mm.spike_step && mm.spike_step < to && to - from < mm.steps / 10)) {
    t.fail(`zoomed to [${from}, ${to}], which should hold step ${mm.spike_step} and be narrow`);
  }
  await t.until('the zoom fetched series with from/to', async () => {
    const asked = t.requests.slice(before).filter((u) => u.includes('/series') && u.includes('from='));
    return { ok: asked.length > 0, seen: JSON.stringify(t.requests.slice(before).slice(-3)) };
  });
  await t.chartAttr(mm.metric, 'data-max', mm.max, 'the spike in the zoomed range');
  await t.shot('million-zoomed');

  t.step('shift-drag pans the zoomed range');
  await t.page.keyboard.down('Shift');
  await t.page.mouse.move(at(0.6), y);
  await t.page.mouse.down();
  await t.page.mouse.move(at(0.4), y, { steps: 8 });
  await t.page.mouse.up();
  await t.page.keyboard.up('Shift');
  await t.until('the pan moves the range to higher steps by a fifth of its width', async () => {
    const r = await t.attr(sel, 'data-range');
    const [f2, t2] = (r || '').split(',').map(Number);
    const moved = f2 - from, width = to - from;
    return { ok: Math.abs(moved - width * 0.2) < width * 0.05 && Math.abs(t2 - f2 - width) < 1e-6 * width + 1, seen: JSON.stringify(r) };
  });
  await t.shot('million-panned');

  t.step('double-click resets the zoom');
  await t.page.mouse.dblclick(at(0.5), y);
  await t.until('the chart is not zoomed', async () => {
    const r = await t.attr(sel, 'data-zoomed');
    return { ok: r === null, seen: JSON.stringify(r) };
  });
});

scenario('console', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const m = e.demo.main;
  await t.goto(`/${e.entity}/${e.demo.project}/runs/${m.id}`);
  await (await t.visible(t.tid('tab-logs'), 'the Logs tab')).click();
  await t.visible(t.tid('console'), 'the Logs tab');
  await t.until('the console should show the logged lines', async () => {
    const lines = await t.loc(t.tid('console-line')).allInnerTexts();
    const missing = m.console.filter((want) => !lines.some((l) => l.includes(want)));
    return { ok: missing.length === 0, seen: `missing ${JSON.stringify(missing)}; shown ${JSON.stringify(lines.slice(0, 10))}` };
  });
  await t.shot('console');
  t.step(`console-search "${m.consoleSearch.q}"`);
  await (await t.visible(t.tid('console-search'), 'the console search')).fill(m.consoleSearch.q);
  await t.until('the search should leave only the matching line', async () => {
    const lines = await t.loc(t.tid('console-line')).allInnerTexts();
    return { ok: lines.length === 1 && lines[0].includes(m.consoleSearch.expect), seen: JSON.stringify(lines) };
  });
  const api = await (await t.context.request.get(t.url(
    `/api/projects/${e.entity}/${e.demo.project}/runs/${m.id}/console?q=${encodeURIComponent(m.consoleSearch.q)}`))).json();
  const n = await t.attr(t.tid('console-line'), 'data-n');
  if (!api.lines || api.lines.length !== 1 || String(api.lines[0].n) !== n) {
    t.fail(`console-line data-n ${JSON.stringify(n)}; the API's line: ${JSON.stringify(api.lines)}`);
  }
  await t.shot('console-search');
});

scenario('files', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const m = e.demo.main;
  // The tab's own route, opened directly (the console scenario clicks its tab).
  await t.goto(`/${e.entity}/${e.demo.project}/runs/${m.id}/files`);
  await t.visible(t.tid('file-row'), 'the Files tab at /runs/{run}/files');
  await t.until('the Files tab should list the run\'s files', async () => {
    const names = await t.attrs(t.tid('file-row'), 'data-name');
    const missing = m.files.filter((f) => !names.includes(f));
    return { ok: missing.length === 0, seen: `missing ${JSON.stringify(missing)}; listed ${JSON.stringify(names)}` };
  });
  await t.shot('files');
  const f = m.fileToView;
  t.step(`view ${f.name}`);
  const row = t.loc(`${t.tid('file-row')}[data-name="${f.name}"]`).first();
  const link = row.locator('a, button').first();
  await ((await link.count()) ? link : row).click();
  await t.visible(t.tid('file-view'), `after opening ${f.name}`);
  await t.until(`the file view should show ${f.name}`, async () => {
    const s = await t.text(t.tid('file-view'));
    return { ok: f.contains.every((c) => s.includes(c)), seen: JSON.stringify(s.slice(0, 300)) };
  });
  await t.shot('file-view');
});

scenario('compare', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const c = e.demo.compare;
  await t.goto(`/${e.entity}/${e.demo.project}`);
  await t.runsCount(e.demo.runs.length, 'the small project');
  t.step(`select ${c.runs.join(', ')} and compare`);
  for (const run of c.runs) {
    const box = await t.visible(`${t.tid('run-row')}[data-run="${run}"] ${t.tid('compare-select')}`, `the compare checkbox of ${run}`);
    await box.check();
  }
  await (await t.visible(t.tid('compare-button'), 'the compare button')).click();
  await t.until('the compare button should open /compare with both runs', async () => {
    const u = new URL(t.page.url());
    const runs = (u.searchParams.get('runs') || '').split(',').filter(Boolean).sort();
    return {
      ok: u.pathname === `/${e.entity}/${e.demo.project}/compare` && JSON.stringify(runs) === JSON.stringify([...c.runs].sort()),
      seen: t.page.url(),
    };
  });
  await t.visible(t.tid('compare-diff'), 'the compare page');
  const diff = `${t.tid('diff-row')}[data-key="${c.diffKey}"][data-section="${c.diffSection}"]`;
  await t.visible(diff, `the config diff row of ${c.diffKey}`);
  const s = await t.text(diff);
  for (const v of c.values) {
    if (!s.split(/\s+/).some((w) => close(num(w), Number(v), DISPLAY_REL))) t.fail(`diff row ${c.diffKey} should show ${v}: ${JSON.stringify(s)}`);
  }
  t.step('the charts overlay both runs');
  // train/loss peaks in the other run (lossMax); spiky exists only in the main run.
  await t.chartAttr('train/loss', 'data-max', e.demo.other.lossMax, 'compare train/loss (the other run\'s peak)');
  await t.chartAttr('spiky', 'data-max', e.demo.main.spiky.max, 'compare spiky (the main run\'s spike)');
  for (const run of c.runs) {
    if (!t.requests.some((u) => u.includes(`/runs/${run}/series`))) t.fail(`the compare page never asked for the series of ${run}`);
  }
  await t.shot('compare');
});

scenario('artifacts', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const a = e.demo.artifact;
  const shows = async (sel, names, what) => {
    await t.visible(sel, what);
    await t.until(`${what} should name one of ${JSON.stringify(names)}`, async () => {
      const s = (await t.loc(sel).allInnerTexts()).join(' | ');
      return { ok: names.some((n) => s.includes(n)), seen: JSON.stringify(s) };
    });
  };
  await t.goto(`/${e.entity}/${e.demo.project}/artifacts`);
  const coll = await t.visible(`${t.tid('artifact-collection')}[data-name="${a.collection}"]`, 'the artifacts page');
  await t.shot('collections');
  const versionSel = `${t.tid('artifact-version')}[data-version="${a.version}"]`;
  if (!(await t.count(versionSel))) {
    t.step('open the collection');
    await coll.click();
  }
  await t.visible(versionSel, `the versions of ${a.collection}`);
  await t.until(`${a.version} should carry the alias ${a.alias}`, async () => {
    const s = await t.text(versionSel);
    return { ok: s.includes(a.alias), seen: JSON.stringify(s) };
  });
  await t.shot('versions');

  const versionPath = `/${e.entity}/${e.demo.project}/artifacts/${a.type}/${a.collection}/${a.version}`;
  t.step('open the version');
  const versionLink = t.loc(versionSel).first().locator('a').first();
  await ((await versionLink.count()) ? versionLink : t.loc(versionSel).first()).click();
  // Then the same on the version's own route, opened directly.
  for (let pass = 0; pass < 2; pass++) {
    await shows(t.tid('artifact-created-by'), a.createdBy, 'artifact-created-by');
    await shows(t.tid('artifact-used-by'), a.usedBy, 'artifact-used-by');
    await t.until('the version should list its files', async () => {
      const paths = await t.attrs(t.tid('artifact-file'), 'data-path');
      const same = JSON.stringify([...paths].sort()) === JSON.stringify([...a.files].sort());
      return { ok: same, seen: `artifact-file data-path ${JSON.stringify(paths)}, expected ${JSON.stringify(a.files)}` };
    });
    await t.shot(pass ? 'version-page-direct' : 'version-page');
    if (pass === 0) await t.goto(versionPath);
  }

  t.step('the run page\'s Artifacts tab');
  await t.goto(`/${e.entity}/${e.demo.project}/runs/${e.demo.main.id}`);
  await (await t.visible(t.tid('tab-artifacts'), 'the Artifacts tab')).click();
  await t.until(`the Artifacts tab should show ${a.collection}`, async () => {
    const s = await t.page.locator('main, body').first().innerText();
    return { ok: s.includes(`${a.collection}:${a.version}`) || s.includes(a.collection), seen: JSON.stringify(s.slice(0, 300)) };
  });
  await t.shot('run-artifacts');
});

scenario('live', async (t) => {
  await t.newPage();
  await t.signIn();
  const e = t.expect;
  const l = e.stream.live;
  const runApi = t.url(`/api/projects/${e.entity}/${e.stream.project}/runs/${l.id}`);
  const auth = 'Basic ' + Buffer.from(`api:${t.cfg.apiKey}`).toString('base64');
  const stream = async (body) => {
    const r = await fetch(t.url(`/files/${e.entity}/${e.stream.project}/${l.id}/file_stream`), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: auth },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) t.fail(`POST file_stream ${JSON.stringify(body).slice(0, 80)}: HTTP ${r.status} ${await r.text()}`);
  };
  // A heartbeat first: a running run silent for minutes counts as crashed.
  await stream({});
  // Where the run is now (the scenario may run more than once on one server).
  const now = await (await t.context.request.get(`${runApi}/series?keys=${l.metric}&points=10`)).json();
  const lines = now.lines;
  const ys = now.series[l.metric].y;
  const last = ys[ys.length - 1];
  await t.goto(`/${e.entity}/${e.stream.project}/runs/${l.id}`);
  await t.until('run-state should be running', async () => {
    const s = await t.text(t.tid('run-state'));
    return { ok: /running/i.test(s), seen: JSON.stringify(s) };
  });
  await t.chartAttr(l.metric, 'data-last', last, 'the live run before the append');
  await t.shot('before');
  await t.page.evaluate(() => { window.__e2eNoReload = true; });

  const fresh = 4242 + lines;
  t.step(`append 20 lines at offset ${lines} through the filestream (last value ${fresh})`);
  const rows = Array.from({ length: 20 }, (_, i) => {
    const step = lines + i;
    return JSON.stringify({ _step: step, [l.metric]: i === 19 ? fresh : step });
  });
  await stream({ files: { 'wandb-history.jsonl': { offset: lines, content: rows } } });
  await t.chartAttr(l.metric, 'data-last', fresh, 'the live run after the append (no reload)', 45_000);
  if (!(await t.page.evaluate(() => window.__e2eNoReload === true))) t.fail('the page reloaded to show the new lines');
  await t.shot('after');
});

// -------------------------------------------------------------------------------------
// Main

function usage(msg) {
  console.error(`${msg}\nusage: node e2e.mjs --config CONFIG.json SCENARIO... | --list\nscenarios: ${Object.keys(SCENARIOS).join(' ')}`);
  process.exit(2);
}

async function main() {
  if (argv.includes('--list')) {
    console.log(Object.keys(SCENARIOS).join('\n'));
    return 0;
  }
  const i = argv.indexOf('--config');
  const configPath = i >= 0 ? argv[i + 1] : process.env.E2E_CONFIG;
  if (!configPath) usage('--config (or E2E_CONFIG) is required');
  const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  const names = argv.filter((a, j) => i < 0 || (j !== i && j !== i + 1));
  if (!names.length) usage('no scenario given');
  for (const n of names) if (!SCENARIOS[n]) usage(`unknown scenario ${n}`);
  for (const k of ['baseUrl', 'chromium', 'playwright', 'screenshots', 'apiKey', 'expect']) {
    if (!cfg[k]) usage(`the config lacks ${k}`);
  }
  fs.mkdirSync(cfg.screenshots, { recursive: true });
  const { chromium } = await import(pathToFileURL(cfg.playwright).href);
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: !cfg.headful,
    args: [
      ...(cfg.headful ? [] : ['--headless']),
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  let failed = 0;
  try {
    for (const name of names) {
      const t = new Run(name, browser, cfg);
      const t0 = Date.now();
      try {
        await SCENARIOS[name](t);
        t.log(`ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        failed += 1;
        const msg = err instanceof Failure ? err.message : (err.stack || String(err));
        console.log(`FAIL ${name}: ${t.stepName}: ${msg}`);
        if (t.page) {
          console.log(`  page: ${t.page.url()}`);
          console.log(`  screenshot: ${await t.shot('FAILED')}`);
        }
        if (t.pageErrors.length) console.log(`  page errors:\n    ${t.pageErrors.slice(-10).join('\n    ')}`);
        if (t.badResponses.length) console.log(`  HTTP errors:\n    ${t.badResponses.slice(-10).join('\n    ')}`);
      } finally {
        if (t.context) await t.context.close().catch(() => {});
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`screenshots: ${cfg.screenshots}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
