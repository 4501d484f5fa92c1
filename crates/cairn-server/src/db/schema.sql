-- cairn server schema, version 1. One text for SQLite and PostgreSQL: `{id}` becomes the
-- backend's auto-numbered primary key. Times are ISO-8601 UTC text ("2026-11-22T06:10:11Z"),
-- so they sort and compare as strings on both backends. Booleans are 0/1 BIGINTs.
-- JSON columns hold text exactly as W&B's wire shapes carry it.

CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id {id},
    name TEXT NOT NULL UNIQUE,
    email TEXT,
    admin BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- An entity owns projects: every user has one of their own name; teams are entities with
-- members.
CREATE TABLE entities (
    id {id},
    name TEXT NOT NULL UNIQUE,
    is_team BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE members (
    entity_id BIGINT NOT NULL REFERENCES entities (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    PRIMARY KEY (entity_id, user_id)
);

-- Keys are stored as the hex SHA-256 of the whole key; the key itself is never kept.
CREATE TABLE api_keys (
    id {id},
    user_id BIGINT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE projects (
    id {id},
    entity_id BIGINT NOT NULL REFERENCES entities (id),
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (entity_id, name)
);

-- A run ("bucket" in W&B's legacy names). `config` is W&B's config shape
-- ({"key": {"value": v}, "_wandb": {"value": {...}}}), `summary` the latest summary object,
-- `tags` a JSON array. The *_lines columns count the lines of each filestream file.
CREATE TABLE runs (
    id {id},
    project_id BIGINT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id),
    display_name TEXT,
    description TEXT,
    notes TEXT,
    group_name TEXT,
    job_type TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    config TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    host TEXT,
    program TEXT,
    git_commit TEXT,
    git_repo TEXT,
    sweep TEXT,
    state TEXT NOT NULL DEFAULT 'running',
    exitcode BIGINT,
    stop_requested BIGINT NOT NULL DEFAULT 0,
    history_lines BIGINT NOT NULL DEFAULT 0,
    events_lines BIGINT NOT NULL DEFAULT 0,
    log_lines BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    UNIQUE (project_id, name)
);

-- One row per history line (`line` is the filestream offset), with `_step` pulled out.
CREATE TABLE history (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    line BIGINT NOT NULL,
    step BIGINT,
    content TEXT NOT NULL,
    PRIMARY KEY (run_id, line)
);
CREATE INDEX history_step ON history (run_id, step);

-- System metrics (wandb-events.jsonl), one row per line.
CREATE TABLE events (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    line BIGINT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (run_id, line)
);

-- Console lines (output.log) as the filestream sends them; a line can be rewritten.
CREATE TABLE console (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    line BIGINT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (run_id, line)
);

-- Files of a run (`CreateRunFiles` + PUT). `uploaded` is 1 once bytes are stored.
CREATE TABLE run_files (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    name TEXT NOT NULL,
    size BIGINT NOT NULL DEFAULT 0,
    md5 TEXT,
    uploaded BIGINT NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE alerts (
    id {id},
    run_id BIGINT NOT NULL REFERENCES runs (id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    severity TEXT NOT NULL,
    wait_ms BIGINT,
    created_at TEXT NOT NULL
);
