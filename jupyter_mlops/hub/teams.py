"""The admin's ``teams.yaml``: images, size presets, teams and GPU placement.

Loaded from YAML *nodes* (not plain data) so that every problem can name the file, the line and the field, the
way an admin fixes it: ``teams.yaml:14: teams.vision.images[2]: unknown image 'torhc' (known: scipy, torch)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: ids of images, sizes and teams are used in form field names and pod annotations
ID_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
#: memory as JupyterHub reads it, binary units ("8G" = "8Gi" = 8 GiB, "512M", "1.5G")
MEMORY_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)?(K|Ki|M|Mi|G|Gi|T|Ti)?$")
TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
TOLERATION_OPERATORS = {"Exists", "Equal"}
TOLERATION_EFFECTS = {"", "NoSchedule", "PreferNoSchedule", "NoExecute"}
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Problem:
    """One finding in teams.yaml; ``severity`` is "error" (refuses to load) or "warning"."""

    file: str
    line: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}: {tag}{self.field}: {self.message}"


class TeamsConfigError(ValueError):
    """teams.yaml has errors; ``problems`` lists each with file, line and field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__("\n".join(str(p) for p in errors))


@dataclass(frozen=True)
class Image:
    id: str
    image: str
    display_name: str
    description: str = ""
    gpu: bool = False


@dataclass(frozen=True)
class Size:
    id: str
    display_name: str
    cpu: float
    memory: str

    @property
    def memory_bytes_spec(self) -> str:
        """The memory in JupyterHub's ByteSpecification form (K/M/G/T are binary there, so "8Gi" -> "8G")."""
        return self.memory.removesuffix("i")


@dataclass(frozen=True)
class Culling:
    """A team's idle culling (``teams.<name>.culling``); times in seconds, 0 = off.

    A server is idle when nothing happened in it (kernels, terminals, HTTP) and, for a GPU server, its GPUs
    stayed under ``gpu_threshold`` percent, for ``cpu_timeout`` (CPU servers) or ``gpu_timeout`` (GPU
    servers); it is warned ``warn_before`` ahead and then stopped. ``max_age`` stops servers older than that
    even when used interactively (never while something the user started is still working).
    """

    cpu_timeout: float = 0.0
    gpu_timeout: float = 0.0
    gpu_threshold: float = 10.0
    max_age: float = 0.0
    warn_before: float = 600.0
    exempt_users: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.cpu_timeout or self.gpu_timeout or self.max_age)


@dataclass(frozen=True)
class Team:
    name: str
    groups: tuple[str, ...]
    images: tuple[str, ...]
    sizes: tuple[str, ...]
    max_gpus_per_user: int = 0
    gpu_quota: int = 0
    max_servers: int | None = None
    custom_images: bool = False
    culling: Culling = field(default_factory=Culling)


@dataclass(frozen=True)
class GpuPlacement:
    """What a GPU pod gets beyond its limit: where it may be scheduled."""

    resource: str = DEFAULT_GPU_RESOURCE
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class CustomImages:
    """Free-text images, off unless an admin enables them with an anchored pattern."""

    enabled: bool = False
    pattern: re.Pattern[str] | None = None
    display_name: str = "Custom image"
    description: str = ""
    gpu: bool = False

    def allows(self, image: str) -> bool:
        return bool(self.enabled and self.pattern is not None and self.pattern.fullmatch(image))


@dataclass(frozen=True)
class TeamsConfig:
    images: Mapping[str, Image]
    sizes: Mapping[str, Size]
    teams: Mapping[str, Team]
    gpu: GpuPlacement
    custom_images: CustomImages
    default_image: str
    default_size: str
    source: str = "<teams>"
    warnings: tuple[Problem, ...] = ()

    def teams_for_groups(self, groups: list[str] | set[str] | tuple[str, ...]) -> list[Team]:
        """The teams a user belongs to through their JupyterHub groups, in file order."""
        wanted = set(groups)
        return [t for t in self.teams.values() if wanted.intersection(t.groups)]


# --------------------------------------------------------------------------------------------------------------
# YAML nodes -> plain values, remembering where each came from


class _Marks:
    """Line numbers of every value, keyed by its dotted field path."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def line(self, path: str) -> int:
        # a missing field has no line of its own: use the closest parent that has one
        while path and path not in self.lines:
            path = path[: path.rfind("[")] if path.endswith("]") else path.rpartition(".")[0]
        return self.lines.get(path, 1)


def _plain(
    node: yaml.Node,
    path: str,
    marks: _Marks,
    problems: list[Problem],
    file: str,
    scalar: Callable[[yaml.Node], Any],
) -> Any:
    marks.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                problems.append(
                    Problem(
                        file,
                        key_node.start_mark.line + 1,
                        path or "<top>",
                        f"keys must be strings, got {key!r}",
                    )
                )
                continue
            child = f"{path}.{key}" if path else key
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1, child, "duplicate key"))
                continue
            out[key] = _plain(value_node, child, marks, problems, file, scalar)
            marks.lines[child] = (
                key_node.start_mark.line + 1
            )  # errors about a field point at its key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _plain(item, f"{path}[{i}]", marks, problems, file, scalar)
            for i, item in enumerate(node.value)
        ]
    return scalar(node)


# --------------------------------------------------------------------------------------------------------------
# validation


class _Checker:
    def __init__(self, file: str, marks: _Marks):
        self.file = file
        self.marks = marks
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.marks.line(path), path, message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.marks.line(path), path, message, "warning"))

    def mapping(
        self, value: Any, path: str, allowed: set[str] | None = None, required: bool = False
    ) -> dict:
        if value is None:
            if required:
                self.error(path, "is required")
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {_kind(value)}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.error(
                        f"{path}.{key}" if path else key,
                        f"unknown field (allowed: {', '.join(sorted(allowed))})",
                    )
        return value

    def string(
        self, value: Any, path: str, default: str | None = None, required: bool = False
    ) -> str | None:
        if value is None:
            if required:
                self.error(path, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"must be a non-empty string, got {_kind(value)}")
            return default
        return value

    def boolean(self, value: Any, path: str, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, got {_kind(value)}")
            return default
        return value

    def count(self, value: Any, path: str, default: int | None = 0, minimum: int = 0) -> int | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be a whole number, got {_kind(value)}")
            return None  # reported; later checks that compare it are skipped
        if value < minimum:
            self.error(path, f"must be at least {minimum}, got {value}")
            return None
        return value

    def ident(self, value: str, path: str, what: str) -> bool:
        if not ID_PATTERN.match(value):
            self.error(
                path,
                f"{what} id {value!r} must be lowercase letters, digits, '-' or '_' (at most 63)",
            )
            return False
        return True

    def id_list(
        self, value: Any, path: str, known: Mapping[str, Any], what: str, required: bool
    ) -> list[str]:
        if value is None:
            if required:
                self.error(path, "is required")
            return []
        if not isinstance(value, list):
            self.error(path, f"must be a list of {what} ids, got {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(item, str):
                self.error(p, f"must be a {what} id, got {_kind(item)}")
            elif item not in known:
                self.error(p, f"unknown {what} {item!r} (known: {', '.join(known) or 'none'})")
            elif item in out:
                self.error(p, f"{what} {item!r} listed twice")
            else:
                out.append(item)
        if required and not value:
            self.error(path, f"must list at least one {what}")
        return out


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | float | int) -> float:
    """Seconds of "90", "30s", "15m", "2h", "30d", "1w"; ValueError naming the accepted forms."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"a duration must not be negative, got {text}")
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(
            f"{text!r} is not a duration: a number of seconds or one with a unit, e.g. 30s, 15m, 2h, 30d"
        )
    return float(m.group(1)) * _UNIT[m.group(2)]


CULLING_KEYS = {
    "cpu_timeout",
    "gpu_timeout",
    "gpu_threshold",
    "max_age",
    "warn_before",
    "exempt_users",
    "dry_run",
}


def _duration(c: _Checker, value: Any, path: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool):
        c.error(path, f"must be a duration (e.g. 600, 30m, 2h), got {_kind(value)}")
        return default
    try:
        return parse_duration(value)
    except ValueError as e:
        c.error(path, str(e))
        return default


def _culling(c: _Checker, raw: Any, path: str) -> Culling:
    spec = c.mapping(raw, path, CULLING_KEYS)
    if not spec:
        return Culling()
    threshold = spec.get("gpu_threshold")
    if threshold is None:
        threshold = 10.0
    elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        c.error(f"{path}.gpu_threshold", f"must be a percentage, got {_kind(threshold)}")
        threshold = 10.0
    elif not 0 <= threshold <= 100:
        c.error(f"{path}.gpu_threshold", f"must be between 0 and 100, got {threshold}")
    exempt = spec.get("exempt_users") or []
    if not isinstance(exempt, list) or not all(isinstance(u, str) and u for u in exempt):
        c.error(f"{path}.exempt_users", "must be a list of JupyterHub user names")
        exempt = []
    culling = Culling(
        cpu_timeout=_duration(c, spec.get("cpu_timeout"), f"{path}.cpu_timeout", 0.0),
        gpu_timeout=_duration(c, spec.get("gpu_timeout"), f"{path}.gpu_timeout", 0.0),
        gpu_threshold=float(threshold),
        max_age=_duration(c, spec.get("max_age"), f"{path}.max_age", 0.0),
        warn_before=_duration(c, spec.get("warn_before"), f"{path}.warn_before", 600.0),
        exempt_users=tuple(exempt),
        dry_run=c.boolean(spec.get("dry_run"), f"{path}.dry_run"),
    )
    for name in ("cpu_timeout", "gpu_timeout"):
        timeout = getattr(culling, name)
        if timeout and culling.warn_before >= timeout:
            c.error(
                f"{path}.warn_before",
                f"the warning ({culling.warn_before:g} s) must come before the {name} "
                f"({timeout:g} s) ends",
            )
    return culling


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


TOP_KEYS = {"images", "sizes", "teams", "gpu", "custom_images", "defaults"}


def _build(data: Any, c: _Checker) -> TeamsConfig | None:
    top = c.mapping(data, "", TOP_KEYS)

    images: dict[str, Image] = {}
    for iid, raw in c.mapping(top.get("images"), "images", required=True).items():
        p = f"images.{iid}"
        if not c.ident(iid, p, "image"):
            continue
        spec = c.mapping(raw, p, {"image", "display_name", "description", "gpu"}, required=True)
        ref = c.string(spec.get("image"), f"{p}.image", required=True)
        if ref and re.search(r"\s", ref):
            c.error(f"{p}.image", f"image reference {ref!r} contains whitespace")
        images[iid] = Image(
            id=iid,
            image=ref or "",
            display_name=c.string(spec.get("display_name"), f"{p}.display_name", default=iid)
            or iid,
            description=c.string(spec.get("description"), f"{p}.description", default="") or "",
            gpu=c.boolean(spec.get("gpu"), f"{p}.gpu"),
        )
    if isinstance(top.get("images"), dict) and not top["images"]:
        c.error("images", "must define at least one image")

    sizes: dict[str, Size] = {}
    for sid, raw in c.mapping(top.get("sizes"), "sizes", required=True).items():
        p = f"sizes.{sid}"
        if not c.ident(sid, p, "size"):
            continue
        spec = c.mapping(raw, p, {"display_name", "cpu", "memory"}, required=True)
        cpu = spec.get("cpu")
        if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or cpu <= 0:
            c.error(f"{p}.cpu", f"must be a positive number of CPUs, got {_kind(cpu)}")
            cpu = 1
        memory = spec.get("memory")
        if isinstance(memory, int) and not isinstance(memory, bool):
            memory = str(memory)
        if not isinstance(memory, str) or not MEMORY_PATTERN.match(memory):
            c.error(
                f"{p}.memory", f"must be a memory quantity such as 8G or 512Mi, got {_kind(memory)}"
            )
            memory = "1G"
        default_name = f"{sid} ({cpu:g} CPU, {memory})"
        sizes[sid] = Size(
            sid,
            c.string(spec.get("display_name"), f"{p}.display_name", default=default_name)
            or default_name,
            float(cpu),
            memory,
        )
    if isinstance(top.get("sizes"), dict) and not top["sizes"]:
        c.error("sizes", "must define at least one size")

    gpu_raw = c.mapping(top.get("gpu"), "gpu", {"resource", "node_selector", "tolerations"})
    resource = (
        c.string(gpu_raw.get("resource"), "gpu.resource", default=DEFAULT_GPU_RESOURCE)
        or DEFAULT_GPU_RESOURCE
    )
    selector = c.mapping(gpu_raw.get("node_selector"), "gpu.node_selector")
    for k, v in selector.items():
        if not isinstance(v, str):
            c.error(
                f"gpu.node_selector.{k}",
                f"label values must be strings (quote them), got {_kind(v)}",
            )
    tolerations = []
    raw_tol = gpu_raw.get("tolerations")
    if raw_tol is not None and not isinstance(raw_tol, list):
        c.error("gpu.tolerations", f"must be a list, got {_kind(raw_tol)}")
        raw_tol = []
    for i, tol in enumerate(raw_tol or []):
        p = f"gpu.tolerations[{i}]"
        t = c.mapping(tol, p, TOLERATION_KEYS, required=True)
        if t.get("operator", "Equal") not in TOLERATION_OPERATORS:
            c.error(f"{p}.operator", f"must be Exists or Equal, got {_kind(t.get('operator'))}")
        if t.get("effect", "") not in TOLERATION_EFFECTS:
            c.error(f"{p}.effect", "must be NoSchedule, PreferNoSchedule or NoExecute")
        if t.get("operator") == "Exists" and "value" in t:
            c.error(f"{p}.value", "a toleration with operator Exists takes no value")
        tolerations.append(dict(t))
    gpu = GpuPlacement(resource, {str(k): str(v) for k, v in selector.items()}, tuple(tolerations))

    ci_raw = c.mapping(
        top.get("custom_images"),
        "custom_images",
        {"enabled", "pattern", "display_name", "description", "gpu"},
    )
    ci_enabled = c.boolean(ci_raw.get("enabled"), "custom_images.enabled")
    pattern = None
    pattern_src = c.string(ci_raw.get("pattern"), "custom_images.pattern")
    if pattern_src is not None:
        if not (pattern_src.startswith("^") and pattern_src.endswith(("$", r"\Z"))):
            c.error(
                "custom_images.pattern",
                "must be anchored: start with ^ and end with $ so that the whole "
                "image reference is checked, not a prefix",
            )
        try:
            pattern = re.compile(pattern_src)
        except re.error as e:
            c.error("custom_images.pattern", f"is not a valid regular expression: {e}")
    if ci_enabled and pattern_src is None:
        c.error("custom_images.pattern", "is required when custom images are enabled")
    custom = CustomImages(
        enabled=ci_enabled,
        pattern=pattern,
        display_name=c.string(
            ci_raw.get("display_name"), "custom_images.display_name", default="Custom image"
        )
        or "Custom image",
        description=c.string(ci_raw.get("description"), "custom_images.description", default="")
        or "",
        gpu=c.boolean(ci_raw.get("gpu"), "custom_images.gpu"),
    )

    teams: dict[str, Team] = {}
    team_keys = {
        "groups",
        "images",
        "sizes",
        "max_gpus_per_user",
        "gpu_quota",
        "max_servers",
        "custom_images",
        "culling",
    }
    for name, raw in c.mapping(top.get("teams"), "teams", required=True).items():
        p = f"teams.{name}"
        if not c.ident(name, p, "team"):
            continue
        spec = c.mapping(raw, p, team_keys, required=True)
        groups_raw = spec.get("groups")
        groups: list[str] = []
        if not isinstance(groups_raw, list) or not groups_raw:
            c.error(f"{p}.groups", "must list at least one JupyterHub group")
        else:
            for i, g in enumerate(groups_raw):
                if not isinstance(g, str) or not g:
                    c.error(f"{p}.groups[{i}]", f"must be a group name, got {_kind(g)}")
                else:
                    groups.append(g)
        team_images = c.id_list(spec.get("images"), f"{p}.images", images, "image", required=True)
        team_sizes = c.id_list(
            spec.get("sizes"), f"{p}.sizes", sizes, "size", required=False
        ) or list(sizes)
        per_user = c.count(spec.get("max_gpus_per_user"), f"{p}.max_gpus_per_user", default=0)
        quota = c.count(spec.get("gpu_quota"), f"{p}.gpu_quota", default=0)
        max_servers = c.count(spec.get("max_servers"), f"{p}.max_servers", default=None, minimum=1)
        team_custom = c.boolean(spec.get("custom_images"), f"{p}.custom_images")
        if per_user is not None and quota is not None and quota < per_user:
            c.error(
                f"{p}.gpu_quota",
                f"team quota {quota} is below its per-user maximum {per_user} "
                f"(max_gpus_per_user); no user could use their maximum",
            )
        if (
            per_user
            and not any(images[i].gpu for i in team_images if i in images)
            and not (team_custom and custom.gpu)
        ):
            c.warn(
                f"{p}.max_gpus_per_user",
                "the team has no GPU-capable image, so its GPUs cannot be used",
            )
        if team_custom and not ci_enabled:
            c.warn(
                f"{p}.custom_images",
                "custom images are not enabled (custom_images.enabled), ignored",
            )
        teams[name] = Team(
            name,
            tuple(groups),
            tuple(team_images),
            tuple(team_sizes),
            per_user or 0,
            quota or 0,
            max_servers,
            team_custom and ci_enabled,
            _culling(c, spec.get("culling"), f"{p}.culling"),
        )
    if isinstance(top.get("teams"), dict) and not top["teams"]:
        c.error("teams", "must define at least one team")

    defaults = c.mapping(top.get("defaults"), "defaults", {"image", "size"})
    default_image = c.string(defaults.get("image"), "defaults.image")
    if default_image is not None and default_image not in images:
        c.error(
            "defaults.image",
            f"unknown image {default_image!r} (known: {', '.join(images) or 'none'})",
        )
    default_size = c.string(defaults.get("size"), "defaults.size")
    if default_size is not None and default_size not in sizes:
        c.error(
            "defaults.size", f"unknown size {default_size!r} (known: {', '.join(sizes) or 'none'})"
        )

    if any(p.severity == "error" for p in c.problems):
        return None
    return TeamsConfig(
        images=images,
        sizes=sizes,
        teams=teams,
        gpu=gpu,
        custom_images=custom,
        default_image=default_image or next(iter(images)),
        default_size=default_size or next(iter(sizes)),
        source=c.file,
        warnings=tuple(p for p in c.problems if p.severity == "warning"),
    )


def check_text(text: str, file: str = "<teams.yaml>") -> tuple[TeamsConfig | None, list[Problem]]:
    """Parse and validate teams.yaml text; returns the config (None on errors) and every problem found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(file, line, "<yaml>", f"{e.problem or e}")]
    except yaml.YAMLError as e:  # pragma: no cover - composer errors are all marked
        return None, [Problem(file, 1, "<yaml>", str(e))]
    if node is None:
        return None, [Problem(file, 1, "<top>", "the file is empty")]
    marks = _Marks()
    problems: list[Problem] = []
    constructor = yaml.SafeLoader("")

    def scalar(n: yaml.Node) -> Any:
        return constructor.construct_object(n, deep=True)

    data = _plain(node, "", marks, problems, file, scalar)
    checker = _Checker(file, marks)
    checker.problems.extend(problems)
    config = _build(data, checker)
    return config, sorted(checker.problems, key=lambda p: p.line)


def load_teams(path: str | Path) -> TeamsConfig:
    """Load teams.yaml, raising :class:`TeamsConfigError` that lists every error with its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TeamsConfigError(
            [Problem(str(path), 1, "<file>", f"cannot read: {e.strerror or e}")]
        ) from e
    config, problems = check_text(text, str(path))
    if config is None:
        raise TeamsConfigError(problems)
    return config
