#!/usr/bin/env node
// Browser-side benchmark of cairn's web UI: headless Chromium (playwright-core, the UI's
// devDependency; the launch flags of tests/ui/e2e.mjs) opens the two heavy pages of the data
// bench/ui.py seeded and times them until they show their data:
//
//   1M-step chart     /{entity}/bench-long/runs/long1m (the Charts tab), until the chart of
//                     `m` has data-points > 0; checks data-max == 1000 (the spike survived the
//                     server's per-pixel reduction) and reports data-points.
//   10,000-run table  /{entity}/bench-many, until runs-count reads "<runs> runs" and a
//                     run-row exists; reports how many run-row elements are in the DOM (the
//                     table is virtualised: far fewer than the runs) and checks that.
//
//   node bench/ui-browser.mjs --base URL --key API_KEY [--chromium /usr/bin/chromium]
//        [--repeat 5] [--entity admin] [--steps 1000000] [--runs 10000] [--timeout 300]
//        [--playwright PATH/index.mjs]
//
// One browser context for the whole run, signed in once with POST /api/login {"apiKey"} (the
// session cookie is the context's); every repetition opens a fresh page. The first
// repetition of a measure is reported apart ("first"): for the chart, right after a server
// start, it is the cold one (the server reads every history line into columns); "median"
// and "max" are over the other repetitions. Two clocks per repetition:
//   - seconds: wall time in this process from page.goto() until the page shows the data
//     (watched on every animation frame);
//   - nav→shown ms: the page's own clock, performance.now() (relative to
//     performance.timeOrigin, the navigation's start) when a MutationObserver installed
//     before any page script first saw the condition hold.
// One line per measure; exit 1 when a check fails (or a page never shows its data), 2 on
// bad arguments.

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

function usage(msg) {
  console.error(`ui-browser.mjs: ${msg}\nusage: node bench/ui-browser.mjs --base URL --key API_KEY ` +
    '[--chromium PATH] [--repeat N] [--entity E] [--steps N] [--runs N] [--timeout SECONDS] [--playwright PATH]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    base: null, key: null, chromium: '/usr/bin/chromium', repeat: 5, entity: 'admin',
    steps: 1_000_000, runs: 10_000, timeout: 300,
    playwright: path.join(REPO, 'crates/cairn-server/ui/node_modules/playwright-core/index.mjs'),
  };
  const ints = new Set(['repeat', 'steps', 'runs', 'timeout']);
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i], v;
    if (a === '-h' || a === '--help') usage('help');
    if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
    a = a.slice(2);
    const eq = a.indexOf('=');
    if (eq >= 0) { v = a.slice(eq + 1); a = a.slice(0, eq); } else v = argv[++i];
    if (!(a in o)) usage(`unknown option --${a}`);
    if (v === undefined) usage(`--${a} needs a value`);
    if (ints.has(a)) {
      if (!/^\d+$/.test(v) || Number(v) < 1) usage(`--${a} wants a positive integer, not ${v}`);
      o[a] = Number(v);
    } else o[a] = v;
  }
  if (!o.base) usage('--base is required');
  if (!o.key) usage('--key is required');
  o.base = o.base.replace(/\/$/, '');
  return o;
}

const opt = parseArgs(process.argv.slice(2));

// Installed in every page before its scripts, with the probe's source (a function of
// `document` returning a result object, or null while the page is not there yet): watches the
// DOM and notes, on the page's clock, when the probe first holds.
function installWatcher(probeSrc) {
  const w = (window.__bench = { at: null, result: null, frame: null });
  const probe = new Function('document', `return (${probeSrc})(document);`);
  const check = () => {
    if (w.at !== null) return;
    let r = null;
    try { r = probe(document); } catch { r = null; }
    if (r) {
      w.at = performance.now();
      w.result = r;
      // The frame after: when what the DOM now says is on screen.
      requestAnimationFrame(() => { w.frame = performance.now(); });
    }
  };
  const start = () => {
    new MutationObserver(check).observe(document.documentElement, {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
    check();
  };
  if (document.documentElement) start();
  else document.addEventListener('readystatechange', start, { once: true });
}

// The probes (run in the page, so self-contained).
const chartProbe = (d) => {
  const el = d.querySelector('[data-testid="chart"][data-metric="m"]');
  const pts = el && Number(el.getAttribute('data-points'));
  return pts > 0 ? { points: pts, max: el.getAttribute('data-max'), last: el.getAttribute('data-last') } : null;
};
const tableProbe = (d) => {
  const c = d.querySelector('[data-testid="runs-count"]');
  const rows = d.querySelectorAll('[data-testid="run-row"]').length;
  const text = c ? c.textContent.trim() : '';
  const m = /^([\d,]+)\s+runs?\b/.exec(text);
  return m && Number(m[1].replace(/,/g, '')) === __RUNS__ && rows > 0 ? { text, rows } : null;
};

// 1000000 → "1M", 100000 → "100k", 1234 → "1234".
const short = (n) => (n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n % 1000 === 0 ? `${n / 1000}k` : String(n));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function main() {
  const { chromium } = await import(pathToFileURL(opt.playwright).href);
  const browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  let failed = false;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const timeoutMs = opt.timeout * 1000;
    context.setDefaultTimeout(timeoutMs);
    const r = await context.request.post(`${opt.base}/api/login`, { data: { apiKey: opt.key } });
    if (r.status() !== 200) {
      console.error(`POST /api/login with the API key: HTTP ${r.status()} ${await r.text()}`);
      return 1;
    }

    // One repetition: a fresh page, navigate, wait for the probe; {secs, navMs, frameMs, result}.
    const once = async (url, probeSrc, what) => {
      const page = await context.newPage();
      const problems = [];
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console.error: ${m.text()}`); });
      page.on('response', (res) => {
        if (res.status() >= 400) problems.push(`HTTP ${res.status()} ${res.request().method()} ${res.url()}`);
      });
      await page.addInitScript(installWatcher, probeSrc);
      try {
        const t0 = performance.now();
        const resp = await page.goto(url, { waitUntil: 'commit' });
        if (!resp || resp.status() !== 200) throw new Error(`GET ${url}: HTTP ${resp && resp.status()}`);
        await page.waitForFunction(() => window.__bench && window.__bench.at !== null,
          null, { polling: 'raf', timeout: timeoutMs });
        const secs = (performance.now() - t0) / 1000;
        await page.waitForFunction(() => window.__bench.frame !== null, null, { polling: 'raf', timeout: 10_000 }).catch(() => {});
        const b = await page.evaluate(() => ({ at: window.__bench.at, frame: window.__bench.frame, result: window.__bench.result }));
        return { secs, navMs: b.at, frameMs: b.frame, result: b.result, problems };
      } catch (e) {
        const seen = await page.evaluate(() => {
          const c = document.querySelector('[data-testid="chart"][data-metric="m"]');
          const n = document.querySelector('[data-testid="runs-count"]');
          const err = document.querySelector('.error');
          return JSON.stringify({
            url: location.href,
            chart: c && Object.fromEntries([...c.attributes].filter((a) => a.name.startsWith('data-')).map((a) => [a.name, a.value])),
            runsCount: n && n.textContent,
            runRows: document.querySelectorAll('[data-testid="run-row"]').length,
            error: err && err.textContent,
          });
        }).catch(() => '?');
        throw new Error(`${what}: ${e.message.split('\n')[0]}; seen ${seen}${problems.length ? '; ' + problems.slice(-5).join('; ') : ''}`);
      } finally {
        await page.close().catch(() => {});
      }
    };

    const measure = async (name, url, probeSrc, checkOne) => {
      const reps = [];
      const checks = [];
      try {
        for (let i = 0; i < opt.repeat; i++) {
          const rep = await once(url, probeSrc, `${name}, repetition ${i + 1}`);
          reps.push(rep);
          for (const c of checkOne(rep, i)) checks.push(c);
          for (const p of rep.problems) checks.push({ ok: false, text: `repetition ${i + 1}: ${p}` });
        }
      } catch (e) {
        checks.push({ ok: false, text: e.message });
      }
      const bad = checks.filter((c) => !c.ok);
      const ok = bad.length === 0 && reps.length === opt.repeat;
      const first = reps[0];
      const warm = reps.slice(1).length ? reps.slice(1) : reps;
      const f = (x) => (x === undefined ? '    -' : x.toFixed(3));
      const ms = (x) => (x === undefined || x === null ? '-' : String(Math.round(x)));
      const summary = reps.length ? reps[reps.length - 1].result : null;
      let line = `${name.padEnd(18)} first ${f(first && first.secs)} s  median ${f(reps.length ? median(warm.map((r) => r.secs)) : undefined)} s` +
        `  max ${f(reps.length ? Math.max(...warm.map((r) => r.secs)) : undefined)} s` +
        `  | nav→shown first ${ms(first && first.navMs)} ms, median ${ms(reps.length ? median(warm.map((r) => r.navMs)) : undefined)} ms` +
        ` (next frame ${ms(first && first.frameMs)}/${ms(reps.length ? median(warm.filter((r) => r.frameMs !== null).map((r) => r.frameMs)) : undefined)} ms)`;
      line += `  | ${checkSummary(name, reps, summary)}  ${ok ? 'ok' : 'FAIL'}`;
      console.log(line);
      for (const c of bad) console.log(`  FAIL ${name}: ${c.text}`);
      if (!ok) failed = true;
    };

    const checkSummary = (name, reps, s) => {
      if (!s) return 'no repetition finished';
      if (name.endsWith('chart')) {
        const pts = reps.map((r) => r.result.points);
        return `data-points ${Math.min(...pts)}${Math.max(...pts) !== Math.min(...pts) ? '–' + Math.max(...pts) : ''}` +
          ` of ${opt.steps} steps, data-max ${s.max}`;
      }
      const rows = reps.map((r) => r.result.rows);
      return `"${s.text}", ${Math.min(...rows)}${Math.max(...rows) !== Math.min(...rows) ? '–' + Math.max(...rows) : ''} run-row elements`;
    };

    const e = encodeURIComponent(opt.entity);
    await measure(`${short(opt.steps)}-step chart`, `${opt.base}/${e}/bench-long/runs/long1m`, chartProbe.toString(), (rep, i) => {
      const { points, max } = rep.result;
      return [
        { ok: Number(max) === 1000, text: `repetition ${i + 1}: data-max is ${JSON.stringify(max)}, not 1000 (the spike)` },
        { ok: points > 0 && points <= opt.steps, text: `repetition ${i + 1}: data-points ${points} not in 1..${opt.steps}` },
      ];
    });
    await measure(`${opt.runs.toLocaleString('en-US')}-run table`, `${opt.base}/${e}/bench-many`,
      tableProbe.toString().replace('__RUNS__', String(opt.runs)), (rep, i) => {
        const { rows } = rep.result;
        // Virtualised: the rows in view plus a margin, never one element per run.
        const limit = Math.min(opt.runs, 200);
        return [{ ok: rows > 0 && (rows < limit || opt.runs <= 50), text: `repetition ${i + 1}: ${rows} run-row elements for ${opt.runs} runs (not virtualised?)` }];
      });
    await context.close();
  } finally {
    await browser.close();
  }
  return failed ? 1 : 0;
}

process.exitCode = await main().catch((e) => {
  console.error(`ui-browser.mjs: ${e.stack || e}`);
  return 1;
});
