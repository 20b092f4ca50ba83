"""Pipeline executor benchmark.

Measures, on a fresh SQLite store, with the real executor (kernels, subprocesses,
tracking, state in the database):

  1. 10 trivial notebook steps (5 parallel branches of 2), parallelism 5, end to end
     (submit → SUCCEEDED): with the warm kernel pool already filled (a server that has
     run a pipeline before) and cold (first pipeline of a fresh process);
     for reference, papermill-style one-kernel-per-notebook start-up
     (``nbclient.NotebookClient(nb).execute()`` of one such notebook);
  2. scheduling overhead of a 100-step DAG (10 layers × 10 ``sh`` steps that do nothing,
     each depending on one step of the layer before), parallelism 4: wall time of our
     executor minus that of a bare asyncio runner launching the same processes in the same
     dependency order with the same parallelism (no tracking, no state, no logs).

Usage: ``PYTHONPATH=. python bench/bench_pipelines.py [--repeat N] [--append-results]``.
Targets (issue #4): (1) ≤ 4 s; (2) ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Warm kernels: one per notebook step of the pipeline, so both waves start at once.
WARM = 10
NB_CELLS = ["x = 1", "y = x + 1\nprint(y)"]


def make_notebook_pipeline(d: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("n = 0", metadata={"tags": ["parameters"]})] + [
        nbformat.v4.new_code_cell(c) for c in NB_CELLS
    ]
    nbformat.write(nb, str(d / "t.ipynb"))
    lines = ["name: ten-notebooks", "steps:"]
    for b in range(5):
        lines.append(f"  a{b}: {{notebook: t.ipynb, parameters: {{n: {b}}}}}")
        lines.append(f"  b{b}: {{notebook: t.ipynb, depends_on: [a{b}], parameters: {{n: {b}}}}}")
    (d / "ten.pipeline.yaml").write_text("\n".join(lines) + "\n")


def make_dag(d: Path, layers: int = 10, width: int = 10) -> list[tuple[str, list[str]]]:
    (d / "noop.sh").write_text("true\n")
    steps: list[tuple[str, list[str]]] = []
    lines = ["name: hundred", "steps:"]
    for layer in range(layers):
        for i in range(width):
            name = f"s{layer}_{i}"
            deps = [f"s{layer - 1}_{i}"] if layer else []
            steps.append((name, deps))
            lines.append(f"  {name}: {{script: noop.sh, depends_on: [{', '.join(deps)}]}}")
    (d / "hundred.pipeline.yaml").write_text("\n".join(lines) + "\n")
    return steps


def service(d: Path, parallelism: int, warm: int):
    from jupyter_mlops.pipelines.service import PipelineService
    from jupyter_mlops.tracking import open_store

    store = open_store(f"sqlite:///{d / 'mlops.db'}", artifact_root=str(d / "art"))
    env = dict(
        os.environ,
        JUPYTER_MLOPS_TRACKING_URI=store.uri,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return PipelineService(
        store, str(d), env=env, runs_dir=str(d / "runs"), parallelism=parallelism, warm_kernels=warm
    )


async def timed_run(svc, path: str) -> float:
    t = time.perf_counter()
    run = await svc.submit(path)
    run = await svc.wait(run["run_id"])
    dt = time.perf_counter() - t
    assert run["status"] == "SUCCEEDED", run
    return dt


async def bench_notebooks(d: Path, repeat: int) -> dict[str, float]:
    make_notebook_pipeline(d)
    svc = service(d, 5, 5)
    await svc.start(schedules=False)
    await timed_run(svc, "ten.pipeline.yaml")  # imports, validation caches
    await svc.stop()
    svc = service(d, 5, WARM)
    await svc.start(schedules=False)
    cold = await timed_run(svc, "ten.pipeline.yaml")
    warm = []
    for _ in range(repeat):
        await svc.warm()
        warm.append(await timed_run(svc, "ten.pipeline.yaml"))
    await svc.stop()
    return {
        "cold": cold,
        "warm": statistics.median(warm),
        "warm_min": min(warm),
        "warm_max": max(warm),
    }


def bench_papermill_style(d: Path) -> float:
    import nbclient
    import nbformat

    nb = nbformat.read(str(d / "t.ipynb"), 4)
    nbclient.NotebookClient(nb).execute()
    t = time.perf_counter()
    nbclient.NotebookClient(nbformat.read(str(d / "t.ipynb"), 4)).execute()
    return time.perf_counter() - t


async def bare_runner(d: Path, steps: list[tuple[str, list[str]]], parallelism: int) -> float:
    """The same processes in the same order with the same parallelism, nothing else."""
    sem = asyncio.Semaphore(parallelism)
    done: dict[str, asyncio.Event] = {n: asyncio.Event() for n, _ in steps}

    async def one(name: str, deps: list[str]) -> None:
        for dep in deps:
            await done[dep].wait()
        async with sem:
            p = await asyncio.create_subprocess_exec(
                "sh", str(d / "noop.sh"), cwd=str(d), start_new_session=True
            )
            await p.wait()
        done[name].set()

    t = time.perf_counter()
    await asyncio.gather(*(one(n, deps) for n, deps in steps))
    return time.perf_counter() - t


async def bench_dag(d: Path, repeat: int) -> dict[str, float]:
    steps = make_dag(d)
    svc = service(d, 4, 0)
    await svc.start(schedules=False)
    await timed_run(svc, "hundred.pipeline.yaml")  # warm-up
    ours, bare = [], []
    for _ in range(repeat):
        bare.append(await bare_runner(d, steps, 4))
        ours.append(await timed_run(svc, "hundred.pipeline.yaml"))
    await svc.stop()
    o, b = statistics.median(ours), statistics.median(bare)
    return {"ours": o, "bare": b, "overhead": o - b, "per_step_ms": (o - b) * 10}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--append-results", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        nb = asyncio.run(bench_notebooks(d, args.repeat))
        pm = bench_papermill_style(d)
        dag = asyncio.run(bench_dag(d, args.repeat))
    load = os.getloadavg()[0]
    rows = [
        (
            f"10 notebook steps (5 branches × 2), parallelism 5, {WARM} warm kernels, end to end",
            f"{nb['warm']:.2f} s (min {nb['warm_min']:.2f}, max {nb['warm_max']:.2f})",
            "≤ 4 s",
        ),
        (
            "same, cold (first run of a fresh process: kernels start on submit)",
            f"{nb['cold']:.2f} s",
            "",
        ),
        (
            "reference: one notebook through nbclient with its own kernel (papermill-style)",
            f"{pm:.2f} s per notebook → 10 sequential ≈ {10 * pm:.1f} s",
            "",
        ),
        (
            "100-step DAG (10 × 10 `sh` no-op steps, parallelism 4): ours / bare asyncio runner",
            f"{dag['ours']:.2f} s / {dag['bare']:.2f} s",
            "",
        ),
        (
            "scheduling overhead of the 100-step DAG (ours − bare)",
            f"{dag['overhead']:.2f} s ({dag['per_step_ms']:.1f} ms per step)",
            "≤ 1 s",
        ),
    ]
    text = ["| measure | result | target |", "|---|---|---|"]
    text += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    print("\n".join(text))
    print(f"(load average {load:.1f}, median of {args.repeat})")
    if args.append_results:
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write(
                f"\n## Pipelines\n\n`python bench/bench_pipelines.py --repeat {args.repeat}`, "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, CPython "
                f"{sys.version.split()[0]}, shared 2-core VM (load average {load:.1f}).\n\n"
            )
            f.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
