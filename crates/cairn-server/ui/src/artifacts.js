// The project's artifacts: collections grouped by type, expanding to versions with their
// aliases; a version shows its files (with download links) and its lineage (created by / used by).
import { html, useEffect, useMemo, useState } from './html.js';
import { api, projectBase } from './api.js';
import { paths } from './router.js';
import { fmtAgo, fmtDate, fmtSize } from './format.js';
import { ProjectTabs } from './project.js';

const vnum = (v) => parseInt(String(v.version).replace(/^v/, ''), 10) || 0;

function findVersion(collections, type, name, version) {
  const c = collections.find((c) => c.name === name && (!type || c.type === type));
  if (!c) return null;
  return c.versions.find((v) => v.version === version) || c.versions.find((v) => (v.aliases || []).includes(version)) || null;
}

function VersionDetail({ id, entity, project }) {
  const [a, setA] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setA(null);
    setError(null);
    api(`/api/artifacts/${encodeURIComponent(id)}`).then(setA, (e) => e.status !== 401 && setError(e.message));
  }, [id]);
  if (error) return html`<div class="error">${error}</div>`;
  if (!a) return html`<div class="empty">Loading…</div>`;
  const e = a.entity || entity, p = a.project || project;
  const files = a.files || [];
  return html`
    <div class="artifact-detail">
      <h2>${a.collection}:${a.version} <span class="type">${a.type}</span>
        ${(a.aliases || []).map((al) => html`<span class="alias">${al}</span>`)}</h2>
      <table class="grid info">
        <tbody>
          <tr><th>Created</th><td>${fmtDate(a.createdAt)} <span class="muted">(${fmtAgo(a.createdAt)})</span></td></tr>
          <tr><th>Size</th><td>${fmtSize(a.size)} in ${a.fileCount} ${a.fileCount === 1 ? 'file' : 'files'}</td></tr>
          <tr><th>Digest</th><td><code>${a.digest}</code></td></tr>
          <tr><th>Created by</th><td>${a.createdBy
            ? html`<a data-testid="artifact-created-by" href=${paths.run(e, p, a.createdBy)}>${a.createdBy}</a>`
            : html`<span class="muted">—</span>`}</td></tr>
          <tr><th>Used by</th><td>${(a.usedBy || []).length
            ? a.usedBy.map((r) => html`<a class="used-by" data-testid="artifact-used-by" href=${paths.run(e, p, r)}>${r}</a>`)
            : html`<span class="muted">no runs</span>`}</td></tr>
        </tbody>
      </table>
      <h3>Files <span class="muted">${files.length}</span></h3>
      ${files.length === 0 ? html`<div class="muted pad">No files.</div>` : html`
        <table class="grid">
          <thead><tr><th>Path</th><th class="r">Size</th><th>Digest</th><th></th></tr></thead>
          <tbody>
            ${files.map((f) => html`
              <tr data-testid="artifact-file" data-path=${f.path}>
                <td>${f.url ? html`<a href=${f.url} target="_blank" rel="noopener">${f.path}</a>` : f.path}</td>
                <td class="r">${fmtSize(f.size)}</td>
                <td><code class="muted">${f.digest}</code></td>
                <td class="r">${f.url && html`<a href=${f.url} download=${f.path.split('/').pop()}>download</a>`}</td>
              </tr>`)}
          </tbody>
        </table>`}
    </div>`;
}

export function ArtifactsPage({ entity, project, type, name, version }) {
  const [cols, setCols] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(() => new Set(name ? [`${type}/${name}`] : []));
  useEffect(() => {
    setCols(null);
    api(`${projectBase(entity, project)}/artifacts`).then((d) => setCols(d.collections || []), (e) => e.status !== 401 && setError(e.message));
  }, [entity, project]);
  useEffect(() => {
    if (name) setOpen((o) => (o.has(`${type}/${name}`) ? o : new Set([...o, `${type}/${name}`])));
  }, [type, name]);

  const byType = useMemo(() => {
    const m = new Map();
    for (const c of cols || []) {
      if (!m.has(c.type)) m.set(c.type, []);
      m.get(c.type).push(c);
    }
    for (const list of m.values()) list.sort((a, b) => (a.name < b.name ? -1 : 1));
    return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }, [cols]);
  const current = cols && name ? findVersion(cols, type, name, version) : null;
  const toggle = (k) => setOpen((o) => {
    const n = new Set(o);
    if (n.has(k)) n.delete(k); else n.add(k);
    return n;
  });

  return html`
    <div class="page">
      <${ProjectTabs} entity=${entity} project=${project} active="artifacts" />
      ${error && html`<div class="error">${error}</div>`}
      ${!cols ? html`<div class="empty">Loading artifacts…</div>` : !cols.length ? html`<div class="empty">No artifacts in this project.</div>` : html`
        <div class="artifacts">
          <div class="artifact-list">
            ${byType.map(([t, list]) => html`
              <div class="artifact-type">
                <h3>${t} <span class="muted">${list.length}</span></h3>
                ${list.map((c) => {
                  const k = `${c.type}/${c.name}`;
                  const isOpen = open.has(k);
                  const versions = [...c.versions].sort((a, b) => vnum(b) - vnum(a));
                  return html`
                    <div class=${'artifact-collection' + (isOpen ? ' open' : '')} data-testid="artifact-collection" data-name=${c.name} data-type=${c.type}>
                      <div class="collection-head" onClick=${() => toggle(k)}>
                        <span class=${'caret' + (isOpen ? '' : ' closed')}>▾</span>
                        <b>${c.name}</b> <span class="muted">${c.versions.length} ${c.versions.length === 1 ? 'version' : 'versions'}</span>
                      </div>
                      ${isOpen && html`
                        <div class="versions">
                          ${c.description && html`<div class="muted small pad">${c.description}</div>`}
                          ${versions.map((v) => html`
                            <a class=${'artifact-version' + (current && current.id === v.id ? ' active' : '')} data-testid="artifact-version" data-version=${v.version}
                              href=${paths.artifact(entity, project, c.type, c.name, v.version)}>
                              <b>${v.version}</b>
                              ${(v.aliases || []).map((al) => html`<span class="alias">${al}</span>`)}
                              <span class="spacer"></span>
                              <span class="muted">${fmtSize(v.size)}</span>
                            </a>`)}
                        </div>`}
                    </div>`;
                })}
              </div>`)}
          </div>
          <div class="artifact-main">
            ${name
              ? current ? html`<${VersionDetail} id=${current.id} entity=${entity} project=${project} key=${current.id} />`
                : html`<div class="empty">No version ${version} of ${name}.</div>`
              : html`<div class="empty">Pick a collection and a version.</div>`}
          </div>
        </div>`}
    </div>`;
}
