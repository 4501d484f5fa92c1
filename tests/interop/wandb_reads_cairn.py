#!/usr/bin/env python3
"""Check that W&B's own protobuf classes read the logs cairn's SDK writes.

Runs cairn's `train` example (offline, in a temporary WANDB_DIR) for a few step/metric
shapes, then decodes each `.wandb` log with a strict independent reader (every CRC and
chunk sequence checked, no torn tail allowed) and `wandb.proto.wandb_internal_pb2.Record`,
and checks that the records are what W&B writes for the same calls:

* the first record is a header, the second the run (with the config the example set);
* one history record per step, with `_step` 0, 1, ..., N-1, the example's values
  (`loss` = 1 / (step + 1)) and `_runtime` / `_timestamp`;
* the final summary (all summary records folded in order) holds `loss` as
  `{"min": ..., "last": ...}` (the example's `define_metric`) and `_step` N-1;
* the last record is the exit record, with exit code 0;
* record numbers are 1, 2, 3, ... with no gap;
* `wandb sync --dry-run` lists the run folder as a run to sync.

Usage: python wandb_reads_cairn.py --train PATH_TO_TRAIN_EXAMPLE
Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wandb_unseen import decode_log  # noqa: E402  (the strict reader + W&B's classes)


def key_of(item: dict) -> str:
    return item.get("key") or ".".join(item.get("nested_key", []))


def parse_value(text: str):
    if text in ("NaN", "Infinity", "-Infinity"):
        return text
    return json.loads(text)


def check_log(log: Path, steps: int, metrics: int) -> list[str]:
    """Problems found in one log (empty when it is right)."""
    problems: list[str] = []
    decoded = decode_log(log)
    if decoded.contents.torn_tail:
        problems.append(f"torn tail: {decoded.contents.torn_tail}")
    records, kinds = decoded.records, decoded.kinds
    if kinds[:2] != ["header", "run"]:
        problems.append(f"starts with {kinds[:2]}, not header, run")
    if kinds[-1:] != ["exit"]:
        problems.append(f"ends with {kinds[-1:]}, not exit")
    elif records[-1]["exit"].get("exit_code", 0) != 0:
        problems.append(f"exit code {records[-1]['exit'].get('exit_code')}")
    nums = [int(r.get("num", "0")) for r in records]
    if nums != list(range(1, len(records) + 1)):
        problems.append("record numbers are not 1, 2, 3, ...")
    run = records[1].get("run", {})
    config = {i["key"]: parse_value(i["value_json"]) for i in run.get("config", {}).get("update", [])}
    if config.get("steps") != steps or config.get("metrics") != metrics:
        problems.append(f"run config {config}")
    rows = [r["history"] for r in records if "history" in r]
    if len(rows) != steps:
        problems.append(f"{len(rows)} history records for {steps} steps")
    for expected_step, row in enumerate(rows):
        values = {key_of(i): parse_value(i["value_json"]) for i in row["item"]}
        if values.get("_step") != expected_step or int(row.get("step", {}).get("num", "0")) != expected_step:
            problems.append(f"row {expected_step} has _step {values.get('_step')}")
            break
        if abs(values.get("loss", -1) - 1.0 / (expected_step + 1)) > 1e-12:
            problems.append(f"row {expected_step} has loss {values.get('loss')}")
            break
        if "_runtime" not in values or "_timestamp" not in values:
            problems.append(f"row {expected_step} lacks _runtime or _timestamp")
            break
        if len(values) != metrics + 3:
            problems.append(f"row {expected_step} has {len(values)} values, expected {metrics + 3}")
            break
    summary: dict = {}
    for r in records:
        for item in r.get("summary", {}).get("update", []):
            summary[key_of(item)] = parse_value(item["value_json"])
    last_loss = 1.0 / steps
    if summary.get("loss") != {"min": last_loss, "last": last_loss}:
        problems.append(f"summary loss {summary.get('loss')}")
    if summary.get("_step") != steps - 1:
        problems.append(f"summary _step {summary.get('_step')}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="path to cairn's built `train` example")
    args = parser.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="cairn-wandb-reads-") as tmp:
        for steps, metrics in [(1, 1), (500, 10), (50, 400)]:
            label = f"train --steps {steps} --metrics {metrics}"
            env = dict(os.environ, WANDB_DIR=tmp, WANDB_CONSOLE="off", WANDB_MODE="offline")
            done = subprocess.run(
                [args.train, "--steps", str(steps), "--metrics", str(metrics)],
                env=env, capture_output=True, text=True, timeout=120,
            )
            if done.returncode != 0:
                print(f"FAIL {label}: exit {done.returncode}: {done.stderr.strip()}")
                failed += 1
                continue
            run_dir = Path(done.stdout.strip().splitlines()[-1])
            if not run_dir.is_absolute():
                run_dir = Path(tmp) / run_dir
            logs = sorted(run_dir.glob("run-*.wandb"))
            problems = check_log(logs[0], steps, metrics) if logs else ["no .wandb file"]
            dry = subprocess.run(
                [str(Path(sys.executable).parent / "wandb"), "sync", "--dry-run", str(run_dir)],
                env=dict(env, WANDB_API_KEY="x" * 40), capture_output=True, text=True, timeout=120,
            )
            if run_dir.name not in dry.stdout + dry.stderr:
                problems.append(f"wandb sync --dry-run does not list the run: {dry.stdout} {dry.stderr}")
            if problems:
                failed += 1
                for p in problems:
                    print(f"FAIL {label}: {p}")
            else:
                passed += 1
                print(f"ok   {label}: {len(decode_log(logs[0]).records)} records read by wandb's classes")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
