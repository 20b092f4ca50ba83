"""The Kubeflow compiler: the KFP v2 IR of a pipeline, checked field by field."""

from __future__ import annotations

import base64
import copy
import io
import json
import tarfile

import pytest
from pipehelpers import write, write_notebook

from jupyter_mlops._version import __version__
from jupyter_mlops.pipelines.kubeflow import (
    CompileError,
    KubeflowSettings,
    check_references,
    compile_pipeline,
    task_name,
)
from jupyter_mlops.pipelines.kubeflow.compiler import KFP_NAME, pipeline_name
from jupyter_mlops.pipelines.spec import load_pipeline

RUNS = {"prep": "r-prep", "Train_Big": "r-train", "report": "r-report"}
SETTINGS = KubeflowSettings(
    image="registry/mlops:1",
    tracking_uri="https://hub/mlops",
    env={"TEAM": "a", "OMP_NUM_THREADS": "4"},
    secret_env={"JUPYTER_MLOPS_TRACKING_TOKEN": ("mlops-token", "token"), "AWS_KEY": ("s3", "key")},
    pipeline_root="minio://mlpipeline/team-a",
)


@pytest.fixture
def ws(tmp_path):
    write_notebook(str(tmp_path / "prep.ipynb"), "rows = 1\nratio = 0.5\n", "print(rows)")
    write_notebook(
        str(tmp_path / "train.ipynb"),
        "lr = 0.1\nflags = []\nopts = {}\nfast = False\nname = ''\nsrc = ''\n",
        "print(lr)",
    )
    write(str(tmp_path / "report.py"), "print('report')\n")
    write(str(tmp_path / "data" / "raw.csv"), "a,b\n1,2\n")
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: Team_A.train
        description: three steps
        parameters:
          rows: {type: integer, default: 10}
          lr: {type: float, default: 0.01, description: learning rate}
          fast: {type: boolean, default: true}
          tag: {type: string, default: v1}
          flags: {type: list, default: [a]}
          opts: {type: dict, default: {k: 1}}
        steps:
          prep:
            notebook: prep.ipynb
            parameters: {rows: "{{ params.rows }}", ratio: 0.25}
            inputs: [data/raw.csv]
            outputs: [clean/train.csv, stats.json]
            cache: true
            resources: {cpu: 500m, memory: 512Mi}
          Train_Big:
            notebook: train.ipynb
            depends_on: [prep]
            parameters:
              lr: "{{ params.lr }}"
              flags: "{{ params.flags }}"
              opts: "{{ params.opts }}"
              fast: "{{ params.fast }}"
              name: "model-{{ params.tag }}-{{ pipeline.name }}"
              src: "{{ steps.prep.outputs }}/clean"
            env: {OMP_NUM_THREADS: "1", RUN: "{{ run.id }}", TAG: "{{ params.tag }}"}
            outputs: [model.pkl]
            retries: 2
            retry_delay: 1.5
            timeout: 900
            image: registry/gpu:2
            resources: {cpu: 2, memory: 4G, gpu: 1}
          report:
            script: report.py
            depends_on: [Train_Big]
            args: [--from, "{{ steps.prep.outputs }}"]
            parameters: {threshold: 0.8}
        """,
    )
    return tmp_path


def compile_ws(ws, params=None, settings=SETTINGS):
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    return compile_pipeline(
        p, params or {"lr": 0.05}, step_run_ids=RUNS, parent_run_id="r-parent", settings=settings
    )


def config_of(container):
    return json.loads(container["args"][container["args"].index("--config") + 1])


def archive_of(container):
    b64 = container["command"][container["command"].index("--archive") + 1]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_golden_structure_of_a_multi_step_pipeline(ws):
    ir = compile_ws(ws)
    spec = ir["pipeline_spec"]
    assert spec["schemaVersion"] == "2.1.0"
    assert spec["sdkVersion"] == f"jupyter-mlops-{__version__}"
    assert spec["pipelineInfo"] == {
        "name": "team-a.train",
        "displayName": "Team_A.train",
        "description": "three steps",
    }
    assert spec["defaultPipelineRoot"] == "minio://mlpipeline/team-a"
    train = task_name("Train_Big")
    assert train != "Train_Big" and KFP_NAME.match(train)

    # root inputs: every pipeline parameter, KFP-typed, this run's values as defaults
    assert spec["root"]["inputDefinitions"]["parameters"] == {
        "rows": {"parameterType": "NUMBER_INTEGER", "isOptional": True, "defaultValue": 10},
        "lr": {
            "parameterType": "NUMBER_DOUBLE",
            "isOptional": True,
            "defaultValue": 0.05,
            "description": "learning rate",
        },
        "fast": {"parameterType": "BOOLEAN", "isOptional": True, "defaultValue": True},
        "tag": {"parameterType": "STRING", "isOptional": True, "defaultValue": "v1"},
        "flags": {"parameterType": "LIST", "isOptional": True, "defaultValue": ["a"]},
        "opts": {"parameterType": "STRUCT", "isOptional": True, "defaultValue": {"k": 1}},
    }

    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"prep", train, "report"}
    prep, tr, rep = tasks["prep"], tasks[train], tasks["report"]
    assert prep["taskInfo"] == {"name": "prep"} and prep["componentRef"] == {"name": "comp-prep"}
    assert prep["cachingOptions"] == {"enableCache": True}
    assert tr["cachingOptions"] == {} and rep["cachingOptions"] == {}
    assert "dependentTasks" not in prep and "retryPolicy" not in prep
    assert tr["dependentTasks"] == ["prep"]
    assert rep["dependentTasks"] == sorted(["prep", train])  # data from prep, order after train
    assert tr["retryPolicy"] == {
        "maxRetryCount": 2,
        "backoffDuration": "2s",
        "backoffFactor": 1.0,
        "backoffMaxDuration": "3600s",
    }

    # parameters: exactly {{ params.x }} -> the root input; the rest resolved as constants
    assert prep["inputs"]["parameters"] == {
        "rows": {"componentInputParameter": "rows"},
        "ratio": {"runtimeValue": {"constant": 0.25}},
    }
    assert tr["inputs"]["parameters"] == {
        "lr": {"componentInputParameter": "lr"},
        "flags": {"componentInputParameter": "flags"},
        "opts": {"componentInputParameter": "opts"},
        "fast": {"componentInputParameter": "fast"},
        "name": {"runtimeValue": {"constant": "model-v1-Team_A.train"}},
    }
    assert rep["inputs"]["parameters"] == {"threshold": {"runtimeValue": {"constant": 0.8}}}
    comps = spec["components"]
    assert comps["comp-prep"]["inputDefinitions"]["parameters"] == {
        "rows": {"parameterType": "NUMBER_INTEGER"},
        "ratio": {"parameterType": "NUMBER_DOUBLE"},
    }
    assert comps[f"comp-{train}"]["inputDefinitions"]["parameters"] == {
        "lr": {"parameterType": "NUMBER_DOUBLE"},
        "flags": {"parameterType": "LIST"},
        "opts": {"parameterType": "STRUCT"},
        "fast": {"parameterType": "BOOLEAN"},
        "name": {"parameterType": "STRING"},
    }

    # outputs are artifacts; consumers read them from their producer
    art = {"artifactType": {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}}
    assert comps["comp-prep"]["outputDefinitions"] == {
        "artifacts": {"clean_train_csv": art, "stats_json": art}
    }
    assert comps[f"comp-{train}"]["outputDefinitions"] == {"artifacts": {"model_pkl": art}}
    assert tr["inputs"]["artifacts"] == {
        "prep__clean_train_csv": {
            "taskOutputArtifact": {"producerTask": "prep", "outputArtifactKey": "clean_train_csv"}
        },
        "prep__stats_json": {
            "taskOutputArtifact": {"producerTask": "prep", "outputArtifactKey": "stats_json"}
        },
    }
    # report: its direct dependency's output, and prep's for {{ steps.prep.outputs }}
    assert set(rep["inputs"]["artifacts"]) == {
        "Train_Big__model_pkl",
        "prep__clean_train_csv",
        "prep__stats_json",
    }
    assert set(comps["comp-report"]["inputDefinitions"]["artifacts"]) == set(
        rep["inputs"]["artifacts"]
    )
    assert "outputDefinitions" not in comps["comp-report"]

    # one executor per step, named by the component
    execs = spec["deploymentSpec"]["executors"]
    assert (
        {c["executorLabel"] for c in comps.values()}
        == set(execs)
        == {"exec-prep", f"exec-{train}", "exec-report"}
    )
    assert check_references(spec) == []


def test_executor_containers(ws):
    spec = compile_ws(ws)["pipeline_spec"]
    train = task_name("Train_Big")
    execs = spec["deploymentSpec"]["executors"]
    prep, tr, rep = (execs[f"exec-{n}"]["container"] for n in ("prep", train, "report"))
    assert prep["image"] == "registry/mlops:1" and tr["image"] == "registry/gpu:2"
    for c in (prep, tr, rep):
        assert c["command"][:5] == [
            "python3",
            "-m",
            "jupyter_mlops.pipelines.kubeflow.step",
            "--archive",
            c["command"][4],
        ]
        assert c["args"][:2] == ["--executor_input", "{{$}}"]

    # resources: string fields and the legacy numbers; requests = limits; gpu -> nvidia
    assert prep["resources"] == {
        "resourceCpuLimit": "500m",
        "resourceCpuRequest": "500m",
        "cpuLimit": 0.5,
        "cpuRequest": 0.5,
        "resourceMemoryLimit": "512Mi",
        "resourceMemoryRequest": "512Mi",
        "memoryLimit": 0.536870912,
        "memoryRequest": 0.536870912,
    }
    assert tr["resources"] == {
        "resourceCpuLimit": "2",
        "resourceCpuRequest": "2",
        "cpuLimit": 2.0,
        "cpuRequest": 2.0,
        "resourceMemoryLimit": "4G",
        "resourceMemoryRequest": "4G",
        "memoryLimit": 4.0,
        "memoryRequest": 4.0,
        "accelerator": {
            "resourceType": "nvidia.com/gpu",
            "resourceCount": "1",
            "type": "nvidia.com/gpu",
            "count": "1",
        },
    }
    assert "resources" not in rep

    # env: the target's, the step's (wins; templates resolved), then the run contract;
    # variables coming from secrets are left to the PlatformSpec
    env = {e["name"]: e["value"] for e in tr["env"]}
    assert env == {
        "TEAM": "a",
        "OMP_NUM_THREADS": "1",
        "TAG": "v1",
        "JUPYTER_MLOPS_TRACKING_URI": "https://hub/mlops",
        "JUPYTER_MLOPS_RUN_ID": "r-train",
        "MLFLOW_RUN_ID": "r-train",
        "JUPYTER_MLOPS_PIPELINE_RUN_ID": "r-parent",
        "JUPYTER_MLOPS_PIPELINE_STEP": "Train_Big",
    }
    assert {e["name"]: e["value"] for e in prep["env"]}["OMP_NUM_THREADS"] == "4"

    # what the pod fills: templates naming pod paths or the run id; the timeout
    cfg = config_of(tr)
    assert cfg["step"] == "Train_Big" and cfg["kind"] == "notebook"
    assert cfg["timeout"] == 900.0
    assert cfg["parameters"] == ["lr", "flags", "opts", "fast", "name", "src"]
    assert cfg["in_pod"] == {"src": "{{ steps.prep.outputs }}/clean"}
    assert cfg["env"] == {"RUN": "{{ run.id }}"}
    assert cfg["outputs"] == {"model.pkl": "model_pkl"}
    assert cfg["received"]["prep__stats_json"] == {
        "step": "prep",
        "path": "stats.json",
        "direct": True,
    }
    assert config_of(rep)["received"]["prep__stats_json"]["direct"] is False
    assert config_of(rep)["args"] == ["--from", "{{ steps.prep.outputs }}"]
    # "{{" and "$" never reach KFP's launcher, Argo or Kubernetes unescaped
    assert "{{" not in tr["args"][3] and "$" not in tr["args"][3]

    # the embedded files: the notebook and its declared inputs, paths as in the workspace
    assert set(archive_of(prep)) == {"prep.ipynb", "data/raw.csv"}
    assert archive_of(prep)["data/raw.csv"] == b"a,b\n1,2\n"
    assert set(archive_of(rep)) == {"report.py"}


def test_secrets_go_to_the_platform_spec(ws):
    ir = compile_ws(ws)
    execs = ir["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(execs) == set(ir["pipeline_spec"]["deploymentSpec"]["executors"])
    assert execs["exec-prep"] == {
        "secretAsEnv": [
            {
                "secretName": "mlops-token",
                "keyToEnv": [{"secretKey": "token", "envVar": "JUPYTER_MLOPS_TRACKING_TOKEN"}],
            },
            {"secretName": "s3", "keyToEnv": [{"secretKey": "key", "envVar": "AWS_KEY"}]},
        ]
    }
    plain = KubeflowSettings(image="i", tracking_uri="sqlite:///x.db")
    ir = compile_ws(ws, settings=plain)
    assert ir["platform_spec"] is None and "defaultPipelineRoot" not in ir["pipeline_spec"]


def test_reproducible_commands_and_untouched_model(ws):
    """Same files and parameters -> the same command and args (KFP's cache key); the run
    ids are only in the env. Compiling does not change the pipeline."""
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    before = copy.deepcopy(p.to_dict())
    a = compile_pipeline(p, {}, step_run_ids=RUNS, parent_run_id="p1", settings=SETTINGS)
    b = compile_pipeline(
        p,
        {},
        step_run_ids={k: v + "x" for k, v in RUNS.items()},
        parent_run_id="p2",
        settings=SETTINGS,
    )
    for label, ex in a["pipeline_spec"]["deploymentSpec"]["executors"].items():
        other = b["pipeline_spec"]["deploymentSpec"]["executors"][label]["container"]
        assert ex["container"]["command"] == other["command"]
        assert ex["container"]["args"] == other["args"]
        assert ex["container"]["env"] != other["env"]
    assert p.to_dict() == before
    changed = compile_pipeline(
        p, {"rows": 11}, step_run_ids=RUNS, parent_run_id="p1", settings=SETTINGS
    )["pipeline_spec"]
    assert changed["root"]["inputDefinitions"]["parameters"]["rows"]["defaultValue"] == 11


def test_parameter_values_are_checked(ws):
    with pytest.raises(CompileError, match="parameter 'rows': 'many' is not an integer"):
        compile_ws(ws, {"rows": "many"})
    with pytest.raises(CompileError, match="unknown parameter 'nope'"):
        compile_ws(ws, {"nope": 1})
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    with pytest.raises(CompileError, match="step 'prep': image: none given"):
        compile_pipeline(
            p,
            {},
            step_run_ids=RUNS,
            parent_run_id="x",
            settings=KubeflowSettings(image="", tracking_uri="u"),
        )
    with pytest.raises(CompileError, match="no tracking_uri"):
        compile_pipeline(
            p,
            {},
            step_run_ids=RUNS,
            parent_run_id="x",
            settings=KubeflowSettings(image="i", tracking_uri=""),
        )
    with pytest.raises(CompileError, match=r"no tracked run for step.*'report'"):
        compile_pipeline(
            p,
            {},
            step_run_ids={"prep": "a", "Train_Big": "b"},
            parent_run_id="x",
            settings=SETTINGS,
        )


@pytest.mark.parametrize(
    "name,expected",
    [
        ("train-and-evaluate", "train-and-evaluate"),
        ("Team_A.train", "team-a.train"),
        ("My__Pipeline--2", "my-pipeline-2"),
        ("_x.-y_", "x.y"),
        ("v1.2.3", "v1.2.3"),
        ("___", "pipeline"),
    ],
)
def test_pipeline_name_fits_kfp(name, expected):
    assert pipeline_name(name) == expected
    assert KFP_NAME.match(pipeline_name(name))


def test_task_names_are_kubernetes_names_and_distinct():
    assert task_name("prep") == "prep"
    names = {task_name(n) for n in ("Train", "train", "train_1", "train-1", "TRAIN_1")}
    assert len(names) == 5
    for n in names:
        assert KFP_NAME.match(n) and len(n) <= 63


def test_steps_named_like_kfp_nodes_get_task_names_kfp_never_uses():
    """GetRun lists KFP's own nodes (root, root-driver, <task>-driver, executor) among the
    tasks: a step must never share a display name with one of them."""
    for step in ("root", "root-driver", "executor", "train-driver", "driver-driver"):
        name = task_name(step)
        assert name != step and name.startswith(step + "-") and KFP_NAME.match(name)
        assert name not in ("root", "root-driver", "executor") and not name.endswith("-driver")
    assert task_name("driver") == "driver" and task_name("drivers") == "drivers"
    assert task_name("root-cause") == "root-cause" and task_name("executors") == "executors"


def test_type_mapping_of_constants(tmp_path):
    write_notebook(str(tmp_path / "a.ipynb"), "i = 0\nf = 0.0\nb = False\ns = ''\nl = []\nd = {}\n")
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: types
        steps:
          a:
            notebook: a.ipynb
            parameters: {i: 3, f: 2.5, b: true, s: x, l: [1, 2], d: {k: v}}
        """,
    )
    p = load_pipeline(str(tmp_path / "p.pipeline.yaml"))
    spec = compile_pipeline(p, {}, step_run_ids={"a": "r"}, parent_run_id="p", settings=SETTINGS)[
        "pipeline_spec"
    ]
    assert {
        k: v["parameterType"]
        for k, v in spec["components"]["comp-a"]["inputDefinitions"]["parameters"].items()
    } == {
        "i": "NUMBER_INTEGER",
        "f": "NUMBER_DOUBLE",
        "b": "BOOLEAN",
        "s": "STRING",
        "l": "LIST",
        "d": "STRUCT",
    }
    assert spec["root"]["dag"]["tasks"]["a"]["inputs"]["parameters"]["d"] == {
        "runtimeValue": {"constant": {"k": "v"}}
    }
    assert "inputDefinitions" not in spec["root"]  # no pipeline parameters


def test_oversize_file_names_the_step(ws):
    write(str(ws / "data" / "raw.csv"), "x" * 2000)
    small = KubeflowSettings(image="i", tracking_uri="u", max_embedded_bytes=1000)
    with pytest.raises(
        CompileError,
        match=r"step 'prep': 'data/raw.csv' is 2,000 bytes; "
        r"files over 1,000 bytes \(max_embedded_bytes\)",
    ):
        compile_ws(ws, settings=small)


def test_unvalidated_templates_name_step_and_field(ws):
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    p.steps["report"].parameters = {"threshold": "{{ params.nope }}"}
    with pytest.raises(
        CompileError,
        match=r"step 'report': parameters\.threshold: unknown "
        r"pipeline parameter 'nope'",
    ):
        compile_pipeline(p, {}, step_run_ids=RUNS, parent_run_id="x", settings=SETTINGS)
    p.steps["report"].parameters = {}
    p.steps["report"].env = {"X": "a{{ params.nope }}"}
    with pytest.raises(
        CompileError,
        match=r"step 'report': env\.X: unknown template "
        r"\{\{ params\.nope \}\}",
    ):
        compile_pipeline(p, {}, step_run_ids=RUNS, parent_run_id="x", settings=SETTINGS)


def test_env_names_kubernetes_refuses_are_compile_errors(ws):
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    p.steps["report"].env = {"MY VAR": "1"}
    with pytest.raises(CompileError, match=r"step 'report': env: 'MY VAR' is not an environment"):
        compile_pipeline(p, {}, step_run_ids=RUNS, parent_run_id="x", settings=SETTINGS)


def test_bad_resources_name_step_and_field(ws):
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    for res, msg in [
        ({"gpu": 1.5}, r"step 'prep': resources\.gpu: must be a whole number"),
        ({"cpu": "lots"}, r"step 'prep': resources\.cpu: 'lots' is not a CPU"),
        ({"memory": "2GB"}, r"step 'prep': resources\.memory: '2GB'"),
    ]:
        p.steps["prep"].resources = res
        with pytest.raises(CompileError, match=msg):
            compile_pipeline(p, {}, step_run_ids=RUNS, parent_run_id="x", settings=SETTINGS)


def test_files_outside_the_pipeline_directory_keep_their_relative_paths(tmp_path):
    write_notebook(str(tmp_path / "shared" / "nb.ipynb"), None, "print(1)")
    write(str(tmp_path / "shared" / "lookup.csv"), "k\n")
    write(
        str(tmp_path / "pipes" / "p.pipeline.yaml"),
        """\
        name: up
        steps:
          s: {notebook: ../shared/nb.ipynb, inputs: [../shared/lookup.csv]}
        """,
    )
    p = load_pipeline(str(tmp_path / "pipes" / "p.pipeline.yaml"))
    spec = compile_pipeline(p, {}, step_run_ids={"s": "r"}, parent_run_id="p", settings=SETTINGS)[
        "pipeline_spec"
    ]
    container = spec["deploymentSpec"]["executors"]["exec-s"]["container"]
    assert set(archive_of(container)) == {"shared/nb.ipynb", "shared/lookup.csv"}
    assert config_of(container)["pipeline_dir"] == "pipes"


def test_check_references_catches_each_broken_reference(ws):
    spec = compile_ws(ws)["pipeline_spec"]
    assert check_references(spec) == []
    assert check_references({"pipeline_spec": spec, "platform_spec": None}) == []
    train = task_name("Train_Big")

    bad = copy.deepcopy(spec)
    bad["root"]["dag"]["tasks"]["prep"]["componentRef"]["name"] = "comp-ghost"
    assert any(
        "task 'prep': cannot find component ref name=comp-ghost" in p for p in check_references(bad)
    )

    bad = copy.deepcopy(spec)
    bad["root"]["dag"]["tasks"][train]["dependentTasks"] = ["prep", "ghost"]
    assert check_references(bad) == [f"task '{train}': dependentTasks names unknown task 'ghost'"]

    bad = copy.deepcopy(spec)
    del bad["deploymentSpec"]["executors"]["exec-report"]
    assert check_references(bad) == [
        "component 'comp-report': executor(label=exec-report) not found in deployment config"
    ]

    bad = copy.deepcopy(spec)
    src = bad["root"]["dag"]["tasks"][train]["inputs"]["artifacts"]["prep__stats_json"]
    src["taskOutputArtifact"]["outputArtifactKey"] = "nothing"
    bad["root"]["dag"]["tasks"][train]["inputs"]["parameters"]["lr"] = {
        "componentInputParameter": "alpha"
    }
    problems = check_references(bad)
    assert any("reads output 'nothing', which task 'prep' does not produce" in p for p in problems)
    assert any("reads root input 'alpha', which is not declared" in p for p in problems)


def test_archive_is_gzip_with_fixed_timestamps(ws):
    container = compile_ws(ws)["pipeline_spec"]["deploymentSpec"]["executors"]["exec-prep"][
        "container"
    ]
    raw = base64.b64decode(container["command"][4])
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip, header mtime 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_zero_resources_ask_for_nothing(ws):
    p = load_pipeline(str(ws / "p.pipeline.yaml"))
    p.steps["prep"].resources = {"cpu": 0, "memory": "0", "gpu": 0}
    spec = compile_pipeline(p, {}, step_run_ids=RUNS, parent_run_id="x", settings=SETTINGS)[
        "pipeline_spec"
    ]
    assert "resources" not in spec["deploymentSpec"]["executors"]["exec-prep"]["container"]


def test_upstream_steps_with_clashing_names_get_distinct_inputs(tmp_path):
    for n in ("a-b", "a_b", "c"):
        write(str(tmp_path / f"{n}.py"), "open('out.txt', 'w').write('x')\n")
    write(
        str(tmp_path / "p.pipeline.yaml"),
        """\
        name: clash
        steps:
          a-b: {script: a-b.py, outputs: [out.txt]}
          a_b: {script: a_b.py, outputs: [out.txt]}
          c: {script: c.py, depends_on: [a-b, a_b]}
        """,
    )
    p = load_pipeline(str(tmp_path / "p.pipeline.yaml"))
    spec = compile_pipeline(
        p, {}, step_run_ids={"a-b": "1", "a_b": "2", "c": "3"}, parent_run_id="p", settings=SETTINGS
    )["pipeline_spec"]
    arts = spec["root"]["dag"]["tasks"]["c"]["inputs"]["artifacts"]
    assert len(arts) == 2
    assert {a["taskOutputArtifact"]["producerTask"] for a in arts.values()} == {
        task_name("a-b"),
        task_name("a_b"),
    }
    assert check_references(spec) == []
