"""Fixtures for the web UI tests: one `cairn server` on SQLite, seeded once (seed.py), and a
runner for the browser script e2e.mjs (Chromium driven by playwright-core).

Reuses tests/server/conftest.py (the server and wandb-client harness), loaded under its own
module name so that it does not clash with this conftest.

Environment:
  CAIRN_BIN, CAIRN_TRAIN_BIN   as for tests/server (defaults: target/debug/cairn, target/debug/examples/train)
  CAIRN_CHROMIUM               the Chromium binary (default: what scripts/browser-env prints)
  CAIRN_UI_SCREENSHOTS         where screenshots go (default: target/ui-screenshots)
  CAIRN_UI_HEADFUL             unset: headless (set it to watch the browser, with a display)
  CAIRN_TEST_KEEP              keep the server's data dir (tests/server's meaning)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "cairn_server_harness", _HERE.parent / "server" / "conftest.py"
)
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)

REPO = harness.REPO
ENTITY = harness.ENTITY
CAIRN_BIN = harness.CAIRN_BIN
TRAIN_BIN = Path(
    os.environ.get("CAIRN_TRAIN_BIN", REPO / "target" / "debug" / "examples" / "train")
).resolve()
E2E = _HERE / "e2e.mjs"
UI_DIR = REPO / "crates" / "cairn-server" / "ui"
SCREENSHOTS = Path(os.environ.get("CAIRN_UI_SCREENSHOTS", REPO / "target" / "ui-screenshots"))

ADMIN_PASSWORD = "ui-tests correct horse 42"

import seed  # noqa: E402  (tests/ui is on sys.path, as for any rootdir-less conftest)


def _chromium() -> str:
    path = os.environ.get("CAIRN_CHROMIUM")
    if path:
        return path
    out = subprocess.run(
        [str(REPO / "scripts" / "browser-env")], capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        pytest.fail(f"scripts/browser-env failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


class UiServer:
    """The running server plus what the tests need to sign in."""

    def __init__(self, server, password_error: str | None):
        self.server = server
        self.password_error = password_error  # why `cairn user passwd` failed, or None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_key(self) -> str:
        return self.server.api_key


def set_password(server, user: str, password: str) -> str | None:
    """`cairn user passwd USER --data DIR`, the password on stdin; the error text or None."""
    try:
        out = subprocess.run(
            [str(CAIRN_BIN), "user", "passwd", user, *server.db_args],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            env=server.env(),
        )
    except OSError as e:
        return f"cannot run {CAIRN_BIN}: {e}"
    if out.returncode != 0:
        return (
            f"`cairn user passwd {user} --data DIR` exited {out.returncode}:"
            f" {(out.stderr or out.stdout).strip()[:800]}"
        )
    return None


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    """One `cairn server` on SQLite with a known admin API key and admin password."""
    srv = harness.make_server("sqlite", tmp_path_factory.mktemp("ui-server"))
    try:
        srv.start()
        # The password is set on the live server's data: the CLI opens the same database.
        error = set_password(srv, ENTITY, ADMIN_PASSWORD)
        yield UiServer(srv, error)
    finally:
        srv.cleanup()


@pytest.fixture(scope="session")
def seeded(ui_server, tmp_path_factory) -> seed.Seeded:
    assert TRAIN_BIN.exists(), (
        f"{TRAIN_BIN} is missing: cargo build -p cairn-sdk --example train, or set CAIRN_TRAIN_BIN"
    )
    client = harness.Client(ui_server.server, tmp_path_factory.mktemp("ui-client"), "ui-seed")
    t0 = time.monotonic()
    try:
        data = seed.seed_all(ui_server.server, client, TRAIN_BIN)
    except BaseException:
        sys.stderr.write(
            "\n--- cairn server log (end)\n" + harness.tail(ui_server.server.log_path, 60) + "\n"
        )
        raise
    data.timings["total"] = round(time.monotonic() - t0, 1)
    sys.stderr.write(f"\nui seed timings (s): {json.dumps(data.timings)}\n")
    return data


@pytest.fixture(scope="session")
def chromium() -> str:
    return _chromium()


class Browser:
    """Runs scenarios of e2e.mjs against the seeded server."""

    def __init__(self, ui_server: UiServer, seeded: seed.Seeded, chromium: str, tmp: Path):
        self.ui_server = ui_server
        self.seeded = seeded
        self.chromium = chromium
        self.tmp = tmp
        self.config_path = tmp / "e2e-config.json"
        self.config_path.write_text(json.dumps(self.config(), indent=1))

    def config(self) -> dict:
        return {
            "baseUrl": self.ui_server.base_url,
            "chromium": self.chromium,
            "playwright": str(UI_DIR / "node_modules" / "playwright-core" / "index.mjs"),
            "screenshots": str(SCREENSHOTS),
            "headful": bool(os.environ.get("CAIRN_UI_HEADFUL")),
            "user": ENTITY,
            "password": ADMIN_PASSWORD,
            "passwordError": self.ui_server.password_error,
            "apiKey": self.ui_server.api_key,
            "expect": self.seeded.expectations(),
        }

    def run(self, scenario: str, timeout: float = 180) -> str:
        """`node e2e.mjs --config FILE SCENARIO`; fails the test with its output."""
        if not Path(self.config()["playwright"]).exists():
            pytest.fail(f"playwright-core is not installed in {UI_DIR}: run scripts/browser-env")
        try:
            out = subprocess.run(
                ["node", str(E2E), "--config", str(self.config_path), scenario],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=REPO,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(
                f"browser scenario {scenario} did not end within {timeout} s\n"
                f"--- stdout\n{e.stdout}\n--- stderr\n{e.stderr}"
            )
        if out.returncode != 0:
            pytest.fail(
                f"browser scenario {scenario} failed (exit {out.returncode})\n"
                f"{out.stdout[-6000:]}\n--- stderr\n{out.stderr[-3000:]}",
                pytrace=False,
            )
        print(out.stdout)  # the scenario's steps, shown with -rP or -s
        return out.stdout


@pytest.fixture(scope="session")
def browser(ui_server, seeded, chromium, tmp_path_factory) -> Browser:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _browser_used.append(True)
    return Browser(ui_server, seeded, chromium, tmp_path_factory.mktemp("e2e"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, the server's log lines written during the test."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    srv = item.funcargs.get("ui_server") if hasattr(item, "funcargs") else None
    if srv is not None:
        report.sections.append(("cairn server log (end)", harness.tail(srv.server.log_path, 40)))


_browser_used: list[bool] = []


def pytest_terminal_summary(terminalreporter):
    if _browser_used and SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"web UI screenshots: {SCREENSHOTS}")
