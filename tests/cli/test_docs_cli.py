"""The docs name only commands, options and settings that exist.

Parses the markdown (and the spawner/binder files admins copy) and checks it against the
real argparse parser of ``jupyter mlops`` and the real traitlets classes:

- every ``jupyter mlops <command> [--option ...]`` written anywhere is a command of the
  parser and each option one of that command's;
- every command of the parser has a section in docs/cli.md whose usage line lists exactly
  its options (so ``--help`` and the page cannot drift apart);
- every ``c.<Class>.<trait>`` / ``--<Class>.<trait>`` is a configurable trait of that class,
  the settings tables list every trait of jupyter-mlops' own classes, and the defaults they
  state as plain literals are the traits' defaults;
- every ``JUPYTER_MLOPS_*`` variable the package reads is documented, and every documented
  one is read somewhere.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Iterator

import pytest
from clihelpers import REPO

from jupyter_mlops.cli import build_parser

#: User-facing prose: everything a user or admin reads.
DOCS = [
    "README.md",
    "CONTRIBUTING.md",
    "docs/cli.md",
    "docs/pipelines.md",
    "docs/models.md",
    "docs/deployments.md",
    "docs/training.md",
    "docs/projects.md",
    "docs/tracing.md",
    "docs/notifications.md",
    "docs/scale.md",
    "spawner/GUIDE.md",
]
#: Files admins copy or run, whose comments name commands and settings too.
CONFIG_FILES = [
    "spawner/jupyterhub_config.py",
    "spawner/teams.example.yaml",
    "spawner/z2jh-values.yaml",
    "binder/postBuild",
    "binder/examples/pipeline/train-and-evaluate.pipeline.yaml",
    "binder/examples/pipeline/pipeline_dsl.py",
]

#: Where each configurable class named in the docs lives (module, class, "ours": its own
#: traits must all be documented).
CONFIG_CLASSES = {
    "MLOpsApp": ("jupyter_mlops.server.app", True),
    "PipelineService": ("jupyter_mlops.pipelines.service", True),
    "DeploymentService": ("jupyter_mlops.deployments.service", True),
    "TrainingService": ("jupyter_mlops.jobs.service", True),
    "ProjectService": ("jupyter_mlops.projects.service", True),
    "AccessPolicy": ("jupyter_mlops.server.access", True),
    "TeamSpawner": ("jupyter_mlops.hub.spawner", True),
    "TeamOps": ("jupyter_mlops.hub.api", True),
    "HubAgentService": ("jupyter_mlops.hubagent.service", True),
    "HubRunsService": ("jupyter_mlops.hubagent.runs", True),
    "NotificationService": ("jupyter_mlops.notifications.service", True),
    "KubeSpawner": ("kubespawner", False),
    "JupyterHub": ("jupyterhub.app", False),
    "ServerApp": ("jupyter_server.serverapp", False),
    "IdentityProvider": ("jupyter_server.auth.identity", False),
    "HubAuth": ("jupyterhub.services.auth", False),
}
#: The settings tables: a heading naming ``c.<Class>.*`` and the table under it.
SETTINGS_TABLES = {
    "PipelineService": "docs/pipelines.md",
    "DeploymentService": "docs/deployments.md",
    "TrainingService": "docs/training.md",
    "ProjectService": "docs/projects.md",
    "TeamSpawner": "spawner/GUIDE.md",
}


def read(rel: str) -> str:
    return (REPO / rel).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- commands


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def leaf_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = _subparsers(parser)
    if not subs:
        yield path, parser
    for name, sub in subs.items():
        yield from leaf_commands(sub, (*path, name))


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """Each option of ``parser`` (but --help) by its longest name."""
    return {
        max(action.option_strings, key=len)
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    }


def documented_options(parser: argparse.ArgumentParser, lines: list[str]) -> set[str]:
    """The options the lines name (``-p`` or ``--param``: the same one), by longest name;
    unknown ones as written, so that they show up as a difference."""
    found = set()
    for opt in re.findall(r"(?<![\w-])--?[a-z][a-z-]*", " ".join(lines)):
        action = parser._option_string_actions.get(opt)
        found.add(max(action.option_strings, key=len) if action else opt)
    return found


_COMMAND = re.compile(r"jupyter mlops((?: +[^\s`#|]+)*)")


def documented_command_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, tokens after 'jupyter mlops')`` for each mention. Markdown table
    cells escape ``|`` as ``\\|`` (alternatives such as ``check\\|render``); a bare ``|``,
    a backtick or ``#`` ends the command."""
    for number, line in enumerate(text.splitlines(), 1):
        for m in _COMMAND.finditer(line.replace("\\|", "¦")):
            tokens = [tok.strip("[]") for tok in m.group(1).split()]
            yield number, [tok for tok in tokens if tok]


def check_command(parser: argparse.ArgumentParser, tokens: list[str]) -> str | None:
    """Walk the tokens through the parser: None if every subcommand and option exists,
    else what is wrong."""
    current, path = parser, ["jupyter mlops"]
    skip_value = False
    for tok in tokens:
        if skip_value:
            skip_value = False
            continue
        if tok in ("...", "…") or tok.startswith(("<", "$", "(")):
            return None  # a placeholder or prose: nothing more to check
        if tok.startswith("-"):
            name = tok.split("=", 1)[0]
            for alternative in name.split("¦"):
                action = current._option_string_actions.get(alternative)
                if action is None:
                    return f"{' '.join(path)} has no option {alternative}"
            skip_value = "=" not in tok and action.nargs != 0
            continue
        subs = _subparsers(current)
        if not subs:
            continue  # a positional argument
        if tok.isupper():
            return None  # a metavar: "jupyter mlops COMMAND --help"
        names = re.split(r"[¦|]", tok)
        unknown = [n for n in names if n not in subs]
        if unknown:
            return f"{' '.join(path)} has no command {unknown[0]!r} (it has: {', '.join(subs)})"
        path.append(names[0])
        current = subs[names[0]]
    return None


def all_mentions() -> Iterator[tuple[str, int, list[str]]]:
    for rel in DOCS + CONFIG_FILES:
        for number, tokens in documented_command_lines(read(rel)):
            yield rel, number, tokens


def test_the_command_checker_finds_mistakes() -> None:
    """The checks below can fail: misspelt commands and options are caught."""
    parser = build_parser()
    bad = [
        "db upgrad",
        "gc --older 30d",
        "hub check¦rendr teams.yaml",
        "pipeline run F --targets x",
    ]
    good = [
        "db upgrade --artifact-root s3://b",
        "--traceback gc --dry-run",
        "hub check¦render",
        "pipeline run F -p C=1 --target cluster",
        "serve models:/m@a --port 5001",
    ]
    for line in bad:
        assert check_command(parser, line.split()) is not None, line
    for line in good:
        assert check_command(parser, line.split()) is None, line
    assert next(documented_command_lines("x `jupyter mlops gc --dry-run` y | z"))[1] == [
        "gc",
        "--dry-run",
    ]


def test_every_documented_command_and_option_exists() -> None:
    parser = build_parser()
    mentions = list(all_mentions())
    assert len(mentions) > 30  # the parsing found the docs' commands
    mentions += [
        ("jupyter mlops --help", n, toks)  # its examples too
        for n, toks in documented_command_lines(parser.epilog or "")
    ]
    wrong = [
        f"{rel}:{number}: jupyter mlops {' '.join(tokens)}: {problem}"
        for rel, number, tokens in mentions
        if (problem := check_command(parser, tokens))
    ]
    assert not wrong, "\n".join(wrong)


def _usage_lines(text: str) -> list[str]:
    """The lines of docs/cli.md's code blocks that are usage lines (they have ``[``)."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("jupyter mlops ") and "[" in line
    ]


def test_cli_page_has_a_usage_line_per_command_listing_its_options() -> None:
    """Each command of the parser has a usage line in docs/cli.md naming exactly the
    options ``jupyter mlops <command> --help`` lists (positional-only commands: its name)."""
    text = read("docs/cli.md")
    usage = _usage_lines(text)
    problems = []
    for path, leaf in leaf_commands(build_parser()):
        prefix = "jupyter mlops " + " ".join(path)
        mine = [ln for ln in usage if re.match(re.escape(prefix) + r"(\s|$)", ln)]
        options = option_names(leaf)
        if not mine:
            if options or (f"`{prefix}" not in text and f"{prefix} " not in text):
                problems.append(f"{prefix}: no usage line in docs/cli.md")
            continue
        documented = documented_options(leaf, [ln[len(prefix) :] for ln in mine])
        if documented != options:
            problems.append(
                f"{prefix}: docs/cli.md lists {sorted(documented)}, --help has {sorted(options)}"
            )
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------- settings

_TRAIT = re.compile(r"(?:\bc\.|--)([A-Z][A-Za-z]+)\.([a-z_][a-z0-9_]*)")


def config_class(name: str) -> type:
    module, _ours = CONFIG_CLASSES[name]
    return getattr(importlib.import_module(module), name)


def trait_default(cls: type, name: str) -> object:
    """A trait's default as an instance gets it (``@default`` methods included), without
    running the class's ``__init__``."""
    obj = cls.__new__(cls)
    value = obj._get_trait_default_generator(name)(obj)
    if isinstance(value, type):  # a Type trait: the docs give the class's dotted name
        return f"{value.__module__}.{value.__qualname__}"
    return value


def test_every_documented_setting_is_a_configurable_trait() -> None:
    pytest.importorskip("kubespawner")
    pytest.importorskip("jupyterhub")
    wrong, seen = [], 0
    for rel in DOCS + CONFIG_FILES:
        for number, line in enumerate(read(rel).splitlines(), 1):
            for cls_name, trait in _TRAIT.findall(line):
                seen += 1
                if cls_name not in CONFIG_CLASSES:
                    wrong.append(f"{rel}:{number}: unknown configurable class {cls_name}")
                    continue
                if trait not in config_class(cls_name).class_traits(config=True):
                    wrong.append(f"{rel}:{number}: {cls_name} has no setting {trait!r}")
    assert seen > 20
    assert not wrong, "\n".join(wrong)


def settings_table(rel: str, cls_name: str) -> dict[str, str]:
    """``{trait: default cell}`` of the table under the heading naming ``c.<cls>.*``;
    a row naming several traits (``uid``, ``gid``) with as many defaults splits."""
    text = read(rel)
    heading = re.search(rf"^#+ .*`c\.{cls_name}\.\*`.*$", text, re.M)
    assert heading, f"{rel}: no settings heading naming `c.{cls_name}.*`"
    rows: dict[str, str] = {}
    for line in text[heading.end() :].lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`([a-z_][a-z0-9_]*)`", cells[0])
        if not names:
            continue  # the header and its rule
        defaults = [d.strip() for d in cells[1].split(",")]
        if len(names) > 1 and len(defaults) != len(names):
            defaults = [cells[1]] * len(names)
        rows.update(zip(names, defaults if len(names) > 1 else [cells[1]]))
    return rows


def _plain_literal(cell: str) -> object | None:
    """The value a settings-table cell states, when it is a plain literal (``True``,
    ``600 s``, ``"python3"``, ``/home/jovyan``); None for prose and placeholders."""
    cell = re.sub(r"\s+s$", "", cell.strip())  # seconds
    m = re.fullmatch(r"`?([^`]*)`?", cell)
    if not m or re.search(r"[$<>(= ]", m.group(1)):
        return None
    raw = m.group(1)
    if raw in ("True", "False"):
        return raw == "True"
    if raw in ('""', "''"):
        return ""
    if raw == "{}":
        return {}
    try:
        return float(raw)
    except ValueError:
        return raw


def test_settings_tables_list_every_trait_with_its_default() -> None:
    pytest.importorskip("kubespawner")
    problems = []
    for cls_name, rel in SETTINGS_TABLES.items():
        cls = config_class(cls_name)
        rows = settings_table(rel, cls_name)
        traits = cls.class_traits(config=True)
        own = set(traits) - {
            n
            for base in cls.__mro__[1:]
            if hasattr(base, "class_traits")
            for n in base.class_traits(config=True)
        }
        for name in sorted(own - set(rows)):
            problems.append(f"{rel}: the c.{cls_name}.* table lacks {name!r}")
        for name, cell in rows.items():
            if name not in traits:
                problems.append(f"{rel}: c.{cls_name}.{name} is not a setting")
                continue
            stated = _plain_literal(cell)
            if stated is None:
                continue
            actual = trait_default(cls, name)
            if (
                isinstance(stated, float)
                and isinstance(actual, (int, float))
                and not isinstance(actual, bool)
            ):
                actual = float(actual)
            if stated != actual:
                problems.append(
                    f"{rel}: c.{cls_name}.{name}: the table says {cell}, the default is {actual!r}"
                )
    assert not problems, "\n".join(problems)


def test_readme_documents_every_server_setting_with_its_default() -> None:
    from jupyter_server.extension.application import ExtensionApp

    from jupyter_mlops.server.app import MLOpsApp

    readme = read("README.md")
    inherited = set(ExtensionApp.class_traits(config=True))
    own = {n: t for n, t in MLOpsApp.class_traits(config=True).items() if n not in inherited}
    problems = []
    for name in sorted(own):
        rows = [ln for ln in readme.splitlines() if f"`c.MLOpsApp.{name}`" in ln]
        if not rows:
            problems.append(f"README.md does not document c.MLOpsApp.{name}")
            continue
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        stated = _plain_literal(cells[1].split(" (")[0]) if len(cells) > 2 else None
        default = trait_default(MLOpsApp, name)
        if isinstance(stated, float) and not isinstance(default, bool):
            default = float(default)
        if stated is not None and stated != default:
            problems.append(f"README.md: c.MLOpsApp.{name} default {cells[1]}, code {default!r}")
    assert not problems, "\n".join(problems)


def test_server_and_client_reap_silent_runs_after_the_same_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CONTRIBUTING documents one heartbeat timeout: the client's sweep and the server's
    reaper must agree on it (a shorter server one kills runs of GIL-bound kernels)."""
    from jupyter_mlops.client.writer import heartbeat_timeout_ms
    from jupyter_mlops.server.app import MLOpsApp

    monkeypatch.delenv("JUPYTER_MLOPS_HEARTBEAT_TIMEOUT", raising=False)
    monkeypatch.delenv("JUPYTER_MLOPS_HEARTBEAT_INTERVAL", raising=False)
    server_s = MLOpsApp.class_traits()["heartbeat_timeout"].default()
    assert server_s * 1000 == heartbeat_timeout_ms()
    assert f"({int(server_s)} s" in read("CONTRIBUTING.md")


# ---------------------------------------------------------------------------- env vars

_ENV = re.compile(r"\bJUPYTER_MLOPS_[A-Z][A-Z_]*[A-Z]\b")


def test_environment_variables_match_the_code() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "jupyter_mlops").rglob("*.py"))
    code += read("spawner/jupyterhub_config.py")
    used = set(_ENV.findall(code))
    docs = "\n".join(read(rel) for rel in DOCS)
    documented = set(_ENV.findall(docs)) - {"JUPYTER_MLOPS_TEST_POSTGRES_URL"}  # tests' own
    assert used, "found no variables in the package"
    undocumented = sorted(used - documented)
    assert not undocumented, f"read by the code, documented nowhere: {undocumented}"
    assert not documented - used, f"documented, read nowhere: {sorted(documented - used)}"


# ---------------------------------------------------------------------------- files and links

_REPO_PATH = re.compile(
    r"`((?:jupyter_mlops|labextension|tests|spawner|binder|bench|docs|scripts)/[^`<>*\s]*)`"
)


def test_paths_named_in_the_docs_exist() -> None:
    missing, seen = [], 0
    for rel in DOCS:
        for number, line in enumerate(read(rel).splitlines(), 1):
            for path in _REPO_PATH.findall(line):
                seen += 1
                if not (REPO / path.split("[")[0]).exists():
                    missing.append(f"{rel}:{number}: {path}")
    assert seen > 20
    assert not missing, "\n".join(missing)


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_docs_resolve() -> None:
    assert github_anchor("## 5. Check, preview, deploy".lstrip("# ")) == "5-check-preview-deploy"
    broken, seen = [], 0
    for rel in DOCS:
        for number, line in enumerate(read(rel).splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s):, mailto:
                seen += 1
                path, _, anchor = target.partition("#")
                file = (REPO / rel).parent / path if path else REPO / rel
                if not file.exists():
                    broken.append(f"{rel}:{number}: {target}: no such file")
                    continue
                if anchor and file.suffix == ".md":
                    headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), re.M)
                    if anchor not in {github_anchor(h) for h in headings}:
                        broken.append(f"{rel}:{number}: {target}: no such heading")
    assert seen > 10
    assert not broken, "\n".join(broken)
