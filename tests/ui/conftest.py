"""Browser tests: a real ``jupyter lab`` subprocess driven by headless Chromium.

- ``lab`` (module scope) starts JupyterLab on a free port with a token, a temp
  root, data and config dir (so its tracking store is fresh), this checkout on
  ``PYTHONPATH`` and the built front end made visible through
  ``--LabApp.extra_labextensions_path`` (a symlink to
  ``jupyter_mlops/labextension``), so no install is needed;
- ``browser`` launches Debian's ``/usr/bin/chromium`` through Python Playwright
  (no browser download); the tests skip, saying why, when it is absent;
- ``page`` opens JupyterLab in a fresh browser context.

Every ``expect`` waits up to ``uihelpers.TIMEOUT_MS`` (60 s, not Playwright's 5 s): the machine
running the suite may be loaded.

Screenshots go to ``tests/ui/screenshots/`` (gitignored) for review.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serverproc import child_env, start_server

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "jupyter_mlops" / "labextension"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "mlops-ui-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives a browser: mark them ``ui``."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.ui)


@dataclass
class Lab:
    """A running ``jupyter lab`` subprocess."""

    url: str  # ends with "/"
    token: str
    root: Path
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the server's REST API as a client would (token auth); ``path``
        is relative to the base URL, e.g. ``mlops/api/2.0/mlflow/runs/create``."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path} -> {e.code}: {e.read().decode()}") from e
        return json.loads(text) if text else {}

    def answers(self) -> bool:
        try:
            self.api("GET", "api/status")
        except AssertionError:  # an HTTP error: up, but not ready
            return False
        return True

    def open_in(self, pg: Any) -> None:
        """Open JupyterLab in a Playwright page with a fresh layout (``?reset``:
        no panel restored from an earlier test) and wait until it has started and settled
        (``uihelpers.wait_until_settled``: its Launcher added and focused)."""
        from uihelpers import wait_until_settled

        pg.goto(f"{self.url}lab?reset&token={self.token}")
        pg.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        wait_until_settled(pg)

    def mlflow(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to MLflow's REST API of the server."""
        return self.api("POST", "mlops/api/2.0/mlflow/" + endpoint, body)


def _start_lab(
    tmp: Path, mlops_server_extension: bool = True, server_config: dict[str, Any] | None = None
) -> Lab:
    """JupyterLab on a free port; ``server_config``: its ``jupyter_server_config.json``
    (e.g. ``{"DeploymentService": {"targets": ...}}``)."""
    for d in ("work", "data", "config", "runtime", "home", "labextensions"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    if server_config:
        (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps(server_config))
    # The checkout's built front end, as JupyterLab finds an installed one.
    (tmp / "labextensions" / "jupyter-mlops").symlink_to(LABEXTENSION, target_is_directory=True)
    # No news pop-up over the screenshots.
    (tmp / "config" / "labconfig").mkdir(exist_ok=True)
    (tmp / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env = child_env(tmp)
    log_path = tmp / "lab.log"
    labs: list[Lab] = []

    def launch(port: int) -> subprocess.Popen:
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--port={port}",
            "--port-retries=0",
            "--ip=127.0.0.1",
            "--no-browser",
            f"--ServerApp.token={TOKEN}",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={tmp / 'work'}",
            f"--ServerApp.jpserver_extensions={{'jupyter_mlops': {mlops_server_extension}}}",
            f"--LabApp.extra_labextensions_path={tmp / 'labextensions'}",
            # Lets tests drive commands (e.g. the theme) through window.jupyterapp.
            "--LabApp.expose_app_in_browser=True",
        ]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        labs.append(Lab(f"http://127.0.0.1:{port}/", TOKEN, tmp, proc, log_path))
        return proc

    start_server(launch, lambda port: labs[-1].answers(), log_path, "jupyter lab")
    return labs[-1]


def _stop_lab(lab: Lab) -> None:
    if lab.proc.poll() is None:
        lab.proc.send_signal(signal.SIGTERM)
        try:
            lab.proc.wait(20)
        except subprocess.TimeoutExpired:
            lab.proc.kill()
            lab.proc.wait(10)


@pytest.fixture
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """Replace pytest-jupyter's autouse loop here: it takes the thread's current
    loop and closes it, but Playwright's sync API keeps its own loop running in
    this thread. These tests start no in-process server; a private loop does."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup() -> Iterator[None]:
    """No in-process server to clean up (see ``jp_asyncio_loop``)."""
    yield


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail(
            f"the front end is not built ({LABEXTENSION} is missing): run "
            "`jlpm install && jlpm build:prod` (or `pip install -e .`) first"
        )
    server = _start_lab(tmp_path_factory.mktemp("lab"))
    yield server
    _stop_lab(server)


@pytest.fixture(scope="module")
def start_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Lab]]:
    """Starts a JupyterLab with a server configuration of the module's own (``server_config``
    as for ``_start_lab``); stopped after the module. A module's own ``lab`` fixture uses it."""
    labs: list[Lab] = []

    def start(server_config: dict[str, Any]) -> Lab:
        labs.append(_start_lab(tmp_path_factory.mktemp("lab"), server_config=server_config))
        return labs[-1]

    yield start
    for lab in labs:
        _stop_lab(lab)


@pytest.fixture
def lab_without_api(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab with the front end but the server extension disabled: what a
    user sees when the Python side is missing or broken."""
    server = _start_lab(tmp_path / "lab", mlops_server_extension=False)
    yield server
    _stop_lab(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Python playwright is not installed"
    )
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    from uihelpers import TIMEOUT_MS

    # Playwright's 5 s for an expect() is short for a loaded CI machine: every wait a test
    # does not time itself gets the suite's UI deadline.
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def allowed_console_errors() -> list[str]:
    """Substrings of console errors a test expects (e.g. the 400 of a malformed
    filter, which the browser logs); append to it in the test."""
    return []


@pytest.fixture
def page(
    browser: Any, lab: Lab, request: pytest.FixtureRequest, allowed_console_errors: list[str]
) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    pg.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    lab.open_in(pg)
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"))
        print("browser console:\n" + "\n".join(console[-50:]))
        print("lab log (tail):\n" + lab.log()[-4000:])
    context.close()
    # Uncaught exceptions and console errors mean a broken front end even when
    # the page looks right.
    errors = [
        line
        for line in console
        if line.startswith(("error:", "pageerror:"))
        # The sandboxed HTML artifact preview refusing a script is the sandbox working.
        and "Blocked script execution in 'about:srcdoc'" not in line
        and not any(allowed in line for allowed in allowed_console_errors)
    ]
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the item so ``page`` can tell a failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
