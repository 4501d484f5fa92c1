"""Faults between cairn's own uploader (the Rust SDK online) and `cairn server`.

The fault proxy of tests/faults sits in front of the server (see test_faults_wandb.py,
whose fixtures this file shares). Whatever happens on the network, the server must end
up with exactly the rows of the run's transaction log — once each — and a run that could
not finish its upload must be completed by `cairn sync`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import ENTITY
from test_cairn_online import TRAIN_BIN, assert_run_matches_log, cairn_sync
from test_faults_wandb import RETRY_ENV, faulty, setup  # noqa: F401 (fixtures)


def start_train(client, env, run_id, steps, delay_ms, metrics=3):
    env = dict(env, WANDB_RUN_ID=run_id, TRAIN_STEP_DELAY_MS=str(delay_ms),
               WANDB__FILE_STREAM_TRANSMIT_INTERVAL="1")
    return subprocess.Popen(
        [str(TRAIN_BIN), "--steps", str(steps), "--metrics", str(metrics)],
        cwd=client.tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_rows(store, project, run_id, at_least=1, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = store.run(ENTITY, project, run_id)
        if row is not None and row["history_lines"] >= at_least:
            return row
        time.sleep(0.2)
    raise AssertionError(f"{run_id}: fewer than {at_least} rows on the server after {timeout} s")


def finish_train(proc, timeout=240):
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    return Path(stdout.strip().splitlines()[-1]), stderr


def run_dir_of(client, run_id):
    (found,) = (client.wandb_dir / "wandb").glob(f"run-*-{run_id}")
    return found


def test_server_down_for_30s_in_a_10000_step_run(setup, faulty):  # noqa: F811
    client, proxy, env = setup
    project = client.project()
    env = dict(env, WANDB_PROJECT=project)
    proc = start_train(client, env, "down30s001", steps=10_000, delay_ms=4)
    wait_for_rows(faulty.server.store, project, "down30s001", at_least=100)
    proxy.set_mode("down")
    time.sleep(30)
    assert proc.poll() is None or proc.returncode == 0
    proxy.set_mode("pass")
    run_dir, _ = finish_train(proc)
    row = assert_run_matches_log(faulty.server.store, project, "down30s001", run_dir)
    assert row["history_lines"] == 10_000


def test_429_storm(setup, faulty):  # noqa: F811
    client, proxy, env = setup
    project = client.project()
    env = dict(env, WANDB_PROJECT=project)
    proc = start_train(client, env, "storm00001", steps=3000, delay_ms=3)
    wait_for_rows(faulty.server.store, project, "storm00001", at_least=50)
    proxy.set_mode("status", status=429, retry_after=1, count=10, path="file_stream$")
    run_dir, _ = finish_train(proc)
    assert proxy.stats()["modes"]["status"]["injected"] == 10
    assert_run_matches_log(faulty.server.store, project, "storm00001", run_dir)


def test_cut_responses_never_duplicate(setup, faulty):  # noqa: F811
    client, proxy, env = setup
    project = client.project()
    env = dict(env, WANDB_PROJECT=project)
    proxy.set_mode("cut_response", probability=0.3, seed=7, path="file_stream$")
    proc = start_train(client, env, "cutresp001", steps=3000, delay_ms=2)
    run_dir, _ = finish_train(proc)
    assert proxy.stats()["modes"]["cut_response"]["injected"] >= 1
    assert_run_matches_log(faulty.server.store, project, "cutresp001", run_dir)


def test_sigkill_then_cairn_sync(setup, faulty):  # noqa: F811
    client, proxy, env = setup
    project = client.project()
    env = dict(env, WANDB_PROJECT=project)
    proc = start_train(client, env, "killed0001", steps=100_000, delay_ms=2)
    wait_for_rows(faulty.server.store, project, "killed0001", at_least=200)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    run_dir = run_dir_of(client, "killed0001")
    res = cairn_sync(client, run_dir, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no exit record" in res.stderr
    # Every row the writer received is in the log, and on the server exactly once.
    assert_run_matches_log(faulty.server.store, project, "killed0001", run_dir, state="failed")


def test_finish_deadline_when_the_server_is_unreachable(setup, faulty):  # noqa: F811
    client, proxy, env = setup
    project = client.project()
    env = dict(env, WANDB_PROJECT=project, CAIRN_FINISH_DEADLINE="3")
    proxy.set_mode("down")
    started = time.time()
    proc = start_train(client, env, "deadline01", steps=300, delay_ms=0)
    run_dir, stderr = finish_train(proc, timeout=60)
    elapsed = time.time() - started
    proxy.set_mode("pass")
    assert elapsed < 15, f"finish took {elapsed:.1f} s with a 3 s deadline"
    assert "cairn sync" in stderr, stderr
    assert faulty.server.store.run(ENTITY, project, "deadline01") is None
    res = cairn_sync(client, run_dir, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_run_matches_log(faulty.server.store, project, "deadline01", run_dir)


def test_server_stop_reaches_the_training_loop(setup, faulty):  # noqa: F811
    client, proxy, env = setup
    project = client.project()
    env = dict(env, WANDB_PROJECT=project)
    proc = start_train(client, env, "stopme0001", steps=100_000, delay_ms=2)
    wait_for_rows(faulty.server.store, project, "stopme0001", at_least=50)
    faulty.server.request_stop(ENTITY, project, "stopme0001")
    run_dir, stderr = finish_train(proc, timeout=60)
    assert "asked the run to stop" in stderr, stderr
    row = assert_run_matches_log(faulty.server.store, project, "stopme0001", run_dir)
    assert row["history_lines"] < 100_000
