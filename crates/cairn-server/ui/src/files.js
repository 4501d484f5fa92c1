// The Files tab: the run's files with sizes, a text/image viewer (first 1 MB) and download links.
import { html, useEffect, useState } from './html.js';
import { fmtAgo, fmtDate, fmtSize, withQuery } from './format.js';

const LIMIT = 1 << 20;
const IMAGE = /\.(png|jpe?g|gif|webp|svg|bmp)$/i;

async function readHead(url) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  const reader = res.body.getReader();
  const chunks = [];
  let n = 0, more = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
    if (n >= LIMIT) { more = true; reader.cancel().catch(() => {}); break; }
  }
  const buf = new Uint8Array(Math.min(n, LIMIT));
  let off = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, buf.length - off);
    buf.set(c.subarray(0, take), off);
    off += take;
    if (off >= buf.length) break;
  }
  if (n > LIMIT) more = true;
  const binary = buf.subarray(0, 8000).includes(0);
  return { text: binary ? null : new TextDecoder().decode(buf), more, binary };
}

function Viewer({ file, close }) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    let stop = false;
    setState({ loading: true });
    if (IMAGE.test(file.name)) { setState({ image: true }); return; }
    readHead(file.url).then((r) => {
      if (stop) return;
      let text = r.text;
      if (text !== null && !r.more && /\.json$/i.test(file.name)) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* keep as is */ }
      }
      setState({ ...r, text });
    }, (e) => !stop && setState({ error: e.message }));
    return () => { stop = true; };
  }, [file.url]);
  return html`
    <div class="file-view-box">
      <div class="file-view-head">
        <b>${file.name}</b> <span class="muted">${fmtSize(file.size)}</span>
        <span class="spacer"></span>
        <a class="btn" href=${withQuery(file.url, 'download=1')} download=${file.name.split('/').pop()}>Download</a>
        <button class="btn" onClick=${close} title="Close">✕</button>
      </div>
      ${state.loading ? html`<div class="muted pad">Loading…</div>`
        : state.error ? html`<div class="error">${state.error}</div>`
        : state.image ? html`<div class="file-view" data-testid="file-view"><img src=${file.url} alt=${file.name} /></div>`
        : state.binary ? html`<div class="file-view" data-testid="file-view"><span class="muted">Binary file — download it to view.</span></div>`
        : html`
          ${state.more && html`<div class="muted pad">Showing the first 1 MB.</div>`}
          <pre class="file-view" data-testid="file-view">${state.text}</pre>`}
    </div>`;
}

export function Files({ files }) {
  const [open, setOpen] = useState(null);
  const list = [...(files || [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const cur = open && list.find((f) => f.name === open);
  if (!list.length) return html`<div class="empty">No files.</div>`;
  return html`
    <div class="files">
      <table class="grid files-table">
        <thead><tr><th>Name</th><th class="r">Size</th><th>Updated</th><th></th></tr></thead>
        <tbody>
          ${list.map((f) => html`
            <tr data-testid="file-row" data-name=${f.name} class=${'clickable' + (open === f.name ? ' active' : '')}
              onClick=${(e) => { if (e.target.closest('[download]')) return; e.preventDefault(); setOpen(f.name); }}>
              <td><a href=${f.url}>${f.name}</a></td>
              <td class="r">${fmtSize(f.size)}</td>
              <td title=${fmtDate(f.updatedAt)}>${fmtAgo(f.updatedAt)}</td>
              <td class="r"><a href=${withQuery(f.url, 'download=1')} download=${f.name.split('/').pop()}>download</a></td>
            </tr>`)}
        </tbody>
      </table>
      ${cur && html`<${Viewer} file=${cur} key=${cur.url} close=${() => setOpen(null)} />`}
    </div>`;
}
