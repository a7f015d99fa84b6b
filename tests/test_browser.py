"""The notebook series in a real browser: JupyterLab 4 in headless Chromium, driven by Playwright.

Runs 00_data top to bottom from a copy of notebooks/, clicks the dataset browser's "next" button
and checks that the live widget rendered and answered, that no cell shows an error, and saves a
screenshot to runs/browser/00_data.png. Select it with ``-m browser`` (or leave it out with
``-m "not browser"``). Needs Debian's ``chromium`` package (``.ci/run`` installs it) or a Chromium
at $EDGELAB_CHROMIUM, and the ``playwright`` Python package (in ``edgelab[test]``); Playwright's own
browser download is not used. Without them the test is skipped with one line saying what is missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "runs" / "browser"
NOTEBOOK = "00_data.ipynb"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds for running the whole notebook in the browser (it takes ~10-40 s on 2 cores).
RUN_TIMEOUT_S = 120

pytestmark = pytest.mark.browser


def chromium() -> str:
    """Path of a Chromium binary, or skip with the one line that says how to get one."""
    candidates = [
        os.environ.get("EDGELAB_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ]
    for path in filter(None, candidates):
        if os.access(path, os.X_OK):
            return path
    pytest.skip(
        "browser test skipped: no Chromium at /usr/bin/chromium or $EDGELAB_CHROMIUM "
        "(install Debian's chromium package: apt-get install chromium; .ci/run does)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a copy of the series, on a free localhost port with a random token."""
    pytest.importorskip(
        "jupyterlab", reason="browser test skipped: jupyterlab is not installed (pip install 'edgelab[notebooks]')"
    )
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for path in [*(REPO / "notebooks").glob("*.ipynb"), REPO / "notebooks" / "params.json"]:  # the series' settings
        shutil.copy(path, root / "notebooks" / path.name)
    (root / "datasets").symlink_to(REPO / "datasets")  # the notebooks read ../datasets/sample
    config = tmp_path / "jupyter-config"
    config.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "open_browser": False,
                    "root_dir": str(root),
                    "allow_root": True,
                },
                "IdentityProvider": {"token": token},
                # No network: no news feed, no update check.
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
                },
            }
        )
    )
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    env.pop("EDGELAB_PROGRESS", None)  # as a user sees it: progress bars on
    with open(tmp_path / "jupyterlab.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_notebook_runs_and_its_explorer_answers_clicks_in_chromium(lab):
    executable = chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser test skipped: playwright is not installed (pip install 'edgelab[test]')"
    )
    url, token = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "00_data-failed.png").unlink(missing_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{url}/lab/tree/notebooks/{NOTEBOOK}?token={token}&reset")
            page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=60_000)
            page.wait_for_function("() => document.body.textContent.includes('| Idle')", timeout=60_000)  # kernel ready

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            prompts = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt"
            page.wait_for_function(
                f"() => [...document.querySelectorAll('{prompts}')].some(p => p.textContent.includes('*'))",
                timeout=30_000,
            )
            try:
                page.wait_for_function(
                    f"() => [...document.querySelectorAll('{prompts}')].every(p => /\\[\\d+\\]/.test(p.textContent))",
                    timeout=RUN_TIMEOUT_S * 1000,
                )
            except sync_api.TimeoutError:
                page.screenshot(path=str(SCREENSHOTS / "00_data-failed.png"))
                shown = [p.text_content() for p in page.locator(prompts).all()]
                pytest.fail(
                    f"{NOTEBOOK} did not finish in {RUN_TIMEOUT_S} s; prompts: {shown} (see runs/browser/00_data-failed.png)"
                )
            page.wait_for_function("() => document.body.textContent.includes('| Idle')", timeout=60_000)

            # No cell shows an error, and no widget failed to display.
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            stderr = [errors.nth(i).text_content() for i in range(errors.count())]  # also cells out of view
            assert not [text for text in stderr if re.search(r"Traceback|Error", text)], stderr
            text = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").text_content()
            assert "Error displaying widget" not in text and "model not found" not in text

            # The dataset browser is a live widget: its controls rendered and a click in the browser
            # reaches the kernel and changes what it shows.
            explorer = page.locator(
                ".jp-OutputArea-output .widget-vbox", has=page.locator("button", has_text="next")
            ).first
            explorer.scroll_into_view_if_needed()
            label = explorer.locator(".widget-html", has_text="split, class").first
            before = label.inner_text()
            assert re.search(r"class 'glacier': images 13-24 of \d+ \(page 2 of \d+\)", before), (
                before
            )  # as the notebook left it
            assert explorer.locator("img").first.evaluate("img => img.naturalWidth") > 100
            explorer.locator("button", has_text="next").click()
            page.wait_for_function(
                "(el) => el.innerText.includes('page 3 of')", arg=label.element_handle(), timeout=30_000
            )
            after = label.inner_text()
            assert re.search(r"class 'glacier': images 25-36 of \d+ \(page 3 of \d+\)", after), after
            explorer.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "00_data.png"))
        finally:
            browser.close()
    assert (SCREENSHOTS / "00_data.png").stat().st_size > 10_000


def test_without_chromium_the_test_says_so_in_one_line(monkeypatch):
    monkeypatch.delenv("EDGELAB_CHROMIUM", raising=False)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        chromium()
    message = str(skipped.value)
    assert "\n" not in message and "apt-get install chromium" in message
