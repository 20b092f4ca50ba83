"""What the browser tests do again and again (imported as ``uihelpers``: tests/ui is on sys.path).

Every wait has a deadline meant for a loaded CI machine (JupyterLab, a kernel and Chromium
share two cores with other tests): it costs time only when the page is wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from serverproc import REPO

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

#: Milliseconds the UI may take to show what the server has (a panel polls every 5 s).
TIMEOUT_MS = 60_000
#: Milliseconds a kernel may take to start or to run a notebook's cells.
KERNEL_TIMEOUT_MS = 120_000


def wait_until_settled(page: Any) -> None:
    """Wait until the JupyterLab in ``page`` has started and finished its start-up moves.

    The splash goes once the layout is restored, but JupyterLab adds its Launcher later: once
    its file browser has listed the root (seconds later on a loaded machine) it runs
    ``launcher:create`` and the Launcher takes the focus. Running a command closes an open
    command palette (and clears its query), and the focus leaves whatever a test clicked: a
    test acting before then loses its palette, or its keys go to the Launcher. So wait for the
    Launcher (a ``?reset`` layout has an empty main area) and for the focus to be in it.
    """
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined")
    page.evaluate("() => Promise.all([window.jupyterapp.started, window.jupyterapp.restored])")
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=TIMEOUT_MS)
    page.wait_for_function(
        """() => {
            const main = document.querySelector('#jp-main-dock-panel');
            return !document.querySelector('.jp-mod-restoring') &&
                !window.jupyterapp.shell.isEmpty('main') &&
                !!main && main.contains(document.activeElement);
        }""",
        timeout=TIMEOUT_MS,
    )


def open_sidebar(page: Any, panel: str, tab: str) -> Any:
    """The sidebar ``panel`` (a selector), opened by clicking its ``tab`` as a user would."""
    locator = page.locator(panel)
    if not locator.is_visible():
        page.locator(tab).click()
    expect(locator).to_be_visible(timeout=TIMEOUT_MS)
    return locator


def run_as_user(lab: Any, source: str) -> str:
    """Run a Python script as a user's would, against the lab's REST API (MLflow's
    tracking URI and token variables; none inherited from the shell running the tests);
    its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        MLFLOW_TRACKING_URI=lab.url + "mlops",
        MLFLOW_TRACKING_TOKEN=lab.token,
    )
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=str(lab.root),
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def open_run(page: Any, run_id: str) -> None:
    """Open a run's view through the extension's command."""
    page.evaluate(
        "(id) => window.jupyterapp.commands.execute('jupyter-mlops:open-run', {runId: id})", run_id
    )


def set_theme(page: Any, theme: str, light: bool) -> None:
    """Switch JupyterLab's theme and wait until its CSS is in."""
    page.evaluate(
        "(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    expect(page.locator("body")).to_have_attribute(
        "data-jp-theme-light", "true" if light else "false", timeout=TIMEOUT_MS
    )
    # The splash screen covers the page while the theme's CSS loads.
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=TIMEOUT_MS)


def notebook(*cells: str | tuple[str, list[str]]) -> dict[str, Any]:
    """An nbformat 4 notebook (Python 3) of code cells: a source, or (source, tags)."""
    code = []
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        code.append(
            {
                "cell_type": "code",
                "source": source,
                "metadata": {"tags": tags} if tags else {},
                "outputs": [],
                "execution_count": None,
            }
        )
    return {
        "cells": code,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def run_notebook(page: Any, lab: Any, path: str, source: str | list[str], printed: str) -> None:
    """Save a notebook of one cell (or of a list of cells) at ``path``, open it in
    JupyterLab, run all its cells in its kernel and wait until its first output shows
    ``printed``."""
    cells = [source] if isinstance(source, str) else source
    lab.api(
        "PUT",
        f"api/contents/{path}",
        {"type": "notebook", "format": "json", "content": notebook(*cells)},
    )
    page.evaluate(
        "(path) => { void window.jupyterapp.commands.execute('docmanager:open', {path}); }", path
    )
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_function(
        """() => {
            // Cells sent while the kernel is still starting are dropped.
            const w = window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session &&
                           w.sessionContext.session.kernel;
            return !!(kernel && w.sessionContext.isReady &&
                      kernel.connectionStatus === 'connected' && kernel.status === 'idle');
        }""",
        timeout=KERNEL_TIMEOUT_MS,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    expect(page.locator(".jp-NotebookPanel .jp-Cell-outputArea").first).to_contain_text(
        printed, timeout=KERNEL_TIMEOUT_MS
    )


def log_run(lab: Any, exp_id: str, name: str, lr: str, acc: list[float], **params: str) -> str:
    """A finished run in ``exp_id`` (over ``lab``'s MLflow API) that started a minute ago:
    params ``lr``, ``model=mlp`` and ``params``, metrics ``acc`` (one point a second) and
    ``loss`` (1 - acc)."""
    t0 = int(time.time() * 1000) - 60_000
    run_id = lab.mlflow(
        "runs/create", {"experiment_id": exp_id, "run_name": name, "start_time": t0}
    )["run"]["info"]["run_id"]
    lab.mlflow(
        "runs/log-batch",
        {
            "run_id": run_id,
            "params": [{"key": "lr", "value": lr}, {"key": "model", "value": "mlp"}]
            + [{"key": k, "value": v} for k, v in params.items()],
            "metrics": [
                {"key": "acc", "value": v, "timestamp": t0 + i * 1000, "step": i}
                for i, v in enumerate(acc)
            ]
            + [
                {"key": "loss", "value": 1 - v, "timestamp": t0 + i * 1000, "step": i}
                for i, v in enumerate(acc)
            ],
        },
    )
    lab.mlflow("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": t0 + 50_000})
    return run_id
