"""The same training loop through W&B's Python SDK and through cairn's Rust SDK (its
`train` example), both offline: the two transaction logs hold the same history rows and
the same final summary (wall-clock keys aside)."""

import subprocess

from test_cairn_online import TRAIN_BIN, train
from test_offline_sync import read_transaction_log

STEPS, METRICS = 50, 4

# What crates/cairn-sdk/examples/train.rs does, in W&B's SDK.
SCRIPT = """
run = wandb.init(project=PROJECT, id="wandbside1",
                 config={"steps": ARGS["steps"], "metrics": ARGS["metrics"], "lr": 3e-4})
run.define_metric("loss", summary="min,last")
for step in range(ARGS["steps"]):
    loss = 1.0 / (step + 1)
    row = {"loss": loss}
    for k in range(1, ARGS["metrics"]):
        row[f"train/m{k}"] = loss * k
    run.log(row)
report(run_dir=os.path.dirname(run.dir))
run.finish()
"""

WALL_CLOCK = ("_runtime", "_timestamp", "_wandb")


def without_clock(row):
    return {k: v for k, v in row.items() if k not in WALL_CLOCK}


def test_same_rows_and_summary(client):
    assert TRAIN_BIN.exists()
    res = client.run(
        SCRIPT, "side-by-side", args={"steps": STEPS, "metrics": METRICS},
        env=client.env(WANDB_MODE="offline"),
    )
    (wandb_log,) = __import__("pathlib").Path(res.result["run_dir"]).glob("run-*.wandb")
    out, cairn_dir = train(client, "cairnside1", steps=STEPS, metrics=METRICS, WANDB_MODE="offline")
    assert out.returncode == 0, out.stderr
    (cairn_log,) = cairn_dir.glob("run-*.wandb")

    wandb_rows, wandb_summary = read_transaction_log(wandb_log)
    cairn_rows, cairn_summary = read_transaction_log(cairn_log)
    assert len(wandb_rows) == len(cairn_rows) == STEPS
    assert [without_clock(r) for r in cairn_rows] == [without_clock(r) for r in wandb_rows]
    assert without_clock(cairn_summary) == without_clock(wandb_summary)
