-- cairn server schema, version 2: artifacts. Applied after version 1 (schema.sql), on new
-- databases and on databases made by earlier cairn servers alike.

-- A collection ("artifact sequence" in W&B's names): the versions of one named artifact in
-- a project. `client_id` is the SDK's `sequenceClientID` (media tables refer to it).
CREATE TABLE artifact_collections (
    id {id},
    project_id BIGINT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    type_name TEXT NOT NULL,
    description TEXT,
    client_id TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX artifact_collections_client ON artifact_collections (client_id);

-- One version of an artifact. `state` is PENDING (created, files arriving), COMMITTED or
-- DELETED. `version_index` is given at commit (0, 1, … per collection), so an abandoned
-- upload leaves no gap. `digest` is the hex manifest-content digest (wire §7.2) that
-- same-content dedup compares; `manifest_key` the storage key of wandb_manifest.json once
-- uploaded. `run_id` is the run that logged it; `pending_aliases` (a JSON array) the
-- aliases CreateArtifact asked for, applied at commit. `size`/`file_count` are filled
-- at commit from the manifest.
CREATE TABLE artifacts (
    id {id},
    collection_id BIGINT NOT NULL REFERENCES artifact_collections (id),
    version_index BIGINT,
    state TEXT NOT NULL DEFAULT 'PENDING',
    digest TEXT NOT NULL,
    description TEXT,
    metadata TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    history_step BIGINT,
    ttl_seconds BIGINT,
    client_id TEXT,
    run_id BIGINT REFERENCES runs (id),
    pending_aliases TEXT NOT NULL DEFAULT '[]',
    manifest_key TEXT,
    manifest_digest TEXT,
    size BIGINT NOT NULL DEFAULT 0,
    file_count BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    committed_at TEXT
);
CREATE INDEX artifacts_collection ON artifacts (collection_id, version_index);
CREATE INDEX artifacts_client ON artifacts (client_id);
CREATE INDEX artifacts_run ON artifacts (run_id);

-- Aliases (`latest`, user ones): each names one version of its collection. `vN` is not
-- stored; it is the version index.
CREATE TABLE artifact_aliases (
    collection_id BIGINT NOT NULL REFERENCES artifact_collections (id),
    alias TEXT NOT NULL,
    artifact_id BIGINT NOT NULL REFERENCES artifacts (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (collection_id, alias)
);

-- The entries of a committed version, from its manifest: `md5` is W&B's base64 digest
-- (NULL for references), `ref` the reference URI of a reference entry, `birth_artifact_id`
-- the version that first uploaded the bytes.
CREATE TABLE artifact_entries (
    artifact_id BIGINT NOT NULL REFERENCES artifacts (id),
    path TEXT NOT NULL,
    md5 TEXT,
    size BIGINT NOT NULL DEFAULT 0,
    ref TEXT,
    birth_artifact_id BIGINT,
    PRIMARY KEY (artifact_id, path)
);

-- Content-addressed artifact storage, per entity: one row per distinct content (hex MD5)
-- the entity has announced. `stored` is 1 once the bytes are in storage (at
-- `artifact_blob_key`); `birth_artifact_id` is the version whose upload announced them.
CREATE TABLE artifact_blobs (
    entity_id BIGINT NOT NULL REFERENCES entities (id),
    md5_hex TEXT NOT NULL,
    size BIGINT NOT NULL DEFAULT 0,
    stored BIGINT NOT NULL DEFAULT 0,
    birth_artifact_id BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (entity_id, md5_hex)
);

-- Multipart uploads in progress (files of 2 GiB and more): parts are stored under
-- `artifacts/{entity}/uploads/{upload_id}/{part}` until CompleteMultipartUploadArtifact
-- joins them into the blob.
CREATE TABLE artifact_uploads (
    upload_id TEXT PRIMARY KEY,
    entity_id BIGINT NOT NULL REFERENCES entities (id),
    md5_hex TEXT NOT NULL,
    parts BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

-- The parts of those uploads already stored, with their MD5s: a client that starts the
-- same upload again (same entity and content) gets the same upload id and is told which
-- parts it need not send again.
CREATE TABLE artifact_upload_parts (
    upload_id TEXT NOT NULL REFERENCES artifact_uploads (upload_id),
    part BIGINT NOT NULL,
    md5_hex TEXT NOT NULL,
    PRIMARY KEY (upload_id, part)
);

-- Lineage: runs that used a version as an input (`UseArtifact`).
CREATE TABLE artifact_usage (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    artifact_id BIGINT NOT NULL REFERENCES artifacts (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, artifact_id)
);
