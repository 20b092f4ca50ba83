"""UI benchmark in a real JupyterLab and Debian's headless Chromium.

    PYTHONPATH=. python bench/bench_ui.py [--runs 10000] [--compare 20] [--steps 100000]

Measures, in the browser (``performance.now()``, so JupyterLab's own start-up is
not counted):

- runs table: click on an experiment of N runs (sidebar set to list them all) ->
  first run row painted; -> all N listed; longest frame while scrolling the table
  from top to bottom in 40 steps;
- compare: the compare command on K runs with an S-step metric each -> every
  chart's canvas drawn (down-sampled series read from the server);
- bundle: the built front end's JavaScript, gzip -9 (what the browser downloads).

The store is filled directly (``log_bulk``) before the server starts. Build the
front end first (``jlpm build:prod``) for representative sizes.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # serverproc, for the UI tests' conftest
sys.path.insert(0, str(REPO / "tests" / "ui"))  # uihelpers, which its open_in imports

_spec = importlib.util.spec_from_file_location("ui_conftest", REPO / "tests" / "ui" / "conftest.py")
assert _spec and _spec.loader
ui = importlib.util.module_from_spec(_spec)
sys.modules["ui_conftest"] = ui
_spec.loader.exec_module(ui)

from jupyter_mlops.tracking import open_store  # noqa: E402 - after sys.path has the tree


def fill(db: Path, runs: int, compare: int, steps: int) -> tuple[str, str, list[str]]:
    """An experiment of ``runs`` small runs and one of ``compare`` runs with an
    ``steps``-step metric each."""
    db.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{db}")
    rng = random.Random(0)
    big = store.create_experiment("bench-runs")
    t0 = int(time.time() * 1000) - 86_400_000
    started = time.monotonic()
    for i in range(runs):
        rid = store.create_run(big, start_time=t0 + i * 1000, run_name=f"run-{i:05d}").info.run_id
        store.log_bulk(
            rid,
            metrics=[
                ("acc", [0], [t0 + i * 1000], [rng.random()]),
                ("loss", [0], [t0 + i * 1000], [rng.random()]),
            ],
            params=[
                ("lr", str(rng.choice([0.1, 0.01, 0.001]))),
                ("layers", str(rng.randint(1, 8))),
                ("optimizer", rng.choice(["sgd", "adam"])),
            ],
        )
        store.update_run_info(rid, status="FINISHED", end_time=t0 + i * 1000 + 500)
    print(f"filled {runs} runs in {time.monotonic() - started:.1f} s", flush=True)
    cmp_exp = store.create_experiment("bench-compare")
    ids = []
    xs = list(range(steps))
    for k in range(compare):
        rid = store.create_run(cmp_exp, start_time=t0, run_name=f"cmp-{k:02d}").info.run_id
        vals = [1.0 / (1 + s * (k + 1) / steps) + rng.random() * 0.01 for s in xs]
        store.log_bulk(
            rid,
            metrics=[("loss", xs, [t0 + s for s in xs], vals)],
            params=[("lr", str(0.1 / (k + 1)))],
        )
        store.update_run_info(rid, status="FINISHED", end_time=t0 + steps)
        ids.append(rid)
    print(f"filled {compare} x {steps} points", flush=True)
    return big, cmp_exp, ids


FIRST_ROW_JS = """async (expId) => {
  const item = document.querySelector(`.jp-mlops-ExperimentItem[data-experiment-id="${expId}"]`);
  const t0 = performance.now();
  item.click();
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  let first = null;
  for (;;) {
    await frame();
    const rows = document.querySelectorAll('#jupyter-mlops-runs tr.jp-mlops-RunRow');
    if (first === null && rows.length) { await frame(); first = performance.now() - t0; }
    const count = document.querySelector('#jupyter-mlops-runs .jp-mlops-RunsView-count');
    if (count && /10,?000|${N}/.test(count.textContent)) break;
    if (performance.now() - t0 > 120000) break;
  }
  return {first, all: performance.now() - t0,
          domRows: document.querySelectorAll('#jupyter-mlops-runs tr.jp-mlops-RunRow').length};
}"""

SCROLL_JS = """async () => {
  const s = document.querySelector('#jupyter-mlops-runs .jp-mlops-RunsScroll');
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  let worst = 0; let last = performance.now();
  const end = s.scrollHeight - s.clientHeight;
  for (let i = 1; i <= 40; i++) {
    s.scrollTop = end * i / 40;
    s.dispatchEvent(new Event('scroll'));
    await frame();
    const now = performance.now(); worst = Math.max(worst, now - last); last = now;
  }
  await frame();
  const rows = document.querySelectorAll('#jupyter-mlops-runs tr.jp-mlops-RunRow');
  return {worst, lastRow: rows[rows.length - 1].textContent, domRows: rows.length,
          clientHeight: s.clientHeight, scrollHeight: s.scrollHeight};
}"""

COMPARE_JS = """async (ids) => {
  const t0 = performance.now();
  await window.jupyterapp.commands.execute('jupyter-mlops:compare-runs', {runIds: ids});
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  for (;;) {
    await frame();
    const chart = document.querySelector('.jp-mlops-CompareWidget:not(.lm-mod-hidden) .jp-mlops-Chart[data-metric="loss"]');
    const canvas = chart && chart.querySelector('canvas');
    const legend = chart && chart.querySelectorAll('.u-legend .u-series').length;
    if (canvas && legend === ids.length + 1) {
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let ink = false; for (let i = 3; i < d.length; i += 64) { if (d[i]) { ink = true; break; } }
      if (ink) return performance.now() - t0;
    }
    if (performance.now() - t0 > 60000) return -1;
  }
}"""


def bundle_size() -> tuple[int, int, int]:
    static = REPO / "jupyter_mlops" / "labextension" / "static"
    files = list(static.glob("*.js"))
    raw = sum(p.stat().st_size for p in files)
    gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return raw, gz, len(files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--compare", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    db = tmp / "data" / "mlops" / "mlops.db"
    # Filling takes minutes: keep a filled store per size for the next run.
    cache = Path(tempfile.gettempdir()) / f"bench-ui-{args.runs}-{args.compare}-{args.steps}"
    if (cache / "mlops.db").exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(cache / "mlops.db", db)
        big, cmp_ids = json.loads((cache / "ids.json").read_text())
    else:
        big, _, cmp_ids = fill(db, args.runs, args.compare, args.steps)
        cache.mkdir(exist_ok=True)
        shutil.copy(db, cache / "mlops.db")
        (cache / "ids.json").write_text(json.dumps([big, cmp_ids]))
    lab = ui._start_lab(tmp)
    results: dict[str, Any] = {}
    try:
        lab.api(
            "PUT",
            "lab/api/settings/jupyter-mlops:plugin",
            {"raw": json.dumps({"maxRuns": args.runs, "refreshInterval": 0})},
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=ui.CHROMIUM, headless=True, args=ui.CHROMIUM_ARGS
            )
            firsts, alls, worst = [], [], []
            for _ in range(args.repeat):
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                lab.open_in(page)
                page.locator(ui_tab()).click()
                page.wait_for_selector(f'.jp-mlops-ExperimentItem[data-experiment-id="{big}"]')
                r = page.evaluate(FIRST_ROW_JS.replace("${N}", str(args.runs)), big)
                print("table:", r, flush=True)
                firsts.append(r["first"])
                alls.append(r["all"])
                if not page.locator(".jp-mlops-RunsScroll").count():
                    raise RuntimeError(
                        "no runs table: " + page.locator(".jp-mlops-RunsSection").inner_text()
                    )
                s = page.evaluate(SCROLL_JS)
                worst.append(s["worst"])
                print(
                    f"table: first row {r['first']:.0f} ms, all {r['all']:.0f} ms, "
                    f"{r['domRows']} rows in the DOM, worst scroll frame {s['worst']:.0f} ms "
                    f"({s['domRows']} rows in the DOM at the end, last {s['lastRow'][:40]!r}, "
                    f"viewport {s['clientHeight']} of {s['scrollHeight']} px)",
                    flush=True,
                )
                ctx.close()
            cmp_times = []
            for _ in range(args.repeat):
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                lab.open_in(page)
                t = page.evaluate(COMPARE_JS, cmp_ids)
                cmp_times.append(t)
                print(f"compare {len(cmp_ids)} x {args.steps}: drawn in {t:.0f} ms", flush=True)
                ctx.close()
            browser.close()
        raw, gz, n = bundle_size()
        results = {
            "table_first_row_ms": sorted(firsts)[len(firsts) // 2],
            "table_all_ms": sorted(alls)[len(alls) // 2],
            "table_worst_scroll_frame_ms": max(worst),
            "compare_drawn_ms": sorted(cmp_times)[len(cmp_times) // 2],
            "bundle_js_raw_kb": raw / 1024,
            "bundle_js_gz_kb": gz / 1024,
            "bundle_files": n,
        }
        print(json.dumps(results, indent=2))
    finally:
        ui._stop_lab(lab)


def ui_tab() -> str:
    return '.lm-TabBar-tab[data-id="jupyter-mlops-runs"]'


if __name__ == "__main__":
    main()
