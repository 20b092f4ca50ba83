"""Screenshots of the panels for the README (``docs/images/``), from demo data
in a real JupyterLab and headless Chromium:

    PYTHONPATH=. python tests/ui/make_screenshots.py

Writes ``runs-panel``, ``run-detail`` and ``compare`` in light and dark
(``*-light.png`` / ``*-dark.png``), quantized to 256 colours to stay small.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "images"
_spec = importlib.util.spec_from_file_location("ui_conftest", Path(__file__).with_name("conftest.py"))
assert _spec and _spec.loader
ui = importlib.util.module_from_spec(_spec)
sys.modules["ui_conftest"] = ui
_spec.loader.exec_module(ui)


def demo(lab: ui.Lab) -> tuple[str, list[str]]:
    """An experiment of a small learning-rate / depth sweep with curves,
    tags, a description and artifacts."""
    rng = random.Random(3)
    exp = lab.mlflow("experiments/create", {"name": "mnist-sweep"})["experiment_id"]
    ids = []
    t0 = int(time.time() * 1000) - 3_600_000
    for i, (lr, layers) in enumerate([(0.1, 2), (0.03, 2), (0.01, 3), (0.003, 3), (0.001, 4)]):
        start = t0 + i * 600_000
        run = lab.mlflow("runs/create", {
            "experiment_id": exp, "run_name": f"lr{lr}-d{layers}", "start_time": start,
            "tags": [{"key": "mlops.source.notebook_path", "value": "notebooks/train.ipynb"},
                     {"key": "mlflow.source.name", "value": "train.ipynb"},
                     {"key": "mlflow.user", "value": "ada"},
                     {"key": "mlflow.source.git.commit", "value": "3f9c2e1b7a0d4c55e6f8a9b0c1d2e3f4a5b6c7d8"},
                     {"key": "mlflow.source.git.dirty", "value": "true" if i == 2 else "false"}],
        })["run"]
        rid = run["info"]["run_id"]
        n = 400
        rate = 3 * lr ** 0.5 + 0.05 * layers
        loss = [2.3 * math.exp(-rate * s / 40) + 0.05 + rng.random() * 0.04 for s in range(n)]
        acc = [min(0.995, 1 - l / 2.5 + rng.random() * 0.01) for l in loss]
        lab.api("POST", "mlops/api/v1/runs/log-bulk", {
            "run_id": rid,
            "metrics": [{"key": k, "steps": list(range(n)),
                         "timestamps": [start + s * 1500 for s in range(n)], "values": v}
                        for k, v in (("loss", loss), ("accuracy", acc))],
            "params": [{"key": "lr", "value": str(lr)}, {"key": "layers", "value": str(layers)},
                       {"key": "batch_size", "value": "128"}, {"key": "optimizer", "value": "adam"}],
            "tags": [{"key": "mlflow.note.content", "value":
                      f"## Sweep point {i + 1}\nAdam, **lr={lr}**, {layers} hidden layers.\n\n"
                      "- early stopping off\n- seed 0"}],
        })
        status = "RUNNING" if i == 4 else "FINISHED"
        lab.mlflow("runs/update", {"run_id": rid, "status": status,
                                   "end_time": None if i == 4 else start + n * 1500})
        base = f"mlops/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/"
        for name, body in [("confusion.csv", b"label,predicted_0,predicted_1\n0,980,20\n1,31,969\n"),
                           ("model/config.json", json.dumps({"lr": lr, "layers": layers}).encode())]:
            urllib.request.urlopen(urllib.request.Request(
                lab.url + base + name, data=body, method="PUT",
                headers={"Authorization": f"token {lab.token}"}), timeout=30).read()
        ids.append(rid)
    return exp, ids


def shrink(path: Path) -> None:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-shots-"))
    lab = ui._start_lab(tmp)
    try:
        exp, ids = demo(lab)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=ui.CHROMIUM, headless=True,
                                         args=ui.CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
            lab.open_in(page)
            page.locator('.lm-TabBar-tab[data-id="jupyter-mlops-runs"]').click()
            page.locator(f'.jp-mlops-ExperimentItem[data-experiment-id="{exp}"]').click()
            runs = page.locator(".jp-mlops-RunsSection")
            expect(runs.locator("tr.jp-mlops-RunRow")).to_have_count(5, timeout=30_000)
            for rid in ids[1:3]:
                runs.locator(f'tr[data-run-id="{rid}"] .jp-mlops-RunRow-check input').check()
            runs.locator(f'tr[data-run-id="{ids[2]}"]').dblclick()
            page.evaluate("() => window.getSelection().removeAllRanges()")
            detail = page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Detail")
            expect(detail.locator(".jp-mlops-Chart canvas").first).to_be_visible(timeout=30_000)
            page.wait_for_timeout(800)
            shots = []
            for theme, light in (("JupyterLab Light", True), ("JupyterLab Dark", False)):
                suffix = "light" if light else "dark"
                page.evaluate("(theme) => window.jupyterapp.commands.execute("
                              "'apputils:change-theme', {theme})", theme)
                expect(page.locator("body")).to_have_attribute(
                    "data-jp-theme-light", "true" if light else "false", timeout=20_000)
                page.wait_for_selector("#jupyterlab-splash", state="detached")
                page.wait_for_timeout(800)
                # Run detail beside the runs panel, scrolled to the charts.
                page.evaluate(f"() => window.jupyterapp.shell.activateById('jupyter-mlops-run-{ids[2]}')")
                page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Metrics").scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                shots.append(OUT / f"run-detail-{suffix}.png")
                page.screenshot(path=str(shots[-1]))
                page.locator(".jp-mlops-RunDetail:visible .jp-mlops-Detail-header").scroll_into_view_if_needed()
                shots.append(OUT / f"runs-panel-{suffix}.png")
                page.screenshot(path=str(shots[-1]))
            # Compare all five (dark is current; light after).
            page.evaluate("(ids) => window.jupyterapp.commands.execute("
                          "'jupyter-mlops:compare-runs', {runIds: ids})", ids)
            view = page.locator(".jp-mlops-CompareWidget:visible .jp-mlops-Compare")
            expect(view.locator('.jp-mlops-Chart[data-metric="loss"] canvas').first).to_be_visible(
                timeout=30_000)
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            view.locator(".jp-mlops-DiffOnly").check()
            page.wait_for_timeout(800)
            view.locator(".jp-mlops-Section-title", has_text="Charts").scroll_into_view_if_needed()
            shots.append(OUT / "compare-dark.png")
            page.screenshot(path=str(shots[-1]))
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                          "{theme: 'JupyterLab Light'})")
            expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true",
                                                           timeout=20_000)
            page.wait_for_selector("#jupyterlab-splash", state="detached")
            page.wait_for_timeout(800)
            view.locator(".jp-mlops-Section-title", has_text="Parallel").evaluate(
                "(el) => el.scrollIntoView({block: 'start'})")
            shots.append(OUT / "compare-light.png")
            page.screenshot(path=str(shots[-1]))
            browser.close()
        for shot in shots:
            shrink(shot)
            print(shot.relative_to(REPO), shot.stat().st_size // 1024, "KB")
    finally:
        ui._stop_lab(lab)


if __name__ == "__main__":
    main()
