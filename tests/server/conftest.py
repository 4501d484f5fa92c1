"""End-to-end fixtures for `cairn server`: a real server, the real `wandb==0.31.0` client.

The suite starts `cairn server` once per database backend (SQLite always; PostgreSQL when
`CAIRN_TEST_POSTGRES_URL` is set), runs each test's wandb script in a subprocess against it,
and checks what the server stored by reading its database directly (`Store`).

Environment:
  CAIRN_BIN                 the cairn binary (default: <repo>/target/debug/cairn)
  CAIRN_TEST_POSTGRES_URL   e.g. postgres://cairn:cairn@127.0.0.1:55432 (scripts/postgres-env);
                            a fresh database is created on it for the session and dropped after
  CAIRN_TEST_BACKENDS       the backends to run, comma-separated (default: sqlite, and
                            postgres when CAIRN_TEST_POSTGRES_URL is set)
  CAIRN_TEST_STOP           how test_stop asks for a server-side stop: `cli` (default,
                            `cairn run stop`) or `sql` (sets runs.stop_requested directly)
  CAIRN_TEST_KEEP           when set, keep the server's data dir and Postgres database
  CAIRN_TEST_CORE           `wandb` (default): the SDK runs W&B's own wandb-core; `cairn`:
                            every wandb script and `wandb` command runs cairn's core in its
                            place (an overlay of the package, first on PYTHONPATH)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CAIRN_BIN = Path(os.environ.get("CAIRN_BIN", REPO / "target" / "debug" / "cairn"))
WANDB_BIN = Path(sys.executable).parent / "wandb"

# The entity (and user) the server creates on first start.
ENTITY = "admin"

BACKENDS = ["sqlite"]
if os.environ.get("CAIRN_TEST_POSTGRES_URL"):
    BACKENDS.append("postgres")
if os.environ.get("CAIRN_TEST_BACKENDS"):
    BACKENDS = [b for b in os.environ["CAIRN_TEST_BACKENDS"].split(",") if b]
    for b in BACKENDS:
        if b not in ("sqlite", "postgres"):
            raise SystemExit(f"CAIRN_TEST_BACKENDS: unknown backend {b!r}")
    if "postgres" in BACKENDS and not os.environ.get("CAIRN_TEST_POSTGRES_URL"):
        raise SystemExit("CAIRN_TEST_BACKENDS names postgres: set CAIRN_TEST_POSTGRES_URL")

# Which core the wandb SDK runs under (see the module doc).
CORE = os.environ.get("CAIRN_TEST_CORE", "wandb")
if CORE not in ("wandb", "cairn"):
    raise SystemExit(f"CAIRN_TEST_CORE must be wandb or cairn, not {CORE!r}")


def wandb_overlay(root: Path, cairn: bool = True) -> Path:
    """A copy of the installed `wandb` package made of symlinks, with `bin/wandb-core` the
    cairn binary (W&B's with `cairn=False`); put it first on PYTHONPATH."""
    import wandb

    real = Path(wandb.__file__).parent
    pkg = root / "wandb"
    pkg.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name != "bin":
            (pkg / entry.name).symlink_to(entry)
    (pkg / "bin").mkdir()
    for entry in (real / "bin").iterdir():
        if entry.name != "wandb-core" or not cairn:
            (pkg / "bin" / entry.name).symlink_to(entry)
    if cairn:
        (pkg / "bin" / "wandb-core").symlink_to(CAIRN_BIN.resolve())
    return root



_CORE_OVERLAY: Path | None = None


def core_overlay() -> Path:
    """The session's package overlay with cairn's core (made once, removed at exit)."""
    global _CORE_OVERLAY
    if _CORE_OVERLAY is None:
        import atexit
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="cairn-core-overlay-"))
        atexit.register(shutil.rmtree, root, True)
        _CORE_OVERLAY = wandb_overlay(root / "pkg")
    return _CORE_OVERLAY


# Lines the wandb client writes to its debug logs that are worth showing on a failure.
_LOG_INTERESTING = re.compile(r"error|warn|fail|status: ?[45]\d\d", re.IGNORECASE)


def make_api_key() -> str:
    """An on-prem style key: `local-` and 40 characters, as the client's format check wants."""
    return "local-" + secrets.token_hex(20)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60, start: int = 0) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def md5_forms(data: bytes) -> set[str]:
    """The two usual spellings of a content MD5: hex and base64."""
    digest = hashlib.md5(data).digest()
    return {digest.hex(), base64.b64encode(digest).decode()}


# --------------------------------------------------------------------------------------
# Reading the server's database


class Store:
    """Reads what the server stored, straight from its database (SQLite or PostgreSQL).

    Only portable SQL is used; `?` placeholders are rewritten for psycopg. JSON columns are
    decoded: a runs row has `config`, `summary` and `tags` as Python objects.
    """

    def __init__(self, sqlite_path: Path | None = None, postgres_url: str | None = None):
        assert (sqlite_path is None) != (postgres_url is None)
        self.sqlite_path = sqlite_path
        self.postgres_url = postgres_url
        self._pg = None

    # -- plumbing

    def _connect_pg(self):
        if self._pg is None or self._pg.closed:
            import psycopg

            self._pg = psycopg.connect(self.postgres_url, autocommit=True)
        return self._pg

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        if self.sqlite_path is not None:
            import sqlite3

            if not self.sqlite_path.exists():
                raise AssertionError(f"the server's database {self.sqlite_path} does not exist")
            con = sqlite3.connect(self.sqlite_path, timeout=30)
            try:
                con.row_factory = sqlite3.Row
                return [dict(r) for r in con.execute(sql, params).fetchall()]
            finally:
                con.close()
        from psycopg.rows import dict_row

        con = self._connect_pg()
        with con.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []

    def execute(self, sql: str, params: tuple = ()) -> None:
        """A write (only for test set-ups that the server offers no other way to make)."""
        if self.sqlite_path is not None:
            import sqlite3

            con = sqlite3.connect(self.sqlite_path, timeout=30)
            try:
                con.execute(sql, params)
                con.commit()
            finally:
                con.close()
            return
        self._connect_pg().execute(sql.replace("?", "%s"), params)

    def one(self, sql: str, params: tuple = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        assert len(rows) <= 1, f"expected at most one row, got {len(rows)}: {rows}"
        return rows[0] if rows else None

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    # -- users, entities, projects

    def user(self, name: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM users WHERE name = ?", (name,))

    def entity(self, name: str) -> dict[str, Any] | None:
        return self.one("SELECT * FROM entities WHERE name = ?", (name,))

    def api_keys(self, user_name: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT k.* FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.name = ?"
            " ORDER BY k.id",
            (user_name,),
        )

    def project(self, entity: str, name: str) -> dict[str, Any] | None:
        return self.one(
            "SELECT p.* FROM projects p JOIN entities e ON e.id = p.entity_id"
            " WHERE e.name = ? AND p.name = ?",
            (entity, name),
        )

    # -- runs

    @staticmethod
    def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
        for col in ("config", "summary", "tags"):
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
        return row

    def run(self, entity: str, project: str, name: str) -> dict[str, Any] | None:
        """The runs row of run `name` (the W&B run id), or None."""
        row = self.one(
            "SELECT r.* FROM runs r JOIN projects p ON p.id = r.project_id"
            " JOIN entities e ON e.id = p.entity_id"
            " WHERE e.name = ? AND p.name = ? AND r.name = ?",
            (entity, project, name),
        )
        return self._decode_run(row) if row else None

    def runs(self, entity: str, project: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT r.* FROM runs r JOIN projects p ON p.id = r.project_id"
            " JOIN entities e ON e.id = p.entity_id WHERE e.name = ? AND p.name = ?"
            " ORDER BY r.id",
            (entity, project),
        )
        return [self._decode_run(r) for r in rows]

    def runs_named(self, name: str) -> list[dict[str, Any]]:
        """Every run with this W&B run id, whatever its entity and project."""
        return [
            self._decode_run(r)
            for r in self.query("SELECT * FROM runs WHERE name = ? ORDER BY id", (name,))
        ]

    def history_rows(self, run_id: int) -> list[dict[str, Any]]:
        """Raw history rows: line, step, content (text)."""
        return self.query(
            "SELECT line, step, content FROM history WHERE run_id = ? ORDER BY line", (run_id,)
        )

    def history(self, run_id: int) -> list[dict[str, Any]]:
        """The history as parsed JSON objects, in line order."""
        return [json.loads(r["content"]) for r in self.history_rows(run_id)]

    def event_rows(self, run_id: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT line, content FROM events WHERE run_id = ? ORDER BY line", (run_id,)
        )

    def events(self, run_id: int) -> list[dict[str, Any]]:
        return [json.loads(r["content"]) for r in self.event_rows(run_id)]

    def console_rows(self, run_id: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT line, content FROM console WHERE run_id = ? ORDER BY line", (run_id,)
        )

    def console(self, run_id: int) -> list[str]:
        """Console lines as stored: `<ISO ts> text`, or `ERROR <ISO ts> text` for stderr."""
        return [r["content"] for r in self.console_rows(run_id)]

    def files(self, run_id: int) -> dict[str, dict[str, Any]]:
        """The run's files by name."""
        rows = self.query("SELECT * FROM run_files WHERE run_id = ? ORDER BY name", (run_id,))
        return {r["name"]: r for r in rows}

    def alerts(self, run_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM alerts WHERE run_id = ? ORDER BY id", (run_id,))


CONSOLE_LINE = re.compile(
    r"^(?P<error>ERROR )?(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\S*) (?P<text>.*)$", re.S
)


def parse_console_line(line: str) -> tuple[str, str, str]:
    """(`stdout`|`stderr`, timestamp, text) of a stored console line; fails on another shape."""
    m = CONSOLE_LINE.match(line)
    assert m, f"console line not in the form '[ERROR ]<ISO timestamp> <text>': {line!r}"
    return ("stderr" if m["error"] else "stdout", m["ts"], m["text"])


# --------------------------------------------------------------------------------------
# The server


@dataclass
class Server:
    backend: str
    port: int
    data_dir: Path
    log_path: Path
    api_key: str | None  # None: CAIRN_ADMIN_API_KEY unset; read from admin-api-key after start
    database_url: str | None = None  # only for postgres
    proc: subprocess.Popen | None = None
    store: Store = field(init=False)

    def __post_init__(self):
        if self.database_url:
            self.store = Store(postgres_url=self.database_url)
        else:
            self.store = Store(sqlite_path=self.data_dir / "cairn.db")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_args(self) -> list[str]:
        args = ["--data", str(self.data_dir)]
        if self.database_url:
            args += ["--database", self.database_url]
        return args

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def env(self) -> dict[str, str]:
        """The environment for cairn commands: only the flags choose the data and database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
        if self.api_key is not None:
            env["CAIRN_ADMIN_API_KEY"] = self.api_key
        return env

    def cli(
        self, *args: str, timeout: float = 60, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        """`cairn <args> --data DIR [--database URL]`, with `stdin` as its input."""
        return subprocess.run(
            [str(CAIRN_BIN), *args, *self.db_args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            input=stdin,
        )

    def request_stop(self, entity: str, project: str, run: str) -> None:
        """Ask for a server-side stop of a run (see CAIRN_TEST_STOP)."""
        how = os.environ.get("CAIRN_TEST_STOP", "cli")
        if how == "sql":
            self.store.execute(
                "UPDATE runs SET stop_requested = 1 WHERE name = ? AND project_id ="
                " (SELECT p.id FROM projects p JOIN entities e ON e.id = p.entity_id"
                " WHERE e.name = ? AND p.name = ?)",
                (run, entity, project),
            )
            return
        assert how == "cli", f"CAIRN_TEST_STOP must be cli or sql, not {how!r}"
        res = self.cli("run", "stop", f"{entity}/{project}/{run}")
        assert res.returncode == 0, (
            f"`cairn run stop {entity}/{project}/{run}` exited {res.returncode}\n"
            f"stdout: {res.stdout}\nstderr: {res.stderr}"
        )

    def add_user(self, name: str) -> str:
        """`cairn user add NAME`; returns the new user's API key."""
        res = self.cli("user", "add", name)
        assert res.returncode == 0, (
            f"`cairn user add {name}` exited {res.returncode}\n"
            f"stdout: {res.stdout}\nstderr: {res.stderr}"
        )
        keys = [
            t for t in res.stdout.split() if re.fullmatch(r"[A-Za-z0-9]+-[A-Za-z0-9_-]{40,}", t)
        ]
        assert keys, f"`cairn user add {name}` printed no API key: {res.stdout!r}"
        return keys[-1]

    def start(self) -> None:
        env = self.env()
        cmd = [
            str(CAIRN_BIN),
            "server",
            "--addr",
            f"127.0.0.1:{self.port}",
            *self.db_args,
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"`{' '.join(cmd)}` exited with {self.proc.returncode} before it listened;"
                    f" its log:\n{tail(self.log_path)}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.1)
                continue
            if self.api_key is None:
                key_file = self.data_dir / "admin-api-key"
                if key_file.exists():
                    self.api_key = key_file.read_text().strip()
            return
        self.stop()
        raise RuntimeError(f"`{' '.join(cmd)}` did not listen within 60 s:\n{tail(self.log_path)}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 20 s. Returns the exit code (None if it was killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def cleanup(self) -> None:
        """Stop the server, then drop its stored files (artifact tests leave GiBs) and its
        Postgres database (unless CAIRN_TEST_KEEP)."""
        self.stop()
        self.store.close()
        if not os.environ.get("CAIRN_TEST_KEEP"):
            shutil.rmtree(self.data_dir / "files", ignore_errors=True)
        if os.environ.get("CAIRN_TEST_KEEP"):
            print(
                f"\n[{self.backend}] kept {self.data_dir}, log {self.log_path},"
                f" database {self.database_url}",
                file=sys.__stderr__,
            )
        elif self.database_url:
            import psycopg

            name = urllib.parse.urlsplit(self.database_url).path.lstrip("/")
            admin_url = _postgres_database(self.database_url, "postgres")
            with psycopg.connect(admin_url, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_database(base_url: str, name: str) -> str:
    """`base_url` with its database (path) replaced by `name`."""
    parts = urllib.parse.urlsplit(base_url.rstrip("/"))
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def make_server(backend: str, root: Path, api_key: str | None = "generate") -> Server:
    """A (not yet started) server with a fresh data dir under `root` and, for postgres, a
    fresh database. `api_key=None` leaves CAIRN_ADMIN_API_KEY unset (the server makes one).
    Call `cleanup()` when done."""
    if not CAIRN_BIN.exists():
        pytest.fail(
            f"{CAIRN_BIN} does not exist: build it with `cargo build -p cairn` or set CAIRN_BIN"
        )
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    data.mkdir()
    database_url = None
    if backend == "postgres":
        import psycopg

        base = os.environ["CAIRN_TEST_POSTGRES_URL"]
        db_name = f"cairn_test_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(_postgres_database(base, "postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{db_name}"')
        database_url = _postgres_database(base, db_name)
    return Server(
        backend=backend,
        port=free_port(),
        data_dir=data,
        log_path=root / "server.log",
        api_key=make_api_key() if api_key == "generate" else api_key,
        database_url=database_url,
    )


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, tmp_path_factory) -> Server:
    """A running `cairn server` with a fresh database, one per backend."""
    srv = make_server(request.param, tmp_path_factory.mktemp(f"server-{request.param}"))
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="session")
def store(server) -> Store:
    return server.store


# --------------------------------------------------------------------------------------
# Running the wandb client

# Prepended to every test script. Scripts report results with `report(key=value)` into a
# JSON file the test reads; they get the project name as PROJECT and extra values as ARGS.
PRELUDE = """\
import json, os, sys, time

def report(**values):
    path = os.environ["CAIRN_TEST_RESULT"]
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data.update(values)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)

PROJECT = os.environ["CAIRN_TEST_PROJECT"]
ARGS = json.loads(os.environ.get("CAIRN_TEST_ARGS", "{}"))

import wandb
"""


@dataclass
class ScriptResult:
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any]
    wandb_dir: Path
    script: Path

    def debug_logs(self, name: str = "debug-internal.log") -> str:
        """The contents of every `<WANDB_DIR>/wandb/*/logs/<name>` of this client's runs."""
        out = []
        for p in run_logs(self.wandb_dir, name):
            out.append(f"--- {p}\n{p.read_text(errors='replace')}")
        return "\n".join(out)

    def describe(self) -> str:
        interesting = [
            line
            for line in self.debug_logs().splitlines()
            if line.startswith("---") or _LOG_INTERESTING.search(line)
        ]
        return (
            f"script {self.script} exited {self.returncode}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-6000:]}\n"
            f"--- result\n{json.dumps(self.result)[:4000]}\n"
            f"--- debug-internal.log (error/warn lines)\n" + "\n".join(interesting[-60:])
        )


class Client:
    """Runs wandb scripts and the wandb CLI against the server, isolated in a tmp dir."""

    def __init__(self, server: Server, tmp_path: Path, test_name: str):
        self.server = server
        self.tmp = tmp_path
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.wandb_dir = tmp_path / "wandb-dir"
        self.wandb_dir.mkdir(exist_ok=True)
        # The scripts' temporary files (theirs and wandb's staging copies) stay inside the
        # test's folder, which pytest removes when the test passes.
        self.tmpdir = tmp_path / "t"
        self.tmpdir.mkdir(exist_ok=True)
        self.test_name = test_name
        self._count = 0
        self.wandb_dirs: list[Path] = [self.wandb_dir]

    def project(self, hint: str = "") -> str:
        """A project name unique to this test."""
        base = re.sub(r"[^a-z0-9]+", "-", (hint or self.test_name).lower()).strip("-")[:40]
        return f"{base}-{uuid.uuid4().hex[:8]}"

    def env(self, api_key: str | None = None, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WANDB_", "XDG_", "CAIRN_TEST_")) and k not in ("NETRC",)
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            WANDB_BASE_URL=self.server.base_url,
            WANDB_API_KEY=api_key or self.server.api_key,
            WANDB_DIR=str(self.wandb_dir),
            WANDB_SILENT="true",
            WANDB_DISABLE_GIT="true",
            # Flush the filestream every second instead of every 15 s.
            WANDB__FILE_STREAM_TRANSMIT_INTERVAL="1",
            # A server error should fail a test in seconds, not after minutes of backoff.
            WANDB__GRAPHQL_RETRY_MAX="2",
            WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS="2",
            WANDB__FILE_STREAM_RETRY_MAX="3",
            WANDB__FILE_STREAM_RETRY_WAIT_MAX_SECONDS="2",
            WANDB__FILE_TRANSFER_RETRY_MAX="2",
            WANDB__FILE_TRANSFER_RETRY_WAIT_MAX_SECONDS="2",
            PYTHONUNBUFFERED="1",
            TMPDIR=str(self.tmpdir),
        )
        if CORE == "cairn":
            env["PYTHONPATH"] = str(core_overlay())
        env.update({k: str(v) for k, v in extra.items() if v is not None})
        return {k: v for k, v in env.items() if v != ""}

    def _write_script(self, source: str) -> tuple[Path, Path]:
        self._count += 1
        script = self.tmp / f"script{self._count}.py"
        script.write_text(PRELUDE + "\n" + textwrap.dedent(source))
        result = self.tmp / f"script{self._count}.result.json"
        result.unlink(missing_ok=True)
        return script, result

    def popen(
        self,
        source: str,
        project: str,
        args: dict | None = None,
        env: dict[str, str] | None = None,
    ) -> tuple[subprocess.Popen, Path, Path]:
        """Start a script; returns (process, script path, result file)."""
        script, result = self._write_script(source)
        full_env = dict(env or self.env())
        full_env.update(
            CAIRN_TEST_RESULT=str(result),
            CAIRN_TEST_PROJECT=project,
            CAIRN_TEST_ARGS=json.dumps(args or {}),
        )
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=self.tmp,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return proc, script, result

    def finish(
        self, proc: subprocess.Popen, script: Path, result: Path, timeout: float, wandb_dir: Path
    ) -> ScriptResult:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            res = ScriptResult(-9, stdout, stderr, read_result(result), wandb_dir, script)
            raise AssertionError(f"script timed out after {timeout} s\n{res.describe()}") from None
        return ScriptResult(proc.returncode, stdout, stderr, read_result(result), wandb_dir, script)

    def run(
        self,
        source: str,
        project: str,
        args: dict | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 180,
        expect_rc: int | None = 0,
    ) -> ScriptResult:
        """Run a wandb script (PRELUDE + `source`) to its end.

        Fails the test with the script's output and the client's debug-log errors when its
        exit code is not `expect_rc` (None: any).
        """
        proc, script, result = self.popen(source, project, args=args, env=env)
        wandb_dir = Path((env or {}).get("WANDB_DIR", self.wandb_dir))
        if wandb_dir not in self.wandb_dirs:
            self.wandb_dirs.append(wandb_dir)
        res = self.finish(proc, script, result, timeout, wandb_dir)
        if expect_rc is not None and res.returncode != expect_rc:
            raise AssertionError(f"expected exit code {expect_rc}\n{res.describe()}")
        return res

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """The `wandb` command line."""
        return subprocess.run(
            [str(WANDB_BIN), *args],
            cwd=self.tmp,
            env=env or self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def run_logs(wandb_dir: Path, name: str = "debug-internal.log") -> list[Path]:
    """`<WANDB_DIR>/wandb/<run dir>/logs/<name>` of every run (not the latest-run link)."""
    return sorted(p for p in wandb_dir.glob(f"wandb/*/logs/{name}") if p.parts[-3] != "latest-run")


def read_result(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


@pytest.fixture
def client(server, tmp_path, request) -> Client:
    c = Client(server, tmp_path, request.node.originalname or request.node.name)
    c.log_start = server.log_size()
    request.node._cairn_client = c
    return c


# --------------------------------------------------------------------------------------
# Failure reports: the server's log lines written during the test, and the client's
# debug-log errors.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    client = getattr(item, "_cairn_client", None)
    if client is None:
        return
    srv = client.server
    start = client.log_start
    report.sections.append(
        (f"cairn server log ({srv.backend}) during the test", tail(srv.log_path, 80, start))
    )
    lines = []
    for d in client.wandb_dirs:
        for p in run_logs(d):
            lines.append(f"--- {p}")
            lines += [
                line
                for line in p.read_text(errors="replace").splitlines()
                if _LOG_INTERESTING.search(line)
            ][-40:]
    if lines:
        report.sections.append(("wandb debug-internal.log (error/warn lines)", "\n".join(lines)))
