#!/usr/bin/env python3
"""Prove that `cairn dump` decodes `.wandb` logs exactly like W&B's own protobuf classes.

The checked-in fixtures (`fixtures/wandb-0.31/`) are a fixed set: a decoder can be tuned to
them without being right in general. This script makes logs cairn has never seen, by running
the real `wandb` package (0.31, offline mode) on a handful of scenarios chosen to stress the
format: records larger than a 32 KiB block, thousands of small records, fast system metrics
and console output, every value type the SDK logs, offline artifacts, run metadata and a
non-zero exit code. It then decodes each log twice:

* **expected**: with a tiny, independent LevelDB-log reader written here from the format
  description (cairn-store's `src/lib.rs`), every CRC checked, each payload parsed with
  `wandb.proto.wandb_internal_pb2.Record` and converted with
  `google.protobuf.json_format.MessageToDict(preserving_proto_field_name=True)`;
* **actual**: `cairn dump FILE.wandb`, one JSON object per record, in file order.

The two must be equal record by record as parsed JSON values. Before trusting its own reader,
the script checks that it reproduces every `run-*.records.jsonl` of the reference fixtures
(which were produced by a separate reader) from the `.wandb` beside it.

Usage (run with a Python that has `wandb==0.31.0` installed; no network is needed or used):

    python wandb_unseen.py --cairn PATH_TO_CAIRN [--workdir DIR] [--keep]
    python wandb_unseen.py --cairn PATH_TO_CAIRN --fixtures DIR   # compare on existing fixtures

The last line printed is `N passed, M failed` (N, M = numbers of `.wandb` files); the exit code
is 0 only when M == 0 and N > 0.

Comparison rules: objects, arrays, strings, booleans and null must be identical; numbers are
compared with `==` after `json.loads` (so `1` equals `1.0`, but `true` never equals `1`).
NaN and infinities must appear as the strings "NaN", "Infinity", "-Infinity" (protobuf's JSON
mapping); bare `NaN`/`Infinity` tokens in cairn's output are rejected as invalid JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NoReturn

# --------------------------------------------------------------------------------------------
# The `.wandb` container: a 7-byte file header, then the LevelDB log format.
# --------------------------------------------------------------------------------------------

FILE_HEADER = b":W&B" + (0xBEE1).to_bytes(2, "little") + bytes([0])  # magic, then version 0
BLOCK_SIZE = 32768
CHUNK_HEADER_SIZE = 7  # crc32 (u32 LE) | length (u16 LE) | type (u8)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
CHUNK_TYPE_NAMES = {FULL: "FULL", FIRST: "FIRST", MIDDLE: "MIDDLE", LAST: "LAST"}


class LogFormatError(Exception):
    """The file is not a well-formed `.wandb` log (bad header, bad CRC, bad chunk sequence)."""


@dataclass
class LogContents:
    """The logical records of one `.wandb` file, plus what the framing looked like."""

    records: list[bytes] = field(default_factory=list)
    chunks: int = 0
    chunk_types: collections.Counter = field(default_factory=collections.Counter)  # by type name
    zero_length_chunks: list[tuple[int, str]] = field(default_factory=list)  # (offset, type)
    multi_chunk_records: int = 0  # records split over several chunks, i.e. across blocks
    largest_record: int = 0
    padding_bytes: int = 0  # block tails of < 7 bytes skipped by the reader
    # A torn tail: bytes after the last complete record that do not form one (a crash while
    # writing). Never a record; a problem only in files that should be clean.
    torn_tail: str | None = None


def read_log(path: Path) -> LogContents:
    """Split a `.wandb` file into its logical records, checking every chunk's CRC.

    Strict on purpose: the files read here are either fresh or reference fixtures, so any
    checksum mismatch, chunk past its block, or chunk out of sequence raises LogFormatError.
    Only an incomplete final record (torn tail) is tolerated; it is reported, not returned.
    """
    data = path.read_bytes()
    if data[: len(FILE_HEADER)] != FILE_HEADER:
        raise LogFormatError(f"{path}: bad file header {data[:7].hex()} (want {FILE_HEADER.hex()})")

    out = LogContents()
    pending: list[bytes] | None = None  # pieces of a record started by a FIRST chunk
    pending_offset = 0
    pos = len(FILE_HEADER)
    while pos < len(data):
        block_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
        if block_end - pos < CHUNK_HEADER_SIZE:
            # Too small for a chunk header: zero padding, the next chunk starts a new block.
            tail = data[pos:block_end]
            if tail.strip(b"\0"):
                raise LogFormatError(f"{path}: non-zero block padding at offset {pos}: {tail.hex()}")
            out.padding_bytes += len(tail)
            pos = block_end
            continue
        if len(data) - pos < CHUNK_HEADER_SIZE:
            out.torn_tail = f"{len(data) - pos} bytes of a chunk header at offset {pos}"
            break

        header = data[pos : pos + CHUNK_HEADER_SIZE]
        crc = int.from_bytes(header[0:4], "little")
        length = int.from_bytes(header[4:6], "little")
        kind = header[6]
        start, end = pos + CHUNK_HEADER_SIZE, pos + CHUNK_HEADER_SIZE + length
        if header == bytes(CHUNK_HEADER_SIZE):
            raise LogFormatError(f"{path}: zeroed chunk header at offset {pos}")
        if kind not in CHUNK_TYPE_NAMES:
            raise LogFormatError(f"{path}: unknown chunk type {kind} at offset {pos}")
        if end > block_end:
            raise LogFormatError(f"{path}: chunk at offset {pos} (length {length}) crosses its block end")
        if end > len(data):
            out.torn_tail = f"{CHUNK_TYPE_NAMES[kind]} chunk at offset {pos} cut short ({len(data) - start} of {length} bytes)"
            break
        payload = data[start:end]
        # Plain zlib CRC-32 over the type byte followed by the payload; no LevelDB masking.
        actual_crc = zlib.crc32(payload, zlib.crc32(bytes([kind])))
        if actual_crc != crc:
            raise LogFormatError(
                f"{path}: CRC mismatch in {CHUNK_TYPE_NAMES[kind]} chunk at offset {pos}: "
                f"stored {crc:08x}, computed {actual_crc:08x}"
            )

        out.chunks += 1
        out.chunk_types[CHUNK_TYPE_NAMES[kind]] += 1
        if length == 0:
            out.zero_length_chunks.append((pos, CHUNK_TYPE_NAMES[kind]))
        if kind in (FULL, FIRST) and pending is not None:
            raise LogFormatError(f"{path}: {CHUNK_TYPE_NAMES[kind]} chunk at offset {pos} inside the record started at {pending_offset}")
        if kind in (MIDDLE, LAST) and pending is None:
            raise LogFormatError(f"{path}: {CHUNK_TYPE_NAMES[kind]} chunk at offset {pos} without a FIRST chunk")

        if kind == FULL:
            out.records.append(payload)
        elif kind == FIRST:
            pending, pending_offset = [payload], pos
        elif kind == MIDDLE:
            pending.append(payload)  # type: ignore[union-attr]
        else:  # LAST
            pending.append(payload)  # type: ignore[union-attr]
            out.records.append(b"".join(pending))  # type: ignore[arg-type]
            out.multi_chunk_records += 1
            pending = None
        if kind in (FULL, LAST):
            out.largest_record = max(out.largest_record, len(out.records[-1]))
        pos = end

    if pending is not None and out.torn_tail is None:
        size = sum(map(len, pending))
        out.torn_tail = f"record started at offset {pending_offset} has no LAST chunk ({size} bytes so far)"
    return out


# --------------------------------------------------------------------------------------------
# Records: W&B's own protobuf classes and JSON mapping give the expected output.
# --------------------------------------------------------------------------------------------


@dataclass
class DecodedLog:
    """What the independent reader makes of one `.wandb` file."""

    path: Path
    contents: LogContents
    records: list[dict[str, Any]]  # MessageToDict of each Record
    kinds: list[str]  # Record.record_type of each record ("request" for requests, "?" if unset)


def decode_log(path: Path) -> DecodedLog:
    """Read a `.wandb` file and turn each record into its protobuf JSON mapping."""
    from google.protobuf import json_format
    from wandb.proto import wandb_internal_pb2

    contents = read_log(path)
    records, kinds = [], []
    for index, payload in enumerate(contents.records):
        msg = wandb_internal_pb2.Record()
        try:
            msg.ParseFromString(payload)
        except Exception as exc:  # protobuf raises DecodeError (or a plain Exception in upb)
            raise LogFormatError(f"{path}: record {index} is not a wandb_internal.Record: {exc}") from exc
        records.append(json_format.MessageToDict(msg, preserving_proto_field_name=True))
        kinds.append(msg.WhichOneof("record_type") or "?")
    return DecodedLog(path, contents, records, kinds)


def load_jsonl(text: str, source: str) -> list[Any]:
    """Parse one JSON value per non-blank line; reject the non-standard NaN/Infinity tokens."""

    def reject_constant(token: str) -> Any:
        raise ValueError(f"bare {token} is not JSON (protobuf's mapping writes the string \"{token}\")")

    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line, parse_constant=reject_constant))
        except ValueError as exc:
            raise ValueError(f"{source}: line {lineno} is not valid JSON: {exc}: {line[:200]!r}") from None
    return values


# --------------------------------------------------------------------------------------------
# Comparing JSON values, with a short explanation of the first difference.
# --------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def first_difference(expected: Any, actual: Any, path: str = "$") -> str | None:
    """Return a one-line description of where two parsed JSON values first differ, or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            sub = f"{path}.{key}"
            if key not in actual:
                return f"{sub}: missing in cairn (expected {_short(expected[key])})"
            if key not in expected:
                return f"{sub}: unexpected in cairn ({_short(actual[key])})"
            diff = first_difference(expected[key], actual[key], sub)
            if diff:
                return diff
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff = first_difference(e, a, f"{path}[{i}]")
            if diff:
                return diff
        if len(expected) != len(actual):
            return f"{path}: array length {len(actual)} in cairn, expected {len(expected)}"
        return None
    if _is_number(expected) and _is_number(actual):
        same = expected == actual  # 1 == 1.0; NaN never reaches here (it is a string)
    else:
        same = type(expected) is type(actual) and expected == actual
    return None if same else f"{path}: cairn has {_short(actual)}, expected {_short(expected)}"


def compare_records(label: str, expected: list[Any], actual: list[Any], max_reports: int = 10) -> bool:
    """Compare two record lists line by line; print each mismatch (up to max_reports)."""
    mismatches = 0
    for index, (e, a) in enumerate(zip(expected, actual)):
        diff = first_difference(e, a)
        if diff:
            mismatches += 1
            if mismatches <= max_reports:
                print(f"  MISMATCH {label} record {index}: {diff}")
    if mismatches > max_reports:
        print(f"  ... {mismatches - max_reports} more mismatching records in {label}")
    if len(expected) != len(actual):
        mismatches += 1
        print(f"  MISMATCH {label}: cairn printed {len(actual)} records, expected {len(expected)}")
    return mismatches == 0


# --------------------------------------------------------------------------------------------
# Scenarios: small programs run by the real `wandb` package in offline mode.
# --------------------------------------------------------------------------------------------

# Each program runs with WANDB_DIR set to its own folder and that folder as cwd. They use fixed
# run ids, fixed seeds and no wall-clock-dependent values, so only timestamps, host facts and
# system metrics differ between two generations.
PRELUDE = """\
import math, os, random, sys, time
import wandb
PROJECT = "cairn-interop"
def text(rng, n):
    # Mixed 1-4 byte UTF-8, so chunk boundaries can fall inside a multi-byte character.
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 .,;\\n\\"\\\\éß✓λ漢🚀"
    return "".join(rng.choice(alphabet) for _ in range(n))
"""

SCENARIOS: dict[str, str] = {
    # Many small records (most of them FULL chunks) and a few records bigger than a block.
    "large": """
rng = random.Random(20250101)
run = wandb.init(project=PROJECT, id="large001",
                 config={"blob": text(rng, 100_000), "lr": 0.1, "layers": list(range(50))})
for i in range(20_000):
    row = {f"s{j}": ((i * (j + 3)) % 101) / 101.0 for j in range(5)}
    if i == 12_345:
        row["big_text"] = text(rng, 70_000)  # one ~70 KB history value, several chunks
    run.log(row)
run.summary["big_summary"] = text(rng, 100_000)
run.summary["note"] = "done"
run.finish()
""",
    # System metrics sampled twice a second for ~3 s, with stdout/stderr lines meanwhile.
    "stats": """
run = wandb.init(project=PROJECT, id="stats001",
                 settings=wandb.Settings(x_stats_sampling_interval=0.5))
for i in range(30):
    run.log({"loss": 1.0 / (i + 1)})
    print(f"step {i}: loss={1.0 / (i + 1):.4f}")
    if i % 10 == 0:
        print(f"warning at step {i}", file=sys.stderr)
    time.sleep(0.1)
print("progress 1/2", end="\\r"); print("progress 2/2")
run.config["late"] = True
run.finish()
""",
    # Every kind of value and metric feature the SDK writes.
    "types": """
try:
    import numpy as np
except ImportError:
    np = None
run = wandb.init(project=PROJECT, id="types001", config={
    "nested": {"a": {"b": {"c": [1, 2.5, {"d": None}], "e": "x"}}},
    "ключ": "значение", "emoji 🚀": "✓", "max_int": 2**63 - 1, "min_int": -2**63,
    "lr": 0.001, "flags": [True, False], "empty": {},
})
run.define_metric("epoch")
run.define_metric("val/*", step_metric="epoch")
# (wandb 0.31's define_metric has no `goal` argument any more; MetricRecord.goal stays unset.)
run.define_metric("val/loss", summary="min,last")
run.define_metric("val/acc", summary="max,mean,first", step_sync=False)
run.define_metric("val/acc", hidden=False, overwrite=False)
run.define_metric("train/loss", summary="none")
run.define_metric("hidden_metric", hidden=True)
# Partial rows: commit=False accumulates until the next committing log().
for i in range(20):
    run.log({"train/loss": math.exp(-i / 5), "hidden_metric": i}, commit=False)
    run.log({"train/acc": i / 20.0, "nested": {"a": i, "b": {"c": i / 3.0, "d": [i, str(i)]}}})
    if i % 5 == 4:
        run.log({"epoch": i // 5, "val/loss": 1.0 / (i + 2), "val/acc": i / 25.0})
# Special numbers, big ints, odd keys.
run.log({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "neg_zero": -0.0,
         "tiny": 5e-324, "huge": 1.7976931348623157e308, "max_i64": 2**63 - 1,
         "near_max": 2**63 - 2, "min_i64": -2**63, "above_f64": 2**53 + 1,
         "text": "hello\\nworld \\u0000 ✓", "flag": True, "none": None, "list": [1, "two", 3.0]})
run.log({"損失": 0.5, "ключ/метрика": 1, "key with spaces": 2, "a.b.c": 3, "quote\\"key": 4,
         "back\\\\slash": 5, "emoji🚀": 6, "tab\\tkey": 7})
# Explicit steps, with a jump and a commit=False row at an explicit step.
run.log({"explicit": 1}, step=100)
run.log({"explicit_partial": 2}, step=105, commit=False)
run.log({"explicit": 3}, step=105)
run.log({"explicit": 4}, step=1000)
# Media and rich types.
run.log({"hist_manual": wandb.Histogram(np_histogram=([1, 4, 9, 4, 1], [0, 1, 2, 3, 4, 5]))})
table = wandb.Table(columns=["id", "name", "score", "ok"],
                    data=[[i, f"row {i} ✓", i * 0.25, i % 2 == 0] for i in range(8)])
run.log({"table": table})
if np is not None:
    rng = np.random.default_rng(7)
    run.log({"hist_np": wandb.Histogram(rng.normal(size=1000), num_bins=32)})
    pixels = (np.arange(16 * 16 * 3) % 251).astype("uint8").reshape(16, 16, 3)
    run.log({"image": wandb.Image(pixels, caption="gradient")})
run.config.update({"lr": 0.01, "added": "later"}, allow_val_change=True)
run.summary.update({"final": {"score": 0.97, "tags": ["x", "y"]}, "matrix": [[1, 2], [3, 4]]})
run.summary["unicode_summary ✓"] = "値"
run.alert(title="interop alert", text="something happened ✓", level=wandb.AlertLevel.ERROR)
print("types done ✓")
run.finish()
""",
    # Offline artifacts (Record.artifact): a folder, a file and a file:// reference.
    "artifact": """
root = os.path.join(os.environ["WANDB_DIR"], "payload")
os.makedirs(os.path.join(root, "nested", "deeper"), exist_ok=True)
for i in range(6):
    with open(os.path.join(root, f"part{i}.csv"), "w") as f:
        f.write("a,b\\n" + "".join(f"{i},{k}\\n" for k in range(i * 10)))
with open(os.path.join(root, "nested", "deeper", "blob.bin"), "wb") as f:
    f.write(bytes(range(256)) * 40)
with open(os.path.join(root, "nested", "ünï ✓.txt"), "w") as f:
    f.write("unicode file name\\n")
run = wandb.init(project=PROJECT, id="artif001")
run.log({"x": 1})
dataset = wandb.Artifact("interop-dataset", type="dataset", description="a folder ✓",
                         metadata={"rows": 6, "nested": {"k": [1, 2]}})
dataset.add_dir(root)
run.log_artifact(dataset, aliases=["first", "stable"])
model = wandb.Artifact("interop-model", type="model")
model.add_file(os.path.join(root, "part1.csv"), name="weights/part1.csv")
model.add_reference("file://" + os.path.join(root, "part2.csv"))
run.log_artifact(model)
run.log({"x": 2})
run.finish()
""",
    # Run metadata and a non-zero exit code; then a resume-like second run with the same id.
    "tags": """
run = wandb.init(project=PROJECT, id="tags0001", name="display name ✓", tags=["alpha", "beta", "γ"],
                 group="interop-group", job_type="eval", notes="multi-line\\nnotes ✓",
                 config={"seed": 3})
for i in range(10):
    run.log({"loss": 1.0 / (i + 1)})
run.finish(exit_code=3)
# Offline run folders are named by the start second: wait for a new second so the second run
# gets its own folder (otherwise its .wandb already exists and core writes no log).
time.sleep(1.1)
run = wandb.init(project=PROJECT, id="tags0001", resume="allow", tags=["resumed"])
for i in range(5):
    run.log({"loss": 0.05 / (i + 1)})
run.finish()
""",
}


def _kinds(logs: list[DecodedLog]) -> collections.Counter:
    return collections.Counter(kind for log in logs for kind in log.kinds)


def _exit_codes(logs: list[DecodedLog]) -> set[int]:
    return {r["exit"].get("exit_code", 0) for log in logs for r in log.records if "exit" in r}


def coverage_problems(scenario: str, logs: list[DecodedLog]) -> list[str]:
    """What a scenario was meant to put in its logs but did not.

    Guards against a change in the SDK's behaviour quietly turning a scenario into a weaker
    test (say, big values that no longer make records larger than a block).
    """
    kinds = _kinds(logs)
    problems = []
    if scenario == "large":
        if not any(log.contents.chunk_types["MIDDLE"] for log in logs):
            problems.append("no record spans three or more chunks (no MIDDLE chunk)")
        history_sizes = [len(p) for log in logs for p, k in zip(log.contents.records, log.kinds) if k == "history"]
        if max(history_sizes, default=0) <= 2 * BLOCK_SIZE:
            problems.append("no history record larger than two blocks")
        if kinds["history"] < 20_000:
            problems.append(f"only {kinds['history']} history records (want 20,000)")
    elif scenario == "stats":
        if kinds["stats"] < 2:
            problems.append(f"only {kinds['stats']} stats records (want 2 or more)")
        if not kinds["output_raw"]:
            problems.append("no console output records")
    elif scenario == "types":
        problems += [f"no {kind} record" for kind in ("metric", "alert", "config", "artifact", "files") if not kinds[kind]]
    elif scenario == "artifact":
        if kinds["artifact"] < 2:
            problems.append(f"only {kinds['artifact']} artifact records (want 2)")
    elif scenario == "tags":
        if len(logs) != 2:
            problems.append(f"{len(logs)} logs (want 2: a run and its resume-like successor)")
        if 3 not in _exit_codes(logs):
            problems.append("no exit record with exit_code 3")
    return problems


def scenario_env(workdir: Path, scenario_dir: Path) -> dict[str, str]:
    """Environment for one scenario: offline, quiet, everything W&B writes kept in workdir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    state = workdir / ".wandb-state"
    env.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(scenario_dir),
        WANDB_SILENT="true",
        WANDB_DISABLE_GIT="true",  # no git metadata probing
        WANDB_DISABLE_CODE="true",  # no code saving
        WANDB_ERROR_REPORTING="false",  # no Sentry
        WANDB_CONFIG_DIR=str(state / "config"),
        WANDB_CACHE_DIR=str(state / "cache"),
        WANDB_DATA_DIR=str(state / "data"),
        WANDB_ARTIFACT_DIR=str(state / "artifacts"),
        PYTHONHASHSEED="0",
        PYTHONIOENCODING="utf-8",
    )
    return env


def generate(workdir: Path, names: Iterable[str], timeout: float = 300.0) -> dict[str, list[Path]]:
    """Run each scenario program; return the `.wandb` files each one wrote.

    A scenario that exits non-zero, times out, or writes no log stops the whole script with
    the scenario's stderr: a broken generator must not look like a passing comparison.
    """
    programs = workdir / "programs"
    programs.mkdir(parents=True, exist_ok=True)
    produced: dict[str, list[Path]] = {}
    for name in names:
        scenario_dir = workdir / name
        scenario_dir.mkdir(parents=True, exist_ok=True)
        # Prefixed so a scenario named like a stdlib module ("types") cannot shadow it.
        program = programs / f"scenario_{name}.py"
        program.write_text(PRELUDE + SCENARIOS[name], encoding="utf-8")
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, str(program)],
                cwd=scenario_dir,
                env=scenario_env(workdir, scenario_dir),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            fail(f"scenario {name!r} did not finish within {timeout:.0f} s; its stderr:\n{stderr}")
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            fail(f"scenario {name!r} exited with {proc.returncode}; its stderr:\n{proc.stderr}")
        files = sorted(scenario_dir.rglob("run-*.wandb"))
        if not files:
            fail(f"scenario {name!r} wrote no run-*.wandb under {scenario_dir}; its stderr:\n{proc.stderr}")
        print(f"generated {name:<9} {elapsed:6.1f} s  {len(files)} log(s)")
        produced[name] = files
    return produced


def fail(message: str) -> NoReturn:
    """Stop the whole script: something other than a cairn mismatch went wrong."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


# --------------------------------------------------------------------------------------------
# Reader self-check against the reference fixtures, and running cairn.
# --------------------------------------------------------------------------------------------


def expectation_for(log: Path) -> Path:
    """`run-<id>.wandb` -> `run-<id>.records.jsonl` beside it."""
    return log.with_name(log.name[: -len(".wandb")] + ".records.jsonl")


def fixture_logs(root: Path) -> list[Path]:
    """Every `run-*.wandb` under root that has a `.records.jsonl` expectation beside it."""
    return [p for p in sorted(root.rglob("run-*.wandb")) if expectation_for(p).is_file()]


def self_check(root: Path) -> None:
    """Our reader must reproduce every reference `.records.jsonl` exactly, or we stop."""
    logs = fixture_logs(root)
    if not logs:
        fail(f"no run-*.wandb with a .records.jsonl beside it under {root}")
    for log in logs:
        decoded = decode_log(log)
        expected = load_jsonl(expectation_for(log).read_text(encoding="utf-8"), str(expectation_for(log)))
        # Same number of records and the same parsed values, by the rules used for cairn.
        for index, (e, a) in enumerate(zip(expected, decoded.records)):
            diff = first_difference(e, a)
            if diff:
                fail(f"reader self-check failed on {log}, record {index}: {diff.replace('cairn', 'our reader')}")
        if len(expected) != len(decoded.records):
            fail(f"reader self-check failed on {log}: our reader finds {len(decoded.records)} records, expected {len(expected)}")
        torn = f", torn tail ignored: {decoded.contents.torn_tail}" if decoded.contents.torn_tail else ""
        print(f"self-check ok  {log.relative_to(root)}  ({len(expected)} records{torn})")


def default_reference_dir() -> Path | None:
    """Where the reference fixtures are, if the caller did not say (first existing wins)."""
    here = Path(__file__).resolve().parent
    candidates = [os.environ.get("CAIRN_WANDB_FIXTURES")]
    candidates += [str(p / "fixtures" / "wandb-0.31") for p in [here, *here.parents]]
    candidates += ["/work/shared/fixtures/wandb-0.31"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def cairn_dump(cairn: str, log: Path, allow_failure: bool) -> tuple[list[Any] | None, str]:
    """Run `cairn dump LOG`; return (records or None on failure, note)."""
    try:
        proc = subprocess.run([cairn, "dump", str(log)], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"could not run cairn: {exc}"
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 and not (allow_failure and proc.returncode > 0):
        return None, f"cairn dump exited with {proc.returncode}: {stderr[-2000:]}"
    try:
        records = load_jsonl(proc.stdout.decode("utf-8"), f"cairn dump {log.name}")
    except (UnicodeDecodeError, ValueError) as exc:
        return None, str(exc)
    note = f"cairn exit {proc.returncode} on a torn file" if proc.returncode else ""
    return records, note


# --------------------------------------------------------------------------------------------
# Reporting.
# --------------------------------------------------------------------------------------------


def describe_framing(decoded: DecodedLog) -> str:
    c = decoded.contents
    size = decoded.path.stat().st_size
    parts = [
        f"{size} bytes",
        f"{-(-size // BLOCK_SIZE)} block(s)",
        f"{len(c.records)} records in {c.chunks} chunks ("
        + " ".join(f"{name} {c.chunk_types[name]}" for name in CHUNK_TYPE_NAMES.values() if c.chunk_types[name])
        + ")",
        f"{c.multi_chunk_records} spanning blocks",
        f"largest {c.largest_record} B",
    ]
    if c.zero_length_chunks:
        parts.append("zero-length chunks at " + ", ".join(f"{off} ({kind})" for off, kind in c.zero_length_chunks))
    if c.padding_bytes:
        parts.append(f"{c.padding_bytes} padding bytes")
    if c.torn_tail:
        parts.append(f"torn tail: {c.torn_tail}")
    return ", ".join(parts)


def print_kind_counts(title: str, kinds: collections.Counter) -> None:
    listing = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"== {title}: {sum(kinds.values())} records: {listing}")


def run_comparisons(cairn: str, groups: dict[str, list[Path]], expectations: str, root: Path) -> tuple[int, int]:
    """Compare cairn with the expectation for every log; print coverage; return (passed, failed).

    expectations is "reader" (our own decoder, for fresh logs, which must be clean and must
    cover what their scenario is for) or "jsonl" (the `.records.jsonl` beside each fixture
    log; torn tails allowed).
    """
    passed = failed = 0
    all_kinds: collections.Counter = collections.Counter()
    for group, logs in groups.items():
        decoded_logs: list[DecodedLog] = []
        for log in logs:
            try:
                decoded_logs.append(decode_log(log))
            except LogFormatError as exc:
                print(f"FAIL {log.relative_to(root)}: our reader rejects it: {exc}")
                failed += 1
        group_kinds = _kinds(decoded_logs)
        print_kind_counts(group, group_kinds)
        all_kinds.update(group_kinds)
        if expectations == "reader":
            problems = coverage_problems(group, decoded_logs)
            if problems:
                # The logs do not exercise what the scenario is for: they prove nothing.
                print(f"FAIL scenario {group} lacks coverage: " + "; ".join(problems))
                failed += len(decoded_logs)
                continue

        for decoded in decoded_logs:
            label = str(decoded.path.relative_to(root))
            print(f"{label}: {describe_framing(decoded)}")
            if expectations == "jsonl":
                jsonl = expectation_for(decoded.path)
                expected = load_jsonl(jsonl.read_text(encoding="utf-8"), str(jsonl))
            else:
                expected = decoded.records
                if decoded.contents.torn_tail:
                    print(f"FAIL {label}: a fresh log must be clean, but it has a torn tail")
                    failed += 1
                    continue
            actual, note = cairn_dump(cairn, decoded.path, allow_failure=bool(decoded.contents.torn_tail))
            if actual is None:
                print(f"FAIL {label}: {note}")
                failed += 1
            elif compare_records(label, expected, actual):
                print(f"ok   {label}: {len(expected)} records match" + (f" ({note})" if note else ""))
                passed += 1
            else:
                print(f"FAIL {label}")
                failed += 1
    print_kind_counts("all logs", all_kinds)
    return passed, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cairn", required=True, help="path to the cairn binary (runs `cairn dump FILE`)")
    parser.add_argument("--workdir", type=Path, help="where to generate logs (default: a fresh temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    parser.add_argument("--fixtures", type=Path, help="compare on existing fixtures (.records.jsonl) instead of generating")
    parser.add_argument("--reference", type=Path, help="reference fixtures for the reader self-check (default: found near this script)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="generate only these (repeatable)")
    args = parser.parse_args(argv)

    try:
        import wandb  # noqa: F401  (the generator and the expected decoder both need it)
        from wandb.proto import wandb_internal_pb2  # noqa: F401
    except ImportError as exc:
        fail(f"this script needs the wandb package (0.31) in the running Python: {exc}")
    import wandb

    if not wandb.__version__.startswith("0.31."):
        print(f"warning: wandb {wandb.__version__} is not 0.31; formats may differ", file=sys.stderr)
    cairn = shutil.which(args.cairn) or args.cairn
    if not Path(cairn).is_file():
        fail(f"cairn binary not found: {args.cairn}")
    cairn = str(Path(cairn).resolve())

    # 1. Trust our own reader only after it reproduces the reference decodes exactly.
    reference = args.fixtures or args.reference or default_reference_dir()
    if reference is None:
        fail("reference fixtures not found; pass --reference DIR (fixtures/wandb-0.31)")
    print(f"reader self-check against {reference}")
    self_check(reference)

    # 2. Fixture mode: cairn against the checked-in expectations, no generation.
    if args.fixtures:
        groups: dict[str, list[Path]] = collections.defaultdict(list)
        for log in fixture_logs(args.fixtures):
            groups[log.relative_to(args.fixtures).parts[0]].append(log)
        passed, failed = run_comparisons(cairn, dict(groups), "jsonl", args.fixtures)
        print(f"{passed} passed, {failed} failed")
        return 0 if failed == 0 and passed > 0 else 1

    # 3. Generate unseen logs, decode them ourselves, and compare with cairn.
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cairn-wandb-unseen-"))
    workdir = workdir.resolve()
    if args.workdir and workdir.exists() and any(workdir.iterdir()):
        fail(f"workdir {workdir} is not empty; pass an empty or new folder")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}")
    try:
        started = time.monotonic()
        groups = generate(workdir, args.scenario or list(SCENARIOS))
        print(f"generation took {time.monotonic() - started:.1f} s")
        passed, failed = run_comparisons(cairn, groups, "reader", workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
