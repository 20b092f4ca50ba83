"""Pipeline files and the DSL: what validation reports (file, line, field) and the model."""

from __future__ import annotations

import json

import pytest
from pipehelpers import write

from jupyter_mlops.pipelines import (
    PipelineInvalid,
    load_pipeline,
    notebook,
    param,
    pipeline,
    script,
)
from jupyter_mlops.pipelines.spec import SCHEMA_PATH, parse_pipeline

GOOD = """\
name: demo
parameters:
  lr: {type: float, default: 0.01}
  rows: 5
steps:
  prep:
    notebook: prep.ipynb
    parameters: {rows: "{{ params.rows }}"}
    outputs: [data.csv]
  train:
    script: train.py
    depends_on: [prep]
    parameters: {lr: "{{ params.lr }}", data: "{{ steps.prep.outputs }}/data.csv"}
    retries: 2
    timeout: 30
    cache: true
"""


def issues(ws, text, root=None):
    path = write(str(ws / "p.pipeline.yaml"), text)
    with pytest.raises(PipelineInvalid) as e:
        load_pipeline(path, root=str(root or ws))
    return e.value.issues


def test_good_pipeline_loads_into_the_model(ws):
    p = load_pipeline(write(str(ws / "p.pipeline.yaml"), GOOD), root=str(ws))
    assert p.name == "demo" and list(p.steps) == ["prep", "train"]
    assert p.parameters["lr"].type == "float" and p.parameters["rows"].default == 5
    t = p.steps["train"]
    assert (t.kind, t.depends_on, t.retries, t.timeout, t.cache) == (
        "script",
        ["prep"],
        2,
        30.0,
        True,
    )
    assert p.steps["prep"].outputs == ["data.csv"]


def test_cycle_is_named_with_its_steps_and_line(ws):
    text = GOOD.replace(
        "    outputs: [data.csv]\n", "    outputs: [data.csv]\n    depends_on: [train]\n"
    )
    found = [i for i in issues(ws, text) if i.code == "circularReference"]
    assert len(found) == 1
    assert (
        "prep -> train -> prep" in found[0].message or "train -> prep -> train" in found[0].message
    )
    assert found[0].line in (10, 13) and found[0].field.endswith("depends_on[0]")
    assert str(found[0]).startswith(str(ws / "p.pipeline.yaml") + ":")


def test_unknown_dependency_and_unknown_field_have_lines(ws):
    text = GOOD.replace("depends_on: [prep]", "depends_on: [prepare]").replace(
        "    cache: true\n", "    cache: true\n    retrys: 3\n"
    )
    found = issues(ws, text)
    by_field = {i.field: i for i in found}
    assert by_field["steps.train.retrys"].line == 17
    assert "unknown field 'retrys'" in by_field["steps.train.retrys"].message
    # structure errors are reported first; fix it and the dependency is named
    found = issues(ws, text.replace("    retrys: 3\n", ""))
    dep = next(i for i in found if i.code == "unknownDependency")
    assert dep.field == "steps.train.depends_on[0]" and dep.line == 12
    assert "'prepare'" in dep.message and "prep" in dep.message


def test_missing_files_and_escapes(ws, tmp_path_factory):
    text = GOOD.replace("script: train.py", "script: nope.py")
    miss = next(i for i in issues(ws, text) if i.field == "steps.train.script")
    assert "not found" in miss.message and miss.line == 11
    outside = tmp_path_factory.mktemp("outside")
    write(str(outside / "evil.py"), "print(1)\n")
    text = GOOD.replace("script: train.py", f"script: ../{outside.name}/evil.py")
    esc = next(i for i in issues(ws, text) if i.field == "steps.train.script")
    assert "outside the workspace" in esc.message


def test_parameters_unknown_mistyped_and_bad_templates(ws):
    text = GOOD.replace(
        'parameters: {rows: "{{ params.rows }}"}', 'parameters: {rows: "ten", colour: 1}'
    )
    found = {i.field: i for i in issues(ws, text)}
    assert found["steps.prep.parameters.colour"].code == "unknownParameter"
    assert (
        "rows, name" in found["steps.prep.parameters.colour"].message
        or "name, rows" in found["steps.prep.parameters.colour"].message
    )
    assert found["steps.prep.parameters.rows"].code == "mistypedParameter"
    # a float pipeline parameter into an integer notebook parameter
    text = GOOD.replace('{rows: "{{ params.rows }}"}', '{rows: "{{ params.lr }}"}')
    assert any(i.code == "mistypedParameter" for i in issues(ws, text))
    text = GOOD.replace("{{ params.lr }}", "{{ params.eta }}").replace(
        "{{ steps.prep.outputs }}", "{{ steps.prep.outputs"
    )
    found = {i.field: i for i in issues(ws, text)}
    assert "unknown pipeline parameter 'eta'" in found["steps.train.parameters.lr"].message
    assert "unbalanced" in found["steps.train.parameters.data"].message
    text = GOOD.replace("lr: {type: float, default: 0.01}", "lr: {type: float, default: fast}")
    assert any(i.field == "parameters.lr.default" for i in issues(ws, text))


def test_template_on_a_step_that_is_not_upstream(ws):
    text = GOOD.replace("    depends_on: [prep]\n", "")
    msg = next(i for i in issues(ws, text) if i.field == "steps.train.parameters.data").message
    assert "depends_on" in msg


def test_kernel_must_be_installed(ws):
    text = GOOD.replace(
        "    notebook: prep.ipynb\n", "    notebook: prep.ipynb\n    kernel: no-such-kernel\n"
    )
    found = next(i for i in issues(ws, text) if i.code == "unknownKernel")
    assert found.field == "steps.prep.kernel" and "python3" in found.message


def test_bad_yaml_names_line(ws):
    found = issues(ws, "name: x\nsteps:\n  a: [unclosed\n")
    assert found[0].code == "invalidYAML" and found[0].line is not None


def test_schema_file_is_shipped_and_valid_json():
    with open(SCHEMA_PATH) as f:
        schema = json.load(f)
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)


def test_dsl_builds_the_same_model_as_yaml(ws):
    yaml_p = parse_pipeline(GOOD, path=str(ws / "p.pipeline.yaml"), root=str(ws))

    @pipeline(name="demo", parameters={"lr": param(float, 0.01), "rows": param(int, 5)})
    def demo(lr, rows):
        prep = notebook("prep.ipynb", name="prep", parameters={"rows": rows}, outputs=["data.csv"])
        script(
            "train.py",
            name="train",
            parameters={"lr": lr, "data": f"{prep.outputs}/data.csv"},
            retries=2,
            timeout=30.0,
            cache=True,
        )

    demo.base_dir = str(ws)
    dsl_p = demo.build(root=str(ws))
    assert dsl_p.to_dict() == yaml_p.to_dict()
    assert dsl_p.steps["train"].depends_on == ["prep"]  # implied by prep.outputs
    again = parse_pipeline(demo.to_yaml(), path=str(ws / "q.pipeline.yaml"), root=str(ws))
    assert again.to_dict() == yaml_p.to_dict()


def test_dsl_validation_errors(ws):
    @pipeline
    def broken(n: int = 3):
        notebook("missing.ipynb")

    broken.base_dir = str(ws)
    with pytest.raises(PipelineInvalid, match=r"missing\.ipynb"):
        broken.build(root=str(ws))
