"""Reading MLproject files and computing commands, as ``mlflow run`` does; every refusal
names the parameter or field and the MLproject line, before anything starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from projhelpers import make_project

from jupyter_mlops.projects.envs import choose_manager, env_name, read_python_env
from jupyter_mlops.projects.fetch import fetch, split_subdirectory
from jupyter_mlops.projects.params import compute_command, compute_parameters, parse_pairs
from jupyter_mlops.projects.spec import ProjectError, load_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "churn")


def test_reads_entry_points_typed_parameters_and_environment(project: Path) -> None:
    p = load_project(str(project))
    assert p.name == "churn"
    assert p.env_kind == "python" and p.env_file == str(project / "python_env.yaml")
    assert list(p.entry_points) == ["main", "where"]
    main = p.entry_points["main"]
    assert [(q.name, q.type, q.default, q.line) for q in main.parameters.values()] == [
        ("alpha", "float", 0.5, 7),
        ("epochs", "int", 3, 8),
        ("label", "string", "a b", 9),
    ]
    out = p.entry_points["where"].parameters["out"]
    assert (out.type, out.required, out.line) == ("path", True, 13)


def test_command_quotes_values_and_appends_undeclared_parameters(project: Path) -> None:
    p = load_project(str(project))
    main = p.entry_point("main")
    cmd = compute_command(p, main, {"epochs": "5", "note": "it's"}, str(project))
    assert cmd == ("python train.py --alpha 0.5 --epochs 5 --label 'a b' --note 'it'\"'\"'s'")
    # what is logged: MLflow's quoted values, declared then extra
    final, extra = compute_parameters(p, main, {"epochs": "5", "note": "x y"}, None)
    assert final == {"alpha": "0.5", "epochs": "5", "label": "'a b'"}
    assert extra == {"note": "'x y'"}


def test_a_string_for_a_float_is_refused_naming_parameter_and_line(project: Path) -> None:
    p = load_project(str(project))
    with pytest.raises(ProjectError) as e:
        compute_command(p, p.entry_point("main"), {"alpha": "high"}, str(project))
    assert e.value.line == 7
    assert str(e.value).startswith("MLproject:7: entry_points.main.parameters.alpha:")
    assert "'alpha' (float): expected a float, got 'high'" in str(e.value)
    with pytest.raises(ProjectError, match=r"MLproject:8: .*expected an int, got '2.5'"):
        compute_command(p, p.entry_point("main"), {"epochs": "2.5"}, str(project))


def test_missing_required_and_unknown_entry_point(project: Path, tmp_path: Path) -> None:
    p = load_project(str(project))
    with pytest.raises(ProjectError, match=r"MLproject:13: .*missing parameters: 'out'"):
        compute_command(p, p.entry_point("where"), {}, str(project))
    with pytest.raises(ProjectError, match=r"Got value nowhere/x for parameter out"):
        compute_command(p, p.entry_point("where"), {"out": "nowhere/x"}, str(tmp_path))
    with pytest.raises(ProjectError) as e:
        p.entry_point("train")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "MLproject:4: entry_points: no entry point 'train' (declared: main, where" in str(
        e.value
    )


def test_path_parameters_become_absolute(project: Path, tmp_path: Path) -> None:
    p = load_project(str(project))
    (tmp_path / "data.csv").write_text("x\n")
    cmd = compute_command(
        p, p.entry_point("where"), {"out": "data.csv"}, str(tmp_path), str(tmp_path)
    )
    assert cmd == f"python where.py {tmp_path / 'data.csv'}"


def test_scripts_run_without_an_mlproject_file(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "go.sh").write_text("echo 1\n")
    p = load_project(str(tmp_path))
    assert p.file is None and p.env_kind is None
    assert p.entry_point("train.py").command == "python train.py"
    assert p.entry_point("go.sh").command.endswith("go.sh")
    cmd = compute_command(p, p.entry_point("train.py"), {"lr": "0.1"}, str(tmp_path))
    assert cmd == "python train.py --lr 0.1"
    with pytest.raises(ProjectError, match="no such file"):
        p.entry_point("other.py")
    assert choose_manager(p, None) == "local"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("name: x\npython_env: a.yaml\nconda_env: b.yaml\n", 3, "multiple environment fields"),
        ("docker_env:\n  volumes: [1]\n", 1, "no image attribute"),
        ("docker_env: {image: i, volumes: [1]}\n", 1, "volumes must be a list of strings"),
        (
            "entry_points:\n  main:\n    parameters: {a: {type: double}}\n    command: x\n",
            3,
            "unknown type 'double'",
        ),
        (
            "entry_points:\n  main:\n    parameters:\n      a: {type: float, default: high}\n"
            "    command: x {a}\n",
            4,
            "expected a float, got 'high'",
        ),
        ("entry_points:\n  main:\n    parameters: {}\n", 2, "a command"),
        ("entry_points: [1, 2]\n", 1, "a mapping of entry point names"),
        ("name: [unclosed\n", 2, "not valid YAML"),
    ],
)
def test_bad_mlproject_files_name_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    (tmp_path / "a.yaml").write_text("python: '3.11'\n")
    (tmp_path / "b.yaml").write_text("name: x\n")
    (tmp_path / "MLproject").write_text(text)
    with pytest.raises(ProjectError) as e:
        load_project(str(tmp_path))
    assert message in str(e.value)
    assert e.value.file == "MLproject" and e.value.line == line, str(e.value)


def test_braces_in_commands(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {a: int}\n"
        '    command: "echo {{literal}} {a} {missing}"\n'
    )
    p = load_project(str(tmp_path))
    with pytest.raises(ProjectError, match=r"MLproject:4: .*names \{missing\}"):
        compute_command(p, p.entry_point("main"), {"a": "1"}, str(tmp_path))


def test_environment_managers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conda = tmp_path / "conda"
    conda.mkdir()
    (conda / "MLproject").write_text("conda_env: conda.yaml\nentry_points: {}\n")
    (conda / "conda.yaml").write_text("name: x\n")
    p = load_project(str(conda))
    assert p.env_kind == "conda"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # no conda on PATH
    with pytest.raises(ProjectError, match=r"conda is not installed here.*--env-manager local"):
        choose_manager(p, None)
    assert choose_manager(p, "local") == "local"

    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "MLproject").write_text("docker_env:\n  image: reg/base:1\nentry_points: {}\n")
    d = load_project(str(docker))
    assert d.docker is not None and d.docker.image == "reg/base:1"
    with pytest.raises(ProjectError) as e:
        choose_manager(d, None)
    assert "reg/base:1" in str(e.value) and "Kubernetes" in str(e.value)
    assert e.value.line == 1
    assert choose_manager(d, "local") == "local"

    # without an environment field, python_env.yaml is picked up (MLflow's default)
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "python_env.yaml").write_text("python: '3'\n")
    assert load_project(str(tmp_path / "py")).env_kind == "python"
    with pytest.raises(ProjectError, match="one of local"):
        choose_manager(d, "docker")


def test_environment_hash_follows_requirements_content(project: Path) -> None:
    (project / "requirements.txt").write_text("six\n")
    (project / "python_env.yaml").write_text("dependencies: ['-r requirements.txt']\n")
    spec = read_python_env(str(project / "python_env.yaml"))
    first = env_name("virtualenv", shutil.which("python3") or "python3", spec, str(project))
    assert first == env_name("virtualenv", shutil.which("python3") or "python3", spec, str(project))
    (project / "requirements.txt").write_text("six==1.16.0\n")
    assert env_name("virtualenv", shutil.which("python3") or "python3", spec, str(project)) != first
    assert env_name("uv", shutil.which("python3") or "python3", spec, str(project)) != first


def test_uris(project: Path) -> None:
    assert split_subdirectory("https://h/r.git#a/b") == ("https://h/r.git", "a/b")
    with pytest.raises(ProjectError, match=r"'\.' is not allowed"):
        split_subdirectory("https://h/r.git#a/../..")
    with pytest.raises(ProjectError, match="only supported for Git"):
        fetch(str(project), version="main")
    fetched = fetch(f"{project.parent}#churn")
    assert fetched.work_dir == str(project)
    assert parse_pairs(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ProjectError, match="Repeated parameter: 'a'"):
        parse_pairs(["a=1", "a=2"])
