"""`cairn core` under the unmodified wandb 0.31 SDK: the SDK launches it as its `wandb-core`
(from an overlay of the installed package whose `bin/wandb-core` is the cairn binary), reads
its port file, connects and frames requests. Run handling is not built yet, so `wandb.init`
must fail with cairn's answer naming the request kind — proof that launch, port file,
socket and framing work end to end — and the core must exit when the SDK tears down."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import CAIRN_BIN


def wandb_overlay(root: Path) -> Path:
    """A copy of the installed `wandb` package made of symlinks, with `bin/wandb-core` the
    cairn binary; put its parent first on PYTHONPATH."""
    import wandb

    real = Path(wandb.__file__).parent
    pkg = root / "wandb"
    pkg.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name != "bin":
            (pkg / entry.name).symlink_to(entry)
    (pkg / "bin").mkdir()
    for entry in (real / "bin").iterdir():
        if entry.name != "wandb-core":
            (pkg / "bin" / entry.name).symlink_to(entry)
    (pkg / "bin" / "wandb-core").symlink_to(CAIRN_BIN.resolve())
    return root


def test_the_sdk_launches_cairn_core_and_reads_its_answers(tmp_path):
    overlay = wandb_overlay(tmp_path / "overlay")
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        """
        import os, pathlib, wandb
        core = pathlib.Path(wandb.__file__).parent / "bin" / "wandb-core"
        assert core.resolve() == pathlib.Path(os.environ["EXPECT_CORE"]).resolve(), core
        try:
            wandb.init(project="p", mode="offline")
        except Exception as err:
            print("INIT FAILED:", type(err).__name__, err)
        else:
            print("INIT SUCCEEDED")
        """
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "CAIRN_"))},
        "PYTHONPATH": str(overlay),
        "WANDB_DIR": str(tmp_path),
        "WANDB_CACHE_DIR": str(cache),
        "WANDB_SILENT": "true",
        "EXPECT_CORE": str(CAIRN_BIN),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert "INIT FAILED" in out, out
    assert "cairn core does not support" in out, out
    # The SDK tore the core down at exit: its process is gone and its log says why.
    logs = list((cache / "wandb" / "logs").glob("cairn-core-*.log"))
    assert logs, f"no cairn core log in {cache}"
    text = "\n".join(p.read_text() for p in logs)
    assert "Listening" in text and "Unsupported" in text, text
    leftover = subprocess.run(
        ["pgrep", "-f", str(overlay / "wandb" / "bin" / "wandb-core")],
        capture_output=True,
        text=True,
    )
    assert leftover.stdout.strip() == "", "cairn core still running after the SDK exited"
