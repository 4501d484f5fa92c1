"""cairn's web UI in a real browser (Chromium + playwright-core): each test runs one scenario
of e2e.mjs against the seeded server and checks what the pages show through the
`data-testid` contract (crates/cairn-server/ui/README.md). Screenshots of every page visited
land in target/ui-screenshots/ (CAIRN_UI_SCREENSHOTS).
"""

import subprocess

import pytest

from conftest import E2E

SCENARIOS = [
    "login-password",  # sign in with the password; a wrong one shows login-error; logout
    "login-apikey",  # sign in with an API key; an unknown key shows login-error
    "projects",  # the projects page lists the seeded projects and links to them
    "runs-table",  # runs-count, run-row per run, 10,000 runs virtualised, search narrows
    "run-page",  # summary, config, charts in train/val/Charts sections, the spike survives
    "chart-controls",  # x-axis (_runtime), log scale keep the spike
    "million",  # a 1,000,000-step chart is reduced and keeps its one-step spike
    "console",  # the Logs tab shows the logged lines; console-search filters them
    "files",  # the Files tab lists the run's files and shows one
    "compare",  # two runs selected in the table: overlaid charts and the config diff
    "artifacts",  # collection, version v0 with alias latest, created by / used by
    "live",  # lines appended to a running run appear without a reload
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_browser(browser, scenario):
    browser.run(scenario)


def test_every_scenario_is_run():
    """Each scenario of e2e.mjs has its test here."""
    out = subprocess.run(["node", str(E2E), "--list"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == sorted(SCENARIOS)
