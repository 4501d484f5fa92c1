"""Network faults between the real wandb client and `cairn server`: rows still land once.

The fault proxy (tests/faults/proxy.py) sits between the client and a server of this module's
own, started with `--public-url <proxy>` so that the upload URLs it hands out go through the
proxy too. The client's retries are made quick and plentiful, so a fault costs seconds and
never exhausts them; whatever the fault, the server must end up with every history row and
console line exactly once, and must never answer with a 5xx.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import (
    BACKENDS,
    CORE,
    ENTITY,
    REPO,
    Client,
    Server,
    make_server,
    parse_console_line,
    read_result,
)

sys.path.insert(0, str(REPO / "tests" / "faults"))
from proxy import Proxy  # noqa: E402

# The client's retry knobs for this file: many retries, at most 1 s apart. (wandb-core
# truncates these durations, and the transmit interval, to whole seconds: 0.5 means 0, that
# is "the default".)
RETRY_ENV = dict(
    WANDB__FILE_STREAM_RETRY_MAX="120",
    WANDB__FILE_STREAM_RETRY_WAIT_MAX_SECONDS="1",
    WANDB__GRAPHQL_RETRY_MAX="120",
    WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS="1",
    WANDB__FILE_TRANSFER_RETRY_MAX="120",
    WANDB__FILE_TRANSFER_RETRY_WAIT_MAX_SECONDS="1",
)


@dataclass
class PublicUrlServer(Server):
    """A `Server` started with `--public-url URL` (only `cairn server` takes the flag, so it
    is added for `start()` alone, not for the other `cairn` commands of `cli()`)."""

    public_url: str = ""
    starting: bool = False

    @property
    def db_args(self) -> list[str]:
        args = super().db_args
        return args + ["--public-url", self.public_url] if self.starting else args

    def start(self) -> None:
        self.starting = True
        try:
            super().start()
        finally:
            self.starting = False


@dataclass
class Faulty:
    server: PublicUrlServer
    proxy: Proxy


@pytest.fixture(scope="module", params=BACKENDS)
def faulty(request, tmp_path_factory) -> Faulty:
    """A cairn server (one per backend) and a fault proxy in front of it."""
    base = make_server(request.param, tmp_path_factory.mktemp(f"faults-{request.param}"))
    init = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    proxy = Proxy(base.base_url)
    srv = PublicUrlServer(**init)
    try:
        proxy.start()
        srv.public_url = proxy.url
        srv.start()
        yield Faulty(srv, proxy)
    finally:
        proxy.stop()
        srv.cleanup()


@pytest.fixture
def setup(faulty, tmp_path, request) -> tuple[Client, Proxy, dict[str, str]]:
    """(client, proxy, env): the proxy passing, its counters zeroed; env points the client
    at the proxy."""
    faulty.proxy.set_mode("pass")
    faulty.proxy.reset_stats()
    client = Client(faulty.server, tmp_path, request.node.originalname or request.node.name)
    client.log_start = faulty.server.log_size()
    request.node._cairn_client = client
    env = client.env(WANDB_BASE_URL=faulty.proxy.url, **RETRY_ENV)
    return client, faulty.proxy, env


# Logs ARGS["n"] rows (printing a line every ARGS["print_every"]); at row ARGS["pause_at"] it
# reports `paused` and waits for the file ARGS["go"], so the test can start a fault mid-run.
SCRIPT = """
run = wandb.init(project=PROJECT)
report(id=run.id)
for i in range(ARGS["n"]):
    if i == ARGS.get("pause_at"):
        report(paused=True)
        deadline = time.time() + 120
        while not os.path.exists(ARGS["go"]) and time.time() < deadline:
            time.sleep(0.05)
    run.log({"i": i, "sq": i * i})
    if i % ARGS["print_every"] == 0:
        print(f"line {i}", flush=True)
    time.sleep(ARGS["sleep"])
print("logged everything", flush=True)
run.finish()
"""


@contextlib.contextmanager
def killed_on_failure(proc):
    """Kill the script's process group if the test fails before waiting for it."""
    try:
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def wait_paused(store, project: str, result: Path, proc) -> dict:
    """Until the script paused and the server holds some of its rows; returns the run row."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the script exited early with {proc.returncode}")
        res = read_result(result)
        if res.get("paused"):
            row = store.run(ENTITY, project, res["id"])
            if row is not None and row["history_lines"] > 0:
                return row
        time.sleep(0.1)
    raise AssertionError("the script never paused with rows on the server")


def check_run(store, project: str, run_name: str, n: int, print_every: int) -> dict:
    """Finished, every row once and in order, console lines intact."""
    row = store.run(ENTITY, project, run_name)
    assert row is not None, f"no run {project}/{run_name}"
    assert row["state"] == "finished", row
    assert row["exitcode"] == 0
    rows = store.history_rows(row["id"])
    steps = [r["step"] for r in rows]
    if steps != list(range(n)):
        dupes = sorted({s for s in steps if steps.count(s) > 1})
        missing = sorted(set(range(n)) - set(steps))
        raise AssertionError(
            f"history: {len(steps)} rows for {n} steps; duplicated {dupes[:20]},"
            f" missing {missing[:20]}"
        )
    assert [r["line"] for r in rows] == list(range(n))
    assert row["history_lines"] == n
    history = store.history(row["id"])
    assert [(h["_step"], h["i"], h["sq"]) for h in history] == [(i, i, i * i) for i in range(n)]
    console = store.console(row["id"])
    texts = [parse_console_line(line) for line in console]
    expected = [f"line {i}" for i in range(0, n, print_every)] + ["logged everything"]
    assert [(s, t) for s, _, t in texts] == [("stdout", t) for t in expected], console
    assert [r["line"] for r in store.console_rows(row["id"])] == list(range(len(console)))
    assert row["log_lines"] == len(console)
    return row


def server_errors(proxy: Proxy) -> list[dict]:
    """Requests the server answered with a 5xx, or a 4xx on the filestream."""
    return [
        e
        for e in proxy.events()
        if e["status"] is not None
        and e["action"] != "status"  # injected by the proxy, not the server's
        and (e["status"] >= 500 or (e["status"] >= 400 and e["path"].endswith("file_stream")))
    ]


def test_429_storm_on_file_stream(setup, faulty, tmp_path):
    """20 answers of 429 Retry-After: 1 on the filestream in the middle of a 2,000-step run:
    the client waits them out, and every row lands exactly once."""
    client, proxy, env = setup
    store = faulty.server.store
    project = client.project()
    n, go = 2000, tmp_path / "go"
    args = {"n": n, "pause_at": 1000, "go": str(go), "print_every": 100, "sleep": 0.001}
    proc, script, result = client.popen(SCRIPT, project, args=args, env=env)
    with killed_on_failure(proc):
        wait_paused(store, project, result, proc)
        proxy.set_mode("status", status=429, retry_after=1, count=20, path=r"file_stream$")
        go.touch()
        res = client.finish(proc, script, result, 180, client.wandb_dir)
    assert res.returncode == 0, res.describe()

    stats = proxy.stats()
    assert stats["modes"]["status"]["injected"] == 20, stats
    assert stats["mode"]["mode"] == "pass"
    check_run(store, project, res.result["id"], n, 100)
    assert server_errors(proxy) == []


def test_cut_response_on_file_stream(setup, faulty):
    """30 % of filestream answers are lost after the server applied the request: the client
    sends the same batch again, and the server must not store it twice."""
    client, proxy, env = setup
    store = faulty.server.store
    project = client.project()
    n = 2000
    # With seed 7, the 2nd, 4th and 7th filestream requests are cut (then 9th, 11th, 12th,
    # ...); the run lasts about 10 s and the client sends one request a second.
    proxy.set_mode("cut_response", probability=0.3, seed=7, path=r"file_stream$")
    res = client.run(
        SCRIPT, project, args={"n": n, "print_every": 10, "sleep": 0.004}, env=env, timeout=180
    )
    stats = proxy.stats()
    cut = stats["modes"]["cut_response"]
    assert cut["injected"] >= 3, stats
    # The cut requests carried rows (not just heartbeats), which the server had stored.
    cut_sizes = [e["request_bytes"] for e in proxy.events() if e["action"] == "cut_response"]
    assert sum(size > 1000 for size in cut_sizes) >= 2, cut_sizes
    check_run(store, project, res.result["id"], n, 10)
    assert server_errors(proxy) == []


def test_down_in_the_middle_of_a_run(setup, faulty, tmp_path):
    """The proxy refuses every connection for 10 s in the middle of a run (like a server
    that is down), then passes again: all rows land once and the run is finished."""
    client, proxy, env = setup
    store = faulty.server.store
    project = client.project()
    n, go = 2000, tmp_path / "go"
    args = {"n": n, "pause_at": 800, "go": str(go), "print_every": 50, "sleep": 0.002}
    proc, script, result = client.popen(SCRIPT, project, args=args, env=env)
    with killed_on_failure(proc):
        row = wait_paused(store, project, result, proc)
        proxy.set_mode("down")
        go.touch()
        time.sleep(5)
        # While down, nothing reaches the server.
        during = store.run(ENTITY, project, row["name"])["history_lines"]
        time.sleep(5)
        assert store.run(ENTITY, project, row["name"])["history_lines"] == during
        proxy.set_mode("pass")
        res = client.finish(proc, script, result, 180, client.wandb_dir)
    assert res.returncode == 0, res.describe()
    # The client did run into the closed port (and retried); W&B's core says so in its
    # debug log (cairn's core writes none).
    if CORE == "wandb":
        assert "connection refused" in res.debug_logs(), res.describe()

    check_run(store, project, res.result["id"], n, 50)
    assert server_errors(proxy) == []
