"""``TeamSpawner``: KubeSpawner with per-team images, GPU counts and atomic team GPU quotas.

How it differs from a plain KubeSpawner with a ``profile_list``:

- the profile list is computed per user from ``teams.yaml`` (only their teams' images, GPU counts up to their
  maximum), and every spawn is re-validated here, whatever the form or the REST body said (unknown keys refused);
- the chosen profile is applied by *assigning* every trait it owns (image, resources, GPU limit, node selector,
  tolerations, annotations) from a snapshot of the admin's configuration, never by merging into the previous
  spawn's values, so a CPU server started after a GPU one carries no GPU limit, selector or toleration;
- the team's GPU quota is reserved in one synchronous step of the hub's event loop (see ``GpuLedger``) and freed
  when the server stops or fails, so concurrent spawns never over-allocate.
"""

from __future__ import annotations

import asyncio
import copy
import html
import json
import os
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, Unicode, default

from . import state
from .policy import (
    ANNOTATION_GPUS,
    ANNOTATION_PROFILE,
    ANNOTATION_TEAM,
    ANNOTATION_USER,
    CUSTOM_PROFILE,
    GpuLedger,
    SpawnPlan,
    SpawnRefused,
    TeamUsage,
    plan_spawn,
)
from .teams import TeamsConfig

try:  # JupyterHub >= 6: a policy refusal, shown to the user and not counted as a hub failure
    from jupyterhub.spawner import SpawnException

    class _SpawnException(SpawnException):
        def __str__(self) -> str:
            # the spawn page shows str(error): the message alone, not "403 SpawnException(...): ..."
            return self.message

except ImportError:  # pragma: no cover - JupyterHub 5
    _SpawnException = None  # type: ignore[assignment,misc]

#: traits the spawn plan owns; snapshotted from the admin's configuration and re-assigned on every spawn
PLAN_TRAITS = (
    "image",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "extra_resource_limits",
    "extra_resource_guarantees",
    "node_selector",
    "tolerations",
    "extra_annotations",
    "environment",
)
#: environment variables (CONTRIBUTING.md) that point kernels at the hub-wide tracking service
TRACKING_ENV = (
    "JUPYTER_MLOPS_TRACKING_URI",
    "JUPYTER_MLOPS_TRACKING_TOKEN",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
)


def refusal(error: SpawnRefused) -> web.HTTPError:
    """The HTTP error JupyterHub relays to the spawn page or the REST client: 403 for quotas, 400 otherwise."""
    status = 403 if error.reason == "quota" else 400
    if _SpawnException is not None:
        return _SpawnException(error.message, reason=f"mlops-{error.reason}", status_code=status)
    # JupyterHub 5: a 4xx HTTPError is relayed with its message and not counted as a hub failure
    return web.HTTPError(status, "%s", error.message)  # pragma: no cover


class TeamSpawner(KubeSpawner):
    """KubeSpawner for team notebook servers: admin images, per-user GPU counts, team GPU quotas."""

    #: one ledger per hub process, shared by every spawner (the hub runs one event loop) and the hub's API
    ledger: GpuLedger = state.LEDGER
    _teams_cache = state.TEAMS

    teams_file = Unicode(
        os.environ.get("JUPYTER_MLOPS_TEAMS", "/etc/jupyterhub/teams.yaml"),
        config=True,
        help="""Path to teams.yaml: images, size presets, teams (groups, images, GPU limits and quotas), GPU node
        selector and tolerations. Re-read when the file changes; a broken edit keeps the last good version.
        Defaults to $JUPYTER_MLOPS_TEAMS.""",
    )
    tracking_url = Unicode(
        os.environ.get("JUPYTER_MLOPS_HUB_TRACKING_URL", ""),
        config=True,
        help="""URL of the hub-wide tracking service as pods reach it, e.g.
        http://proxy-public/services/mlops-tracking/mlops. When set, pods get JUPYTER_MLOPS_TRACKING_URI (and
        MLFLOW_TRACKING_URI) pointing there, with the user's hub API token as JUPYTER_MLOPS_TRACKING_TOKEN.""",
    )
    tracking_service = Unicode(
        "",
        config=True,
        help="""Name of the hub-managed tracking service. When set, the server's API token may access it
        (adds access:services!service=<name> to server_token_scopes; users also need that scope, see the guide).""",
    )
    home_mount_path = Unicode(
        "/home/jovyan",
        config=True,
        help="Where the user's home volume (one PersistentVolumeClaim per user) is mounted in the pod.",
    )
    hide_gpus_from_cpu_pods = Bool(
        True,
        config=True,
        help="""Set NVIDIA_VISIBLE_DEVICES=void in pods without GPUs: CUDA images set it to 'all', and on a node
        whose default runtime is NVIDIA's a pod without a GPU limit would otherwise see every GPU.""",
    )

    # ---- secure, persistent defaults (admins can still override them in jupyterhub_config.py) -------------
    @default("uid")
    def _uid_default(self) -> int:
        return 1000

    @default("gid")
    def _gid_default(self) -> int:
        return 100

    @default("fs_gid")
    def _fs_gid_default(self) -> int:
        return 100

    @default("allow_privilege_escalation")
    def _ape_default(self) -> bool:
        return False

    @default("container_security_context")
    def _csc_default(self) -> dict:
        return {
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    @default("pod_security_context")
    def _psc_default(self) -> dict:
        return {"runAsNonRoot": True}

    @default("storage_pvc_ensure")
    def _pvc_ensure_default(self) -> bool:
        return True

    @default("storage_capacity")
    def _storage_capacity_default(self) -> str:
        return "10Gi"

    @default("pvc_name_template")
    def _pvc_name_default(self) -> str:
        return "claim-{username}"  # one home per user, shared by their named servers

    @default("volumes")
    def _volumes_default(self) -> list:
        return [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]

    @default("volume_mounts")
    def _volume_mounts_default(self) -> list:
        return [{"name": "home", "mountPath": self.home_mount_path}]

    @default("profile_list")
    def _profile_list_default(self) -> Any:
        return lambda spawner: spawner.team_profile_list()

    @default("options_form")
    def _options_form_default(self) -> Any:
        return lambda spawner: spawner.render_team_form()

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        # user_options are validated and applied in load_user_options, with the quota reservation
        return lambda spawner, user_options: None

    @default("server_token_scopes")
    def _server_token_scopes_default(self) -> list:
        scopes = ["users:activity!user", "access:servers!server"]
        if self.tracking_service:
            scopes.append(f"access:services!service={self.tracking_service}")
        return scopes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the admin's values of the traits a plan owns, before any spawn touched them (sticky-override guard)
        self._base_traits = {name: copy.deepcopy(getattr(self, name)) for name in PLAN_TRAITS}
        self._mlops_key: str | None = None
        self._mlops_plan: SpawnPlan | None = None
        self._mlops_messages: list[str] = []
        # set once load_user_options has planned: progress() waits for it before Kubernetes events
        self._mlops_planned = asyncio.Event()
        self._mlops_starting = False
        if self.profile_list and not callable(self.profile_list):
            self.log.warning(
                "KubeSpawner.profile_list is configured but ignored: TeamSpawner builds each user's "
                "profiles from %s (leave singleuser.profileList empty in z2jh)",
                self.teams_file,
            )

    # ---- policy --------------------------------------------------------------------------------------------
    @property
    def teams_config(self) -> TeamsConfig:
        return self._teams_cache.get(self.teams_file, self.log)

    def user_groups(self) -> list[str]:
        return sorted(g.name for g in getattr(self.user, "groups", []) or [])

    def team_profile_list(self) -> list[dict[str, Any]]:
        """KubeSpawner profiles for this user: one per image of their teams, GPU choices up to their maximum."""
        return build_profile_list(self.teams_config, self.user_groups())

    def plan(self) -> SpawnPlan:
        """Validate ``user_options`` for this user; raises :class:`SpawnRefused`."""
        return plan_spawn(
            self.teams_config, self.user.name, self.user_groups(), self.user_options or {}
        )

    def apply_plan(self, plan: SpawnPlan) -> None:
        """Assign every trait the plan owns from the admin's snapshot: nothing from an earlier spawn survives."""
        base = copy.deepcopy(self._base_traits)
        gpu = self.teams_config.gpu
        self.image = plan.image
        self.cpu_limit = self.cpu_guarantee = plan.size.cpu
        self.mem_limit = self.mem_guarantee = plan.size.memory_bytes_spec
        limits = {k: v for k, v in base["extra_resource_limits"].items() if k != gpu.resource}
        guarantees = {
            k: v for k, v in base["extra_resource_guarantees"].items() if k != gpu.resource
        }
        node_selector = dict(base["node_selector"])
        tolerations = list(self._sorted_dict_values(base["tolerations"]))
        environment = dict(base["environment"])
        if plan.gpus:
            limits[gpu.resource] = str(plan.gpus)
            guarantees[gpu.resource] = str(plan.gpus)
            node_selector.update(gpu.node_selector)
            tolerations.extend(copy.deepcopy(list(gpu.tolerations)))
        elif self.hide_gpus_from_cpu_pods:
            environment["NVIDIA_VISIBLE_DEVICES"] = "void"
        self.extra_resource_limits = limits
        self.extra_resource_guarantees = guarantees
        self.node_selector = node_selector
        self.tolerations = tolerations
        self.environment = environment
        self.extra_annotations = {
            **base["extra_annotations"],
            ANNOTATION_TEAM: plan.team.name,
            ANNOTATION_GPUS: str(plan.gpus),
            ANNOTATION_USER: plan.user,
            ANNOTATION_PROFILE: plan.profile,
        }

    def _say(self, message: str) -> None:
        self._mlops_messages.append(message)
        self.log.info("%s: %s", self._log_name, message)

    async def load_user_options(self) -> None:
        """Replace KubeSpawner's profile loading: validate, reserve the team's GPUs, then apply the plan."""
        self._mlops_messages = []
        try:
            try:
                plan = self.plan()
            except SpawnRefused as e:
                self._say(f"Refused: {e.message}")
                raise refusal(e) from None
            self._say(f"Requested {plan.summary()}")
            # the shared pod reflector is the ground truth for pods this process did not start (hub restarts)
            await self._start_watching_pods()
            key = f"{self.namespace}/{self.pod_name}"
            self.team_ops()  # the ledger's history is attached before the first change
            # --- no await from here to the reservation: this is the atomic section ---
            self.ledger.adopt_pods(self.pod_reflector.pods)
            try:
                usage = self.ledger.reserve(plan, key, name=self.name or "")
            except SpawnRefused as e:
                self._say(f"Refused: {e.message}")
                raise refusal(e) from None
            self._mlops_key, self._mlops_plan = key, plan
            if plan.gpus:
                self._say(
                    f"Reserved {plan.gpus} GPU{'s' if plan.gpus != 1 else ''} of team {plan.team.name}: "
                    f"{usage.gpus} of {plan.team.gpu_quota} now in use"
                )
            self.apply_plan(plan)
            self._say(f"Creating pod {self.pod_name} with image {plan.image}")
        finally:
            self._mlops_planned.set()

    def team_ops(self) -> Any:
        """The hub's team operations (usage history, culling, job leases): :func:`.api.shared_ops`."""
        from .api import shared_ops

        return shared_ops(self.config, self.log)

    def release_gpus(self, event: str = "stop") -> None:
        """Give the team's GPUs back (idempotent): on stop, on a failed start, when the pod is found gone."""
        if self._mlops_key is not None:
            alloc = self.ledger.release(self._mlops_key, event)
            if alloc is not None and alloc.gpus:
                self.log.info(
                    "Released %s GPU(s) of team %s held by %s", alloc.gpus, alloc.team, alloc.user
                )
            self._mlops_key = None
        else:
            self.ledger.release(f"{self.namespace}/{self.pod_name}", event)

    async def _start(self) -> str:
        self._mlops_planned.clear()
        self._mlops_starting = True
        try:
            return await super()._start()
        except ApiException as e:
            self.release_gpus("failed")
            if e.status == 403:
                # e.g. a namespace ResourceQuota (the safety net under the team quota): say so, not "500"
                raise refusal(
                    SpawnRefused(f"Kubernetes refused the pod: {_api_message(e)}", "quota")
                ) from None
            raise
        except BaseException:
            self.release_gpus("failed")
            raise
        finally:
            self._mlops_starting = False

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            # KubeSpawner also calls stop() inside a start, to replace a stale pod of the same name (409):
            # the reservation then belongs to the start in progress, which releases it if it fails
            if not self._mlops_starting:
                self.release_gpus()

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None and not self._start_pending:
            self.release_gpus()
        return status

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.tracking_url:
            env["JUPYTER_MLOPS_TRACKING_URI"] = self.tracking_url
            env["MLFLOW_TRACKING_URI"] = self.tracking_url
            if self.api_token:
                env["JUPYTER_MLOPS_TRACKING_TOKEN"] = self.api_token
                env["MLFLOW_TRACKING_TOKEN"] = self.api_token
        if self._mlops_plan is not None:
            env["JUPYTER_MLOPS_TEAM"] = self._mlops_plan.team.name
        return env

    async def get_pod_manifest(self) -> Any:
        pod = await super().get_pod_manifest()
        # whatever the configuration (uid, a callable, container_security_context), never a root notebook
        for c in pod.spec.containers:
            if (c.security_context or {}).get("runAsUser") == 0:
                raise refusal(
                    SpawnRefused(
                        "refusing to run notebook pods as root (runAsUser=0); set "
                        "c.TeamSpawner.uid to a non-zero user id",
                        "options",
                    )
                )
        return pod

    # ---- spawn page and progress ---------------------------------------------------------------------------
    def team_usage(self) -> list[tuple[Any, TeamUsage]]:
        config = self.teams_config
        self.team_ops()
        if self.pod_reflector is not None:
            self.ledger.adopt_pods(self.pod_reflector.pods)
        return [(t, self.ledger.usage(t.name)) for t in config.teams_for_groups(self.user_groups())]

    async def render_team_form(self) -> str:
        """The spawn form: the team's GPU use above KubeSpawner's profile picker."""
        try:
            await self._start_watching_pods()
        except (
            Exception
        ):  # the form must render even when the API is unreachable; the spawn will report it
            self.log.exception("Pod reflector not available for the spawn form")
        teams = self.team_usage()
        if not teams:
            return (
                '<div class="alert alert-warning" id="mlops-no-team">You are in no team, so there is nothing '
                "to start. Ask an administrator to add one of your groups to teams.yaml.</div>"
            )
        rows = "".join(
            f'<tr data-team="{_text(t.name)}"><td>{_text(t.name)}</td>'
            f'<td class="mlops-gpus">{u.gpus} of {t.gpu_quota}</td>'
            f"<td>{_text(u.holders_text())}</td>"
            f"<td>{t.max_gpus_per_user}</td>"
            f"<td>{u.servers}{' of ' + str(t.max_servers) if t.max_servers else ''}</td></tr>"
            for t, u in teams
        )
        summary = (
            '<div id="mlops-team-usage"><h4>Team GPUs</h4><table class="table table-condensed">'
            "<thead><tr><th>team</th><th>GPUs in use</th><th>held by</th><th>your maximum</th>"
            f"<th>servers</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
        picker = self._render_options_form(self.team_profile_list())
        return summary + picker

    async def progress(self) -> Any:
        """Our policy messages first (validation, GPU reservation), then KubeSpawner's Kubernetes events."""
        sent = 0
        waited = 0.0
        while True:
            while sent < len(self._mlops_messages):
                yield {"progress": 5 + 5 * sent, "message": self._mlops_messages[sent]}
                sent += 1
            planned = self._mlops_planned.is_set()
            if (
                planned
                or (self._start_future is not None and self._start_future.done())
                or waited > 30
            ):
                break
            await asyncio.sleep(0.1)
            waited += 0.1
        while sent < len(self._mlops_messages):
            yield {"progress": 5 + 5 * sent, "message": self._mlops_messages[sent]}
            sent += 1
        async for event in super().progress():
            yield event


def _text(value: str) -> str:
    """HTML-escaped, with braces as entities too: JupyterHub may render the form as a template."""
    return html.escape(value).replace("{", "&#123;").replace("}", "&#125;")


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or b"").get("message") or error.reason)
    except (TypeError, ValueError, AttributeError):
        return str(error.reason)


def build_profile_list(config: TeamsConfig, groups: list[str]) -> list[dict[str, Any]]:
    """KubeSpawner ``profile_list`` entries for a user in ``groups`` (used for the form only: no overrides,
    the spawner applies the validated plan itself)."""
    teams = config.teams_for_groups(groups)
    profiles: list[dict[str, Any]] = []
    seen: list[str] = []
    for team in teams:
        for iid in team.images:
            if iid not in seen:
                seen.append(iid)
    for iid in seen:
        image = config.images[iid]
        candidates = [t for t in teams if iid in t.images]
        options = _profile_options(config, candidates, image.gpu)
        profiles.append(
            {
                "display_name": image.display_name,
                "description": image.description or image.image,
                "slug": iid,
                "default": iid == config.default_image,
                "profile_options": options,
            }
        )
    custom_teams = [t for t in teams if t.custom_images]
    if custom_teams:
        ci = config.custom_images
        options = {
            "image": {
                "display_name": "Image",
                "choices": {},
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image reference",
                    "display_name_in_choices": "Enter an image",
                    "validation_regex": ci.pattern.pattern if ci.pattern else "",
                    "validation_message": "The image must match the pattern your administrator allows",
                },
            }
        }
        options.update(_profile_options(config, custom_teams, ci.gpu))
        profiles.append(
            {
                "display_name": ci.display_name,
                "description": ci.description,
                "slug": CUSTOM_PROFILE,
                "profile_options": options,
            }
        )
    if profiles and not any(p["default"] for p in profiles if "default" in p):
        profiles[0]["default"] = True
    return profiles


def _profile_options(
    config: TeamsConfig, candidates: list[Any], gpu_capable: bool
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if len(candidates) > 1:
        options["team"] = {
            "display_name": "Team (whose quota is used)",
            "choices": {t.name: {"display_name": t.name} for t in candidates},
        }
    max_gpus = max(t.max_gpus_per_user for t in candidates) if gpu_capable else 0
    if max_gpus:
        options["gpus"] = {
            "display_name": "GPUs",
            "choices": {
                str(n): {
                    "display_name": "No GPU" if n == 0 else f"{n} GPU{'s' if n > 1 else ''}",
                    "default": n == 0,
                }
                for n in range(max_gpus + 1)
            },
        }
    sizes = [s for s in config.sizes if any(s in t.sizes for t in candidates)]
    options["size"] = {
        "display_name": "Size",
        "choices": {
            s: {"display_name": config.sizes[s].display_name, "default": s == config.default_size}
            for s in sizes
        },
    }
    if not any(c.get("default") for c in options["size"]["choices"].values()):
        options["size"]["choices"][sizes[0]]["default"] = True
    return options


__all__ = ["TeamSpawner", "build_profile_list", "refusal"]
