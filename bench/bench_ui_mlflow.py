"""The runs table beside MLflow's UI, on the same data, in Debian's headless Chromium.

    PYTHONPATH=. python bench/bench_ui_mlflow.py [--runs 10000] [--compare 50] [--repeat 3]
    PYTHONPATH=. python bench/bench_ui_mlflow.py --runs 100000 --compare 200   # issue 18

One experiment of ``--runs`` runs x 20 params x 10 metrics goes into our store and into
MLflow's SQLite tables: up to 10,000 runs bench_store's search data (ours through its
API, MLflow's by bulk insert); above, bench_scale_search's dataset (direct SQL inserts
into both schemas, a minute for 100k runs), the filter's threshold raised so that about
ten runs match whatever the size. A real ``jupyter lab`` with the extension and a stock
``mlflow server`` serve them.
Measured in the page (``performance.now()`` from the user's action to the first animation
frame that shows the result; the apps' own start-up is not counted), each app in a fresh
browser context per repeat, the two alternating:

- first rows: ours, "MLOps: Open runs table" of the experiment -> its first run row;
  MLflow, a click on the experiment in its list -> the newest run's name on screen;
- sort: by ``metric_0``, best first -> the best run's name in the first row (ours: a
  click on the column's header; MLflow: its ``orderByKey`` view state, as its sort
  menu sets it);
- filter: ``metrics.metric_0 > 0.999`` -> exactly the matching runs shown, with the count
  (ours: typed in the filter box, Enter; MLflow: its ``searchFilter`` view state);
- compare of ``--compare`` runs -> its charts drawn (ours: the compare command until the
  parallel coordinates canvas is inked; MLflow: its compare page until its parallel
  coordinates plot is drawn).

The filled stores are kept under the temp folder for the next run of the same size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # serverproc, for the UI tests' conftest
sys.path.insert(0, str(REPO / "tests" / "ui"))  # uihelpers, which its open_in imports
sys.path.insert(0, str(REPO / "bench"))

_spec = importlib.util.spec_from_file_location("ui_conftest", REPO / "tests" / "ui" / "conftest.py")
assert _spec and _spec.loader
ui = importlib.util.module_from_spec(_spec)
sys.modules["ui_conftest"] = ui
_spec.loader.exec_module(ui)

import bench_client  # noqa: E402 - after sys.path has bench/
import bench_store  # noqa: E402

#: Above this many runs the stores are filled by direct SQL inserts (bench_scale_search).
BULK_ABOVE = 10_000


def filter_for(n: int) -> tuple[str, float]:
    """The filter of the bench (about ten runs match) and its threshold."""
    threshold = 0.999 if n <= BULK_ABOVE else round(1 - 10 / n, 6)
    return f"metrics.metric_0 > {threshold}", threshold


#: Wait in the page, frame by frame, until ``done()`` holds; ms since ``t0`` (-1: timeout).
WAIT_JS = """() => {
window.__until = async (t0, done, limit = 120000) => {
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  for (;;) {
    await frame();
    if (done()) { await frame(); return performance.now() - t0; }
    if (performance.now() - t0 > limit) return -1;
  }
};
}"""

OURS_FIRST = """async (exp) => {
  const t0 = performance.now();
  void window.jupyterapp.commands.execute('jupyter-mlops:open-runs-table', {experimentId: exp});
  return window.__until(t0, () =>
    document.querySelector(`#jupyter-mlops-runs-table-${exp} tr.jp-mlops-RunRow[data-run-id]`));
}"""

OURS_SORT = """async ([exp, best]) => {
  const tab = document.querySelector(`#jupyter-mlops-runs-table-${exp}`);
  const t0 = performance.now();
  tab.querySelector('th[data-column="metrics.metric_0"]').click();
  return window.__until(t0, () => {
    const row = tab.querySelector('tr.jp-mlops-RunRow[data-run-id]');
    return row && row.getAttribute('data-run-id') === best;
  });
}"""

#: The filter is typed first (Playwright); timed from Enter (the form's submit).
OURS_FILTER = """async ([exp, ids]) => {
  const tab = document.querySelector(`#jupyter-mlops-runs-table-${exp}`);
  const box = tab.querySelector('input[aria-label="Filter runs"]');
  const t0 = performance.now();
  box.form.requestSubmit();
  const want = new Set(ids);
  return window.__until(t0, () => {
    const rows = [...tab.querySelectorAll('tr.jp-mlops-RunRow[data-run-id]')];
    const count = tab.querySelector('.jp-mlops-RunsView-count');
    return rows.length === want.size && rows.every(r => want.has(r.getAttribute('data-run-id')))
      && count && count.textContent.startsWith(String(want.size));
  });
}"""

OURS_COMPARE = """async (ids) => {
  const t0 = performance.now();
  void window.jupyterapp.commands.execute('jupyter-mlops:compare-runs', {runIds: ids});
  return window.__until(t0, () => {
    const c = document.querySelector('.jp-mlops-CompareWidget:not(.lm-mod-hidden) .jp-mlops-Parallel');
    if (!c || !c.width) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) { if (d[i]) return true; }
    return false;
  });
}"""

MLFLOW_FIRST = """async ([exp, newest]) => {
  const link = [...document.querySelectorAll('a')].find(a =>
    (a.getAttribute('href') || '').match(new RegExp(`experiments/${exp}($|[/?])`)));
  const t0 = performance.now();
  link.click();
  return window.__until(t0, () => document.body.innerText.includes(newest));
}"""

#: MLflow's runs page keeps its sort and filter in the URL; setting it is what its menus do.
MLFLOW_VIEW = """async ([hash, present, absent]) => {
  const t0 = performance.now();
  window.location.hash = hash;
  return window.__until(t0, () => {
    const text = document.body.innerText;
    return present.every(n => text.includes(n)) && absent.every(n => !text.includes(n));
  });
}"""

MLFLOW_COMPARE = """async (hash) => {
  const t0 = performance.now();
  window.location.hash = hash;
  return window.__until(t0, () => document.querySelector('.js-plotly-plot .parcoords, .js-plotly-plot'));
}"""


def fill_bulk(cache: Path, n: int, compare: int) -> None:
    """Both stores by direct SQL inserts of bench_scale_search's dataset (experiment 1)."""
    import bench_scale_search as scale

    scale.CACHE = cache  # this bench's own copy: never another bench's files half-written
    data = scale.generate(n)
    for side in ("ours", "mlflow"):
        url = scale.load_sqlite(side, n, data)
        shutil.move(
            url.removeprefix("sqlite:///"), cache / f"{'mlops' if side == 'ours' else 'mlflow'}.db"
        )
    names: dict[str, str] = {}
    starts: dict[str, int] = {}
    with open(data / "runs_ours.tsv") as f:
        for line in f:
            rid, name, _, _, _, start = line.split("\t", 6)[:6]
            names[rid], starts[rid] = name, int(start)
    metric_0: dict[str, float] = {}
    with open(data / "lm_ours.tsv") as f:
        for line in f:
            rid, key, value = line.split("\t", 3)[:3]
            if key == "metric_0":
                metric_0[rid] = float(value)
    _, threshold = filter_for(n)
    order = sorted(metric_0, key=lambda r: -metric_0[r])
    newest = sorted(starts, key=lambda r: -starts[r])
    match = [r for r in newest if metric_0[r] > threshold]
    (cache / "meta.json").write_text(
        json.dumps(
            {
                "ours_exp": str(scale.EXP_ID),
                "ml_exp": str(scale.EXP_ID),
                "best": order[:3],
                "best_names": [names[r] for r in order[:3]],
                "match": match,
                "match_names": [names[r] for r in match],
                "newest": names[newest[0]],
                "compare": newest[: max(compare, 200)],
                "names": {r: names[r] for r in newest[: max(compare, 200)]},
            }
        )
    )
    shutil.rmtree(data)
    print(f"filled {n} runs into both stores (direct SQL)", flush=True)


def copy_sqlite(src: Path, dst: Path) -> None:
    """A whole copy of a SQLite store, through SQLite's backup API.

    Our store writes in WAL mode: right after the fill, its newest runs may still be in
    ``mlops.db-wal`` (the filling connection is open), so copying the main file alone
    dropped them (the 10k bench compared runs its lab did not have, and drew nothing).
    """
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def fill(root: Path, n: int, compare: int = 50) -> dict[str, Any]:
    """Our store and MLflow's with the same ``n`` runs (kept for the next run)."""
    cache = Path(tempfile.gettempdir()) / f"bench-ui-mlflow-{n}"
    meta = cache / "meta.json"
    if not meta.exists() and n > BULK_ABOVE:
        cache.mkdir(exist_ok=True)
        fill_bulk(cache, n, compare)
    if not meta.exists():
        cache.mkdir(exist_ok=True)
        data = bench_store.search_data(n)
        ours = bench_store.SqlTrackingStore(
            f"sqlite:///{cache}/mlops.db", artifact_root=str(cache / "artifacts")
        )
        ours_exp = bench_store.fill_ours(ours, data)
        ml = bench_store.mlflow_store(str(cache))
        ml_exp = bench_store.fill_mlflow(ml, data)
        order = sorted(data, key=lambda r: -r["metrics"]["metric_0"])
        meta.write_text(
            json.dumps(
                {
                    "ours_exp": ours_exp,
                    "ml_exp": ml_exp,
                    "best": [r["run_id"] for r in order[:3]],
                    "best_names": [r["name"] for r in order[:3]],
                    "match": [r["run_id"] for r in data if r["metrics"]["metric_0"] > 0.999],
                    "match_names": [r["name"] for r in data if r["metrics"]["metric_0"] > 0.999],
                    "newest": data[-1]["name"],
                    "compare": [r["run_id"] for r in data[-200::4]],
                    "names": {r["run_id"]: r["name"] for r in data},
                }
            )
        )
        print(f"filled {n} runs into both stores", flush=True)
    (root / "data" / "mlops").mkdir(parents=True, exist_ok=True)
    (root / "mlflow").mkdir(exist_ok=True)
    for src, dst in (
        (cache / "mlops.db", root / "data" / "mlops" / "mlops.db"),
        (cache / "mlflow.db", root / "mlflow" / "mlflow.db"),
    ):
        if n > BULK_ABOVE:
            os.link(src, dst)  # GBs: the servers only read the runs (one path at a time)
        else:
            copy_sqlite(src, dst)
    with sqlite3.connect(root / "data" / "mlops" / "mlops.db") as db:
        (have,) = db.execute("SELECT count(*) FROM runs").fetchone()
    db.close()
    if have < n:  # every measure assumes the lab has every run
        sys.exit(f"the lab's store has {have} of {n} runs")
    return json.loads(meta.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--compare", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-mlflow", action="store_true", help="our side only")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-ui-mlflow-"))
    meta = fill(root, args.runs, args.compare)
    cmp_ids = meta["compare"][: args.compare]
    if len(cmp_ids) < args.compare:
        sys.exit(f"the cached data has {len(cmp_ids)} runs to compare: remove its folder")
    flt, _ = filter_for(args.runs)
    print(f"load average at start: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    lab = ui._start_lab(root)
    ml_server, ml_url = (
        (None, "") if args.skip_mlflow else bench_client.mlflow_server(root / "mlflow")
    )
    sides = ("ours",) if args.skip_mlflow else ("ours", "mlflow")
    times: dict[str, list[float]] = {}

    def record(name: str, ms: float) -> None:
        if ms < 0:  # recorded as missing; the other measures still run
            print(f"{name}: no result within the time limit", flush=True)
            ms = float("nan")
        times.setdefault(name, []).append(ms)
        print(f"{name}: {ms:.0f} ms", flush=True)

    try:
        lab.api(
            "PUT",
            "lab/api/settings/jupyter-mlops:plugin",
            {"raw": json.dumps({"refreshInterval": 0})},
        )
        exp, ml_exp = meta["ours_exp"], meta["ml_exp"]
        best_names = meta["best_names"]
        others = [n for n in (meta["newest"],) if n not in meta["match_names"]]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=ui.CHROMIUM, headless=True, args=ui.CHROMIUM_ARGS
            )
            for n in range(args.repeat):
                for side in sides if n % 2 == 0 else sides[::-1]:
                    ctx = browser.new_context(viewport={"width": 1600, "height": 900})
                    page = ctx.new_page()
                    if side == "ours":
                        lab.open_in(page)
                        page.evaluate(WAIT_JS)
                        record("ours first rows", page.evaluate(OURS_FIRST, exp))
                        tab = page.locator(f"#jupyter-mlops-runs-table-{exp}")
                        picker = tab.locator(".jp-mlops-ColumnPicker")
                        picker.locator(".jp-mlops-KeyPicker-button").click()
                        picker.locator(".jp-mlops-KeyPicker-search").fill("metric_0")
                        picker.locator('label[data-column="metrics.metric_0"] input').check()
                        picker.locator(".jp-mlops-KeyPicker-button").click()
                        tab.locator('th[data-column="metrics.metric_0"]').wait_for()
                        record("ours sort", page.evaluate(OURS_SORT, [exp, meta["best"][0]]))
                        tab.get_by_label("Filter runs").fill(flt)
                        record("ours filter", page.evaluate(OURS_FILTER, [exp, meta["match"]]))
                        record("ours compare", page.evaluate(OURS_COMPARE, cmp_ids))
                    else:
                        page.goto(f"{ml_url}/#/experiments")
                        page.wait_for_selector(f'a[href*="experiments/{ml_exp}"]', timeout=120_000)
                        page.evaluate(WAIT_JS)
                        record(
                            "mlflow first rows",
                            page.evaluate(MLFLOW_FIRST, [ml_exp, meta["newest"]]),
                        )
                        order = urllib.parse.quote("metrics.`metric_0`")
                        record(
                            "mlflow sort",
                            page.evaluate(
                                MLFLOW_VIEW,
                                [
                                    f"#/experiments/{ml_exp}/runs?orderByKey={order}"
                                    "&orderByAsc=false",
                                    best_names,
                                    [],
                                ],
                            ),
                        )
                        record(
                            "mlflow filter",
                            page.evaluate(
                                MLFLOW_VIEW,
                                [
                                    f"#/experiments/{ml_exp}/runs?searchFilter="
                                    + urllib.parse.quote(flt),
                                    meta["match_names"],
                                    others,
                                ],
                            ),
                        )
                        runs = urllib.parse.quote(json.dumps(cmp_ids))
                        exps = urllib.parse.quote(json.dumps([ml_exp]))
                        record(
                            "mlflow compare",
                            page.evaluate(
                                MLFLOW_COMPARE,
                                f"#/compare-runs?runs={runs}&experiments={exps}",
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
        f"\n{args.runs:,} runs x 20 params x 10 metrics; filter {flt!r}; compare "
        f"{args.compare}; load average {load}; median (all) of {args.repeat}:"
    )
    for what in ("first rows", "sort", "filter", "compare"):
        o, m = times[f"ours {what}"], times.get(f"mlflow {what}", [float("nan")])
        mo, mm = statistics.median(o), statistics.median(m)
        print(
            f"{what:11s} ours {mo:7.0f} ms ({', '.join(f'{x:.0f}' for x in o)})   "
            f"MLflow {mm:7.0f} ms ({', '.join(f'{x:.0f}' for x in m)})   MLflow/ours {mm / mo:5.1f}x"
        )


if __name__ == "__main__":
    main()
