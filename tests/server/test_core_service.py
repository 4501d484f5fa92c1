"""`cairn core` under the unmodified wandb 0.31 SDK: the SDK launches it as its `wandb-core`
(from an overlay of the installed package whose `bin/wandb-core` is the cairn binary), reads
its port file, connects, and runs an offline run through it: init, logs with an explicit
step and commit=False, define_metric, summary and config writes, console output, finish with
the footer. Then W&B's own `wandb sync` uploads the log cairn's core wrote. Online runs are
not served yet and must fail with cairn's message, not hang."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

from conftest import CAIRN_BIN, ENTITY, wandb_overlay
from test_core_sync import same_wandb_entry


def core_processes(overlay: Path) -> str:
    found = subprocess.run(
        ["pgrep", "-f", str(overlay / "wandb" / "bin" / "wandb-core")],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip()


def dump_kinds(log: Path) -> dict[str, int]:
    out = subprocess.run(
        [str(CAIRN_BIN), "dump", "--kinds", str(log)], capture_output=True, text=True, check=True
    ).stdout
    return {k: int(n) for k, n in (line.split("\t") for line in out.splitlines() if line)}


def core_env(client, tmp_path: Path, core: str, **extra: str) -> dict[str, str]:
    """A script environment whose SDK runs `core` (`wandb` or `cairn`), with a cache of
    its own."""
    overlay = wandb_overlay(tmp_path / f"overlay-{core}", cairn=core == "cairn")
    return client.env(
        PYTHONPATH=str(overlay), WANDB_CACHE_DIR=str(tmp_path / f"cache-{core}"), **extra
    )


OFFLINE_RUN = """
import pathlib, wandb
core = pathlib.Path(wandb.__file__).parent / "bin" / "wandb-core"
assert core.resolve() == pathlib.Path(os.environ["EXPECT_CORE"]).resolve(), core
run = wandb.init(project=PROJECT, config={"lr": 0.1})
run.define_metric("acc", summary="max")
for i in range(40):
    run.log({"loss": 1.0 / (i + 1), "acc": i / 40, "nested": {"a": i}})
run.log({"loss": 0.5}, step=45)
run.log({"extra": 1}, commit=False)
run.log({"loss": 0.25})
print("hello from the script", flush=True)
print("step now", run.step, flush=True)
run.summary["best"] = 0.99
run.config["extra"] = 3
report(id=run.id, run_dir=os.path.dirname(run.dir), step=run.step,
       summary_loss=run.summary["loss"])
import time
time.sleep(0.6)
run.finish()
"""


def test_an_offline_run_through_cairn_core_then_wandb_sync(client, store, tmp_path):
    overlay = wandb_overlay(tmp_path / "overlay")
    project = client.project()
    env = client.env(
        WANDB_MODE="offline",
        WANDB_SILENT="",
        PYTHONPATH=str(overlay),
        WANDB_CACHE_DIR=str(tmp_path / "cache"),
        EXPECT_CORE=str(CAIRN_BIN.resolve()),
        WANDB_X_STATS_SAMPLING_INTERVAL="0.1",
    )
    res = client.run(OFFLINE_RUN, project, env=env)
    # W&B's step rules, answered by cairn's handler (W&B's own core gives the same): 40
    # rows, then a row at step 45 that `extra` (commit=False) and the last `loss` join
    # before it is committed; the next step is 46.
    assert res.result["step"] == 46, res.result
    assert res.result["summary_loss"] == 0.25
    assert "step now 46" in res.stdout
    # The footer the SDK prints from cairn's answers (get_summary, sampled_history).
    assert "Run summary:" in res.stderr and "best 0.99" in res.stderr, res.stderr
    assert "Run history:" in res.stderr, res.stderr
    for _ in range(50):
        if not core_processes(overlay):
            break
        time.sleep(0.1)
    assert not core_processes(overlay), "cairn core still running after the SDK exited"

    run_dir = Path(res.result["run_dir"])
    (log,) = run_dir.glob("run-*.wandb")
    kinds = dump_kinds(log)
    assert kinds["history"] == 41, kinds
    assert kinds["run"] == 1 and kinds["exit"] == 1 and kinds["metric"] == 1, kinds
    assert "hello from the script" in (run_dir / "files" / "output.log").read_text()
    # The machine and the script, probed by cairn's core; system metrics by its own monitor.
    assert kinds.get("environment") == 1, kinds
    assert kinds.get("stats", 0) >= 1, kinds
    metadata = json.loads((run_dir / "files" / "wandb-metadata.json").read_text())
    assert metadata.get("python") and metadata.get("host"), metadata

    # W&B's own `wandb sync` (its own core) uploads the log cairn's core wrote.
    sync = client.cli("sync", "--project", project, str(run_dir))
    assert sync.returncode == 0, f"wandb sync failed\n{sync.stdout}\n{sync.stderr}"
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None and row["state"] == "finished" and row["exitcode"] == 0, row
    history = store.history(row["id"])
    assert [h["_step"] for h in history] == [*range(40), 45]
    assert history[-1]["extra"] == 1 and history[-1]["loss"] == 0.25
    assert row["summary"]["best"] == 0.99
    assert row["summary"]["acc"] == {"max": 39 / 40}
    assert row["config"]["lr"] == {"value": 0.1}


def test_an_online_run_through_cairn_core(client, store, tmp_path):
    """Login (the API proxy), a run uploaded as it goes, console, summary, config and
    `wandb.Api()` reading it back through the core."""
    overlay = wandb_overlay(tmp_path / "overlay")
    project = client.project()
    env = client.env(
        WANDB_SILENT="",
        PYTHONPATH=str(overlay),
        WANDB_CACHE_DIR=str(tmp_path / "cache"),
        EXPECT_CORE=str(CAIRN_BIN.resolve()),
    )
    res = client.run(
        """
        run = wandb.init(project=PROJECT, config={"lr": 0.01})
        for i in range(30):
            run.log({"loss": 1.0 / (i + 1)})
        print("online console line", flush=True)
        run.summary["best"] = 0.5
        report(id=run.id, entity=run.entity, url=run.url)
        run.finish()
        api = wandb.Api()
        read = api.run(f"{run.entity}/{PROJECT}/{run.id}")
        report(id=run.id, entity=run.entity, url=run.url, api_best=read.summary["best"],
               api_rows=len(read.history(samples=1000, pandas=False)))
        """,
        project,
        env=env,
    )
    assert res.result["entity"] == ENTITY, res.result
    assert res.result["api_best"] == 0.5 and res.result["api_rows"] == 30, res.result
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None and row["state"] == "finished" and row["exitcode"] == 0, row
    assert [h["_step"] for h in store.history(row["id"])] == list(range(30))
    assert row["summary"]["best"] == 0.5
    assert row["config"]["lr"] == {"value": 0.01}
    assert any("online console line" in line for line in store.console(row["id"]))
    for _ in range(50):
        if not core_processes(overlay):
            break
        time.sleep(0.1)
    assert not core_processes(overlay), "cairn core still running after the SDK exited"


def test_a_wrong_api_key_fails_init_with_the_servers_message(client, tmp_path):
    overlay = wandb_overlay(tmp_path / "overlay")
    env = client.env(
        api_key="local-" + "x" * 40,
        PYTHONPATH=str(overlay),
        WANDB_CACHE_DIR=str(tmp_path / "cache"),
        WANDB_INIT_TIMEOUT="30",
    )
    res = client.run(
        "import wandb\nwandb.init(project=PROJECT)\n", client.project(), env=env, expect_rc=None
    )
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "invalid api key" in out.lower() or "401" in out, out[-2000:]


def test_a_killed_script_loses_nothing_it_logged(client, tmp_path):
    """W&B's core exits when its parent dies and keeps only the log's header; cairn's core
    drains the socket and finishes the run, so every logged row is in the log."""
    overlay = wandb_overlay(tmp_path / "overlay")
    env = client.env(
        WANDB_MODE="offline",
        PYTHONPATH=str(overlay),
        WANDB_CACHE_DIR=str(tmp_path / "cache"),
    )
    res = client.run(
        """
        import signal, time, wandb
        run = wandb.init(project=PROJECT)
        for i in range(300):
            run.log({"loss": 1.0 / (i + 1)})
        report(run_dir=os.path.dirname(run.dir))
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        client.project(),
        env=env,
        expect_rc=None,
    )
    assert res.returncode == -9, res.describe()
    for _ in range(100):
        if not core_processes(overlay):
            break
        time.sleep(0.1)
    assert not core_processes(overlay), "cairn core still running after its parent died"
    (log,) = Path(res.result["run_dir"]).glob("run-*.wandb")
    kinds = dump_kinds(log)
    assert kinds.get("history") == 300, kinds
    assert kinds.get("exit") == 1, kinds


def test_cairn_core_install_and_uninstall(client, tmp_path):
    import sys

    overlay = wandb_overlay(tmp_path / "overlay", cairn=False)
    bin_dir = overlay / "wandb" / "bin"
    w_and_b_core = (bin_dir / "wandb-core").resolve()
    env = {**os.environ, "PYTHONPATH": str(overlay)}

    def cairn_core(*args):
        return subprocess.run(
            [str(CAIRN_BIN), "core", *args, "--python", sys.executable],
            env=env, capture_output=True, text=True, timeout=60,
        )

    done = cairn_core("install")
    assert done.returncode == 0, done.stderr
    assert "installed cairn core as" in done.stdout, done.stdout
    assert not (bin_dir / "wandb-core").is_symlink(), "a copy, not a link"
    assert (bin_dir / "wandb-core.orig").resolve() == w_and_b_core
    assert (bin_dir / ".cairn-core").exists()
    assert cairn_core("install").returncode == 0, "installing again is harmless"
    assert (bin_dir / "wandb-core.orig").resolve() == w_and_b_core

    # The SDK now runs cairn's core: its log appears in the cache folder.
    cache = tmp_path / "cache"
    res = client.run(
        "run = wandb.init(project=PROJECT)\nrun.log({'x': 1})\nrun.finish()\n",
        client.project(),
        env=client.env(WANDB_MODE="offline", PYTHONPATH=str(overlay), WANDB_CACHE_DIR=str(cache)),
    )
    assert res.returncode == 0
    assert list((cache / "wandb" / "logs").glob("cairn-core-*.log")), "cairn core did not run"

    done = cairn_core("uninstall")
    assert done.returncode == 0, done.stderr
    assert (bin_dir / "wandb-core").resolve() == w_and_b_core
    assert not (bin_dir / ".cairn-core").exists()
    again = cairn_core("uninstall")
    assert again.returncode == 2 and "not installed" in again.stdout


def test_artifacts_through_cairn_core(client, store, tmp_path):
    """`log_artifact` (answered once the uploader committed it), then another run's
    `use_artifact` and download — the SDK's own GraphQL goes through the core's API proxy."""
    overlay = wandb_overlay(tmp_path / "overlay")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello artifacts\n")
    (data / "b.bin").write_bytes(bytes(range(256)) * 40)
    env = client.env(PYTHONPATH=str(overlay), WANDB_CACHE_DIR=str(tmp_path / "cache"))
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        art = wandb.Artifact("core-ds", type="dataset")
        art.add_dir(ARGS["data"])
        logged = run.log_artifact(art, aliases=["first"])
        logged.wait()
        report(version=logged.version, id=logged.id, producer=run.id)
        run.finish()
        run2 = wandb.init(project=PROJECT)
        used = run2.use_artifact("core-ds:first")
        path = used.download(root=ARGS["dest"])
        files = sorted(os.listdir(path))
        report(files=files, text=open(os.path.join(path, "a.txt")).read(), consumer=run2.id)
        run2.finish()
        """,
        client.project(),
        args={"data": str(data), "dest": str(tmp_path / "dest")},
        env=env,
    )
    assert res.result["version"] == "v0", res.result
    assert res.result["files"] == ["a.txt", "b.bin"], res.result
    assert res.result["text"] == "hello artifacts\n"
    assert (tmp_path / "dest" / "b.bin").read_bytes() == (data / "b.bin").read_bytes()


def test_a_child_process_attaches_to_its_parents_run(client, store, tmp_path):
    """A spawned child gets the parent's run (inform_attach + attach on its own connection)
    and logs into it; the parent finishes the run with the child's rows in it."""
    overlay = wandb_overlay(tmp_path / "overlay")
    env = client.env(PYTHONPATH=str(overlay), WANDB_CACHE_DIR=str(tmp_path / "cache"))
    project = client.project()
    res = client.run(
        """
        import multiprocessing as mp

        def child(run):
            run.log({"child_metric": 7})

        if __name__ == "__main__":
            run = wandb.init(project=PROJECT, config={"lr": 0.5})
            run.log({"parent_metric": 1})
            p = mp.get_context("spawn").Process(target=child, args=(run,))
            p.start()
            p.join()
            report(id=run.id, child_exit=p.exitcode)
            run.finish()
        """,
        project,
        env=env,
    )
    assert res.result["child_exit"] == 0, res.describe()
    row = store.run(ENTITY, project, res.result["id"])
    assert row is not None and row["state"] == "finished", row
    history = store.history(row["id"])
    assert any(h.get("parent_metric") == 1 for h in history), history
    assert any(h.get("child_metric") == 7 for h in history), history
    assert row["summary"]["child_metric"] == 7


def test_warnings_reach_the_user_and_unfinished_runs_end_with_a_footer(client, tmp_path):
    """A step that goes back is dropped with a warning the SDK prints (internal_messages);
    a script that never calls finish has its run finished by the core, which prints where
    the run is, as W&B's core does."""
    overlay = wandb_overlay(tmp_path / "overlay")
    env = client.env(
        WANDB_MODE="offline",
        WANDB_SILENT="",
        PYTHONPATH=str(overlay),
        WANDB_CACHE_DIR=str(tmp_path / "cache"),
    )
    res = client.run(
        """
        import time
        run = wandb.init(project=PROJECT)
        run.log({"a": 1}, step=5)
        run.log({"a": 2}, step=3)
        run.log({"a": 3}, step=6)
        time.sleep(1.0)
        report(run_dir=os.path.dirname(run.dir))
        """,
        client.project(),
        env=env,
    )
    out = res.stdout + res.stderr
    assert "step 3 dropped" in out, out[-3000:]
    assert "wandb sync" in res.stdout, res.stdout[-2000:]
    (log,) = Path(res.result["run_dir"]).glob("run-*.wandb")
    kinds = dump_kinds(log)
    assert kinds.get("history") == 2 and kinds.get("exit") == 1, kinds


def test_the_online_footer_counts_the_files_cairn_core_uploaded(client, tmp_path):
    overlay = wandb_overlay(tmp_path / "overlay")
    env = client.env(
        WANDB_SILENT="", PYTHONPATH=str(overlay), WANDB_CACHE_DIR=str(tmp_path / "cache")
    )
    res = client.run(
        """
        run = wandb.init(project=PROJECT)
        run.log({"x": 1})
        print("a console line", flush=True)
        run.finish()
        """,
        client.project(),
        env=env,
    )
    found = re.search(r"Synced (\d+) W&B file", res.stderr)
    assert found and int(found.group(1)) >= 3, res.stderr[-3000:]


RICH_RUN = """
run = wandb.init(project=PROJECT, id=ARGS["id"], name="rich run", tags=["a", "b"],
                 notes="some notes", group="g1", job_type="train", save_code=True,
                 config={"lr": 0.01, "opt": {"name": "adam", "betas": [0.9, 0.999]}})
run.define_metric("val/acc", summary="max")
run.define_metric("epoch_loss", step_metric="epoch")
for i in range(60):
    run.log({"loss": 1.0 / (i + 1), "nested": {"x": i, "y": [i, i + 1]}, "text": f"s{i}"})
    if i % 10 == 9:
        run.log({"val/acc": i / 100}, commit=False)
        run.log({"epoch": i // 10, "epoch_loss": 0.5 - i / 200})
run.log({"late": 1}, step=70)
run.log({"late": 2}, step=65)
run.log({"per_class": [0.5, float("inf"), -float("inf")]})  # non-finite inside a list
print("console one", flush=True)
print("console two", flush=True)
print("padded  ", flush=True)  # W&B's core shows "padded"
print("x", "y", flush=True)
run.summary["unset"] = 1
run.summary["unset"] = None  # W&B's core drops the key
run.summary["best"] = 0.97
run.summary.update({"extra": {"deep": 1}})
run.config.update({"batch": 32})
run.name = "renamed"
run.finish()
"""


def test_the_same_script_stores_the_same_data_under_either_core(client, store, tmp_path):
    """One script, W&B's core then cairn's, into two projects: the server ends up with the
    same run (names, tags, notes, config, summary, history, console, run files)."""
    rows = {}
    for core in ("wandb", "cairn"):
        project = client.project(f"same-{core}")
        env = core_env(client, tmp_path, core)
        client.run(RICH_RUN, project, args={"id": f"same{core}"}, env=env)
        rows[core] = store.run(ENTITY, project, f"same{core}")
    w, c = rows["wandb"], rows["cairn"]
    assert w is not None and c is not None
    for key in ("state", "exitcode", "display_name", "notes", "group_name", "job_type"):
        assert w[key] == c[key], (key, w[key], c[key])
    assert sorted(w["tags"]) == sorted(c["tags"])

    def plain(config):
        return {k: v for k, v in config.items() if k != "_wandb"}

    assert plain(w["config"]) == plain(c["config"])
    assert "t" in c["config"]["_wandb"]["value"]
    # Metric definitions as W&B keeps them; the script's environment (its interpreter and
    # arguments, not the core's) under the same field names.
    assert same_wandb_entry(c["config"], w["config"])
    ww, cw = w["config"]["_wandb"]["value"], c["config"]["_wandb"]["value"]
    (w_env,), (c_env,) = ww["e"].values(), cw["e"].values()
    for key in ("executable", "os", "python", "host", "root"):  # not the script's file name
        assert c_env.get(key) == w_env.get(key), (key, c_env.get(key), w_env.get(key))

    def no_clock(row):
        return {k: v for k, v in row.items() if k not in ("_runtime", "_timestamp")}

    assert [no_clock(h) for h in store.history(w["id"])] == [
        no_clock(h) for h in store.history(c["id"])
    ]
    skip = ("_runtime", "_timestamp", "_wandb")
    assert {k: v for k, v in w["summary"].items() if k not in skip} == {
        k: v for k, v in c["summary"].items() if k not in skip
    }

    def texts(run_id):
        from conftest import parse_console_line

        return [parse_console_line(line)[2] for line in store.console(run_id)]

    assert texts(w["id"]) == texts(c["id"])
    # Spelled out, as W&B's core has them (cairn's core once lost the list, kept the None
    # and the trailing spaces).
    assert "padded" in texts(c["id"]) and "x y" in texts(c["id"])
    assert "unset" not in c["summary"]
    inf = float("inf")
    assert [h["per_class"] for h in store.history(c["id"]) if "per_class" in h] == [
        [0.5, inf, -inf]
    ]
    standard = {"config.yaml", "wandb-summary.json", "wandb-metadata.json", "output.log"}
    assert standard <= set(store.files(w["id"])), sorted(store.files(w["id"]))
    assert standard <= set(store.files(c["id"])), sorted(store.files(c["id"]))
    # `save_code=True`: the script itself (each run's has its own name), under code/.
    for run in (w, c):
        code = [name for name in store.files(run["id"]) if name.startswith("code/")]
        assert len(code) == 1 and code[0].endswith(".py"), (run["name"], code)


class FeatureServer:
    """A forwarder to the cairn server that plays the parts of W&B's cloud cairn's server
    does not have: it announces `MARK_RUN_FILES_UPLOADED` (and records the
    `markRunFilesUploaded` mutations), lists two parquet exports (served at `/exports/…`,
    signed-looking URLs) with a live row, and answers `createCustomChart`. Everything else
    goes to the real server unchanged — after `delay` seconds for run-file announcements
    and filestream requests (a slow network)."""

    def __init__(self, upstream: str, delay: float = 0.0):
        import http.server
        import threading
        import urllib.error
        import urllib.request

        self.seen: list[dict] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def reply(self, code, data, headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path.startswith("/exports/"):
                    return self.reply(200, b"PAR1" + self.path.split("?")[0].encode())
                if self.path == "/graphql" and body:
                    fake = owner.fake(json.loads(body))
                    if fake is not None:
                        data = json.dumps({"data": fake}).encode()
                        return self.reply(200, data, [("Content-Type", "application/json")])
                if delay and (b"CreateRunFiles" in (body or b"") or "file_stream" in self.path):
                    time.sleep(delay)
                request = urllib.request.Request(upstream + self.path, body, method=self.command)
                for k, v in self.headers.items():
                    if k.lower() not in ("host", "content-length", "connection"):
                        request.add_header(k, v)
                try:
                    answer = urllib.request.urlopen(request, timeout=60)
                except urllib.error.HTTPError as e:
                    answer = e
                skip = ("transfer-encoding", "content-length", "connection")
                headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in skip]
                self.reply(answer.status, answer.read(), headers)

            do_GET = do_POST = do_PUT = handle_any

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fake(self, request: dict):
        op, variables = request.get("operationName"), request.get("variables") or {}
        if op == "ServerFeaturesQuery":
            names = ["MARK_RUN_FILES_UPLOADED", "FILESTREAM_GZIP"]
            return {"serverInfo": {"features": [{"name": n, "isEnabled": True} for n in names]}}
        if op == "MarkRunFilesUploaded":
            self.seen.append({"op": op, **variables})
            return {"markRunFilesUploaded": {"success": True}}
        if op == "RunParquetHistory":
            urls = [f"{self.url}/exports/{i}.parquet?sig=x" for i in range(2)]
            history = {"parquetUrls": urls, "liveData": [{"_step": 7}]}
            return {"project": {"run": {"parquetHistory": history}}}
        if op == "CreateCustomChart":
            self.seen.append({"op": op, **variables})
            return {"createCustomChart": {"chart": {"id": f"{variables['entity']}/chart-id"}}}
        return None

    def close(self):
        self.httpd.shutdown()


API_WRITES = """
import pathlib
from wandb.apis.public.runhistory import IncompleteRunHistoryError
api = wandb.Api(timeout=60)
run = api.run(ARGS["path"])
up = pathlib.Path(ARGS["root"]) / "up.txt"
up.parent.mkdir(parents=True, exist_ok=True)
up.write_text("uploaded through " + ARGS["core"])
f = run.upload_file(str(up), root=ARGS["root"])
try:
    run.download_history_exports(ARGS["dir"])
    complete = "no error"
except IncompleteRunHistoryError:
    complete = "incomplete"
got = run.download_history_exports(ARGS["dir"], require_complete_history=False)
chart = api.create_custom_chart(entity=run.entity, name="c1", display_name="C",
                                spec_type="vega2", access="private", spec={"mark": "bar"})
report(file=f.name, complete=complete, live=got.contains_live_data, errors=got.errors,
       paths=sorted(pathlib.Path(p).name for p in got.paths),
       bytes=sorted(pathlib.Path(p).read_text() for p in got.paths), chart=chart)
"""


def test_public_api_writes_send_the_same_requests_under_either_core(client, store, tmp_path):
    """`run.upload_file` (with the server feature that makes the SDK confirm the upload),
    `download_history_exports` of a server that exports parquet, and
    `create_custom_chart`: W&B's core and cairn's give the user the same results and the
    server the same requests."""
    project = client.project()
    client.run('run = wandb.init(project=PROJECT, id="apiwrites1")\nrun.finish()\n', project)
    server = FeatureServer(client.server.base_url)
    results = {}
    try:
        for core in ("wandb", "cairn"):
            env = core_env(client, tmp_path, core, WANDB_BASE_URL=server.url)
            res = client.run(
                API_WRITES,
                project,
                env=env,
                args={
                    "path": f"{ENTITY}/{project}/apiwrites1",
                    "core": core,
                    "root": str(tmp_path / f"root-{core}"),
                    "dir": str(tmp_path / f"exports-{core}"),
                },
            )
            results[core] = res.result
    finally:
        server.close()
    w, c = results["wandb"], results["cairn"]
    assert w == c, (w, c)
    assert c["complete"] == "incomplete" and c["live"] is True and not c["errors"]
    names = [f"{ENTITY}_{project}_apiwrites1_{i}.runhistory.parquet" for i in range(2)]
    assert c["paths"] == names
    assert c["bytes"] == ["PAR1/exports/0.parquet", "PAR1/exports/1.parquet"]
    assert c["chart"] == f"{ENTITY}/chart-id"
    marks = [s for s in server.seen if s["op"] == "MarkRunFilesUploaded"]
    expected = {"entity": ENTITY, "project": project, "run": "apiwrites1", "files": ["up.txt"]}
    assert marks == [{"op": "MarkRunFilesUploaded", **expected}] * 2, server.seen
    charts = [s for s in server.seen if s["op"] == "CreateCustomChart"]
    assert len(charts) == 2 and charts[0] == charts[1], charts
    assert charts[0]["chartType"] == "vega2" and charts[0]["access"] == "PRIVATE"
    row = store.run(ENTITY, project, "apiwrites1")
    assert store.files(row["id"])["up.txt"]["uploaded"] == 1


SLOW_FINISH = """
run = wandb.init(project=PROJECT)
for i in range(5):
    run.log({"a": i})
with open("weights.bin", "wb") as f:
    f.write(b"w" * 300_000)
run.save("weights.bin", policy="end")
artifact = wandb.Artifact("model", "model")
artifact.add_file("weights.bin")
run.log_artifact(artifact).wait()
run.finish()
"""


def test_a_slow_finish_shows_what_it_waits_for_under_either_core(client, tmp_path):
    """W&B's SDK polls its core for the operations in flight while `finish()` waits and
    prints them; over a slow network both cores have something to show, and their footers
    count the same files (artifact files include the manifest)."""
    server = FeatureServer(client.server.base_url, delay=1.5)
    shown, synced = {}, {}
    try:
        for core in ("wandb", "cairn"):
            env = core_env(client, tmp_path, core, WANDB_BASE_URL=server.url, WANDB_SILENT="")
            res = client.run(SLOW_FINISH, client.project(core), env=env)
            lines = [line.removeprefix("wandb: ") for line in res.stderr.splitlines()]
            shown[core] = [line for line in lines if line.startswith(("uploading", "updating"))]
            synced[core] = [line for line in lines if line.startswith("Synced ")]
    finally:
        server.close()
    assert shown["wandb"], "W&B's core showed nothing: the network was not slow enough"
    assert shown["cairn"], f"cairn's core showed nothing while finish() waited: {synced}"
    assert synced["cairn"] == synced["wandb"], synced


SYSTEM_METRICS = """
import time
run = wandb.init(project=PROJECT, mode="offline", settings=wandb.Settings(
    x_stats_sampling_interval=0.2, x_stats_buffer_size=3))
deadline = time.time() + 20
seen = {}
while time.time() < deadline:
    seen = run._system_metrics
    if seen and min(len(v) for v in seen.values()) == 3:
        break
    time.sleep(0.2)
time.sleep(0.5)
later = run._system_metrics
run.finish()
report(
    keys=sorted(seen),
    counts=sorted({len(v) for v in later.values()}),
    numbers=all(isinstance(x, float) for v in later.values() for _, x in v),
    ordered=all([t for t, _ in v] == sorted(t for t, _ in v) for v in later.values()),
    moved=any(later[k][-1][0] > seen[k][-1][0] for k in later if k in seen),
)
"""

SYSTEM_METRICS_DEFAULT = """
run = wandb.init(project=PROJECT, mode="offline",
                 settings=wandb.Settings(x_stats_sampling_interval=0.2))
import time
time.sleep(1)
report(system=run._system_metrics)
run.finish()
"""


def test_system_metric_samples_are_kept_as_asked_under_either_core(client, tmp_path):
    """`run._system_metrics` gives the latest `x_stats_buffer_size` samples of each
    system metric, oldest first, and none when no buffer was asked for — under either
    core."""
    got = {}
    for core in ("wandb", "cairn"):
        env = core_env(client, tmp_path, core)
        got[core] = client.run(SYSTEM_METRICS, client.project(core), env=env).result
        default = client.run(SYSTEM_METRICS_DEFAULT, client.project(core), env=env).result
        assert default == {"system": {}}, (core, default)
    for core, res in got.items():
        assert res["counts"] == [3], (core, res)
        assert res["numbers"] and res["ordered"] and res["moved"], (core, res)
    assert "cpu" in got["cairn"]["keys"], got
    assert got["cairn"]["keys"] == got["wandb"]["keys"], got
