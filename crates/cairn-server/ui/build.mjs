// Bundles the UI into dist/: app.js (src/main.js and its imports), app.css (uPlot's CSS and
// src/app.css) and index.html. Deterministic: the same sources give byte-identical files.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  write: false,
};

const js = await build({
  ...common,
  entryPoints: ['src/main.js'],
  format: 'iife',
  target: 'es2020',
  platform: 'browser',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const css = await build({
  ...common,
  stdin: {
    contents: '@import "./node_modules/uplot/dist/uPlot.min.css";\n@import "./src/app.css";\n',
    resolveDir: root,
    loader: 'css',
    sourcefile: 'app.css',
  },
  target: 'chrome90',
  loader: { '.css': 'css' },
});

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cairn</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<div id="app"></div>
<script src="/assets/app.js"></script>
</body>
</html>
`;

// A file is written only when its bytes change: the server embeds dist/ (include_bytes!),
// and a rewrite with the same bytes would still make cargo rebuild the server and the
// binary (`npm run check` in scripts/test runs after the one build every step reuses).
const out = (name, text) => {
  const path = join(dist, name);
  const same = existsSync(path) && readFileSync(path, 'utf8') === text;
  if (!same) writeFileSync(path, text);
  console.log(`dist/${name} ${Buffer.byteLength(text)} bytes${same ? ' (unchanged)' : ''}`);
};
out('app.js', js.outputFiles[0].text);
out('app.css', css.outputFiles[0].text);
out('index.html', html);
