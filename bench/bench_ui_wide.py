"""A wide experiment in the browser (issue 18), ours beside MLflow's UI on the same data.

    PYTHONPATH=. python bench/bench_ui_wide.py [--runs 5] [--keys 5000] [--repeat 2]

One experiment of ``--runs`` runs, each with ``--keys`` metrics and ``--keys`` params
(``layer_NNNN.loss``, ``cfg_NNNN``), goes into our store (its API) and MLflow's SQLite
tables (bulk insert, bench_store's); a real ``jupyter lab`` and a stock ``mlflow server``
serve them, Debian's headless Chromium opens them. Times in the page, from the action to
the first animation frame showing the result (bench_ui_mlflow's method):

- first rows: ours, the runs tab -> its first run row; MLflow, a click on the experiment ->
  the newest run's name;
- key picker (ours): the Columns button -> its list of keys drawn; a search for the last
  key typed -> the list narrowed to it (includes the picker's 250 ms debounce);
- compare of all the runs -> the first table rows painted (ours: its params table; MLflow:
  its compare page's params table showing the first param key).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import bench_ui_mlflow as common

ui, bench_client, bench_store = common.ui, common.bench_client, common.bench_store

OURS_PICKER = """async (exp) => {
  const tab = document.querySelector(`#jupyter-mlops-runs-table-${exp}`);
  const t0 = performance.now();
  tab.querySelector('.jp-mlops-ColumnPicker .jp-mlops-KeyPicker-button').click();
  return window.__until(t0, () =>
    tab.querySelectorAll('.jp-mlops-KeyPicker-popup fieldset[data-kind="metrics"] label').length > 0);
}"""

#: Typed first (Playwright); timed from the input event to the narrowed list.
OURS_SEARCH = """async ([exp, key]) => {
  const tab = document.querySelector(`#jupyter-mlops-runs-table-${exp}`);
  const box = tab.querySelector('.jp-mlops-KeyPicker-search');
  const t0 = performance.now();
  const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  set.call(box, key);
  box.dispatchEvent(new Event('input', {bubbles: true}));
  return window.__until(t0, () => {
    const labels = tab.querySelectorAll('.jp-mlops-KeyPicker-popup fieldset[data-kind="metrics"] label');
    return labels.length === 1 && labels[0].getAttribute('data-column') === `metrics.${key}`;
  });
}"""

OURS_COMPARE = """async (ids) => {
  const t0 = performance.now();
  void window.jupyterapp.commands.execute('jupyter-mlops:compare-runs', {runIds: ids});
  return window.__until(t0, () =>
    document.querySelector('.jp-mlops-CompareWidget:not(.lm-mod-hidden) .jp-mlops-CompareParams tbody tr'));
}"""

MLFLOW_COMPARE = """async ([hash, key]) => {
  const t0 = performance.now();
  window.location.hash = hash;
  return window.__until(t0, () => document.body.innerText.includes(key));
}"""


def wide_data(runs: int, keys: int) -> list[dict[str, Any]]:
    t0 = 1_700_000_000_000
    return [
        {
            "run_id": uuid.uuid4().hex,
            "name": f"wide-{i}",
            "start": t0 + i * 1000,
            "params": {f"cfg_{k:04d}": str(i * keys + k) for k in range(keys)},
            "metrics": {f"layer_{k:04d}.loss": float(i * keys + k) for k in range(keys)},
            "tags": {"team": "a"},
        }
        for i in range(runs)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keys", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-mlflow", action="store_true", help="our side only")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-ui-wide-"))
    (root / "data" / "mlops").mkdir(parents=True)
    (root / "mlflow").mkdir()
    data = wide_data(args.runs, args.keys)
    ours = bench_store.SqlTrackingStore(
        f"sqlite:///{root}/data/mlops/mlops.db", artifact_root=str(root / "artifacts")
    )
    exp = bench_store.fill_ours(ours, data)
    ours.engine.dispose()
    ml_exp = ""
    if not args.skip_mlflow:
        ml = bench_store.mlflow_store(str(root / "mlflow"))
        ml_exp = bench_store.fill_mlflow(ml, data)
        ml.engine.dispose()
    ids = [r["run_id"] for r in data]
    newest, last_key = data[-1]["name"], f"layer_{args.keys - 1:04d}.loss"
    print(f"load average at start: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    lab = ui._start_lab(root)
    ml_server, ml_url = (
        (None, "") if args.skip_mlflow else bench_client.mlflow_server(root / "mlflow")
    )
    times: dict[str, list[float]] = {}

    def record(name: str, ms: float) -> None:
        ms = float("nan") if ms < 0 else ms
        times.setdefault(name, []).append(ms)
        print(f"{name}: {ms:.0f} ms", flush=True)

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=ui.CHROMIUM, headless=True, args=ui.CHROMIUM_ARGS
            )
            for _ in range(args.repeat):
                ctx = browser.new_context(viewport={"width": 1600, "height": 900})
                page = ctx.new_page()
                lab.open_in(page)
                page.evaluate(common.WAIT_JS)
                record("ours first rows", page.evaluate(common.OURS_FIRST, exp))
                record("ours key picker", page.evaluate(OURS_PICKER, exp))
                record("ours key search", page.evaluate(OURS_SEARCH, [exp, last_key]))
                record("ours compare", page.evaluate(OURS_COMPARE, ids))
                ctx.close()
                if args.skip_mlflow:
                    continue
                ctx = browser.new_context(viewport={"width": 1600, "height": 900})
                page = ctx.new_page()
                page.goto(f"{ml_url}/#/experiments", timeout=120_000)
                page.wait_for_selector(f'a[href*="experiments/{ml_exp}"]', timeout=120_000)
                page.evaluate(common.WAIT_JS)
                record("mlflow first rows", page.evaluate(common.MLFLOW_FIRST, [ml_exp, newest]))
                runs = urllib.parse.quote(f"[{','.join(repr(i) for i in ids)}]".replace("'", '"'))
                exps = urllib.parse.quote(f'["{ml_exp}"]')
                record(
                    "mlflow compare",
                    page.evaluate(
                        MLFLOW_COMPARE,
                        [f"#/compare-runs?runs={runs}&experiments={exps}", "cfg_0000"],
                    ),
                )
                ctx.close()
            browser.close()
    finally:
        ui._stop_lab(lab)
        if ml_server:
            ml_server.stop()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{args.runs} runs x {args.keys:,} metrics x {args.keys:,} params; load average {load}; "
        f"median (all) of {args.repeat}:"
    )
    for name, xs in times.items():
        print(f"{name:18s} {statistics.median(xs):7.0f} ms ({', '.join(f'{x:.0f}' for x in xs)})")


if __name__ == "__main__":
    main()
