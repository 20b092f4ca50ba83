"""JupyterHub configuration for jupyter-mlops team notebook servers on Kubernetes.

Use it as the hub's config file (``jupyterhub -f jupyterhub_config.py``) or load it from Zero to JupyterHub's
``hub.extraConfig`` (see z2jh-values.yaml). Everything team-specific lives in teams.yaml; this file wires the
spawner, security defaults and the optional hub-wide tracking service.

Environment:
  JUPYTER_MLOPS_TEAMS               path to teams.yaml (default /etc/jupyterhub/teams.yaml)
  JUPYTER_MLOPS_HOME_SIZE           size of each user's home volume (default 10Gi)
  JUPYTER_MLOPS_HUB_TRACKING_URL    tracking service URL as pods reach it,
                                    e.g. http://proxy-public/services/mlops-tracking/mlops
  JUPYTER_MLOPS_HUB_TRACKING_SERVICE  name of that hub service (default mlops-tracking), for token scopes
  JUPYTER_MLOPS_SERVICE_DATABASE_URL  the service's database (postgresql://...): the hub then runs
                                    `jupyter mlops service` as that service (unset: run it yourself)
  JUPYTER_MLOPS_SERVICE_BIND_URL    where the proxy reaches the service (default http://127.0.0.1:8770;
                                    z2jh: http://hub:8770)
  JUPYTER_MLOPS_SERVICE_ARTIFACT_ROOT  the service's artifact root (directory or fsspec URL)
"""

import os

from jupyter_mlops.hub.teams import load_teams

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

teams_file = os.environ.get("JUPYTER_MLOPS_TEAMS", "/etc/jupyterhub/teams.yaml")

# Refuse to start the hub on a broken teams.yaml: every error names the file, the line and the field.
load_teams(teams_file)

c.JupyterHub.spawner_class = "jupyter_mlops.hub.spawner.TeamSpawner"
c.TeamSpawner.teams_file = teams_file

# What runs in the pod: the image's JupyterHub single-user server (JupyterLab + the jupyter-mlops extension).
c.TeamSpawner.cmd = ["jupyterhub-singleuser"]
c.TeamSpawner.default_url = "/lab"
# GPU nodes may need to scale up and pull multi-GB CUDA images.
c.TeamSpawner.start_timeout = 600
c.TeamSpawner.http_timeout = 120

# Security (these are also TeamSpawner's defaults; repeated here so admins see them):
# non-root user, no privilege escalation, all capabilities dropped.
c.TeamSpawner.uid = 1000
c.TeamSpawner.gid = 100
c.TeamSpawner.fs_gid = 100
c.TeamSpawner.allow_privilege_escalation = False

# One home volume per user (claim-<username>), mounted at /home/jovyan.
c.TeamSpawner.storage_pvc_ensure = True
c.TeamSpawner.storage_capacity = os.environ.get("JUPYTER_MLOPS_HOME_SIZE", "10Gi")

# The hub-wide tracking service: kernels log there with the user's own hub token.
tracking_url = os.environ.get("JUPYTER_MLOPS_HUB_TRACKING_URL", "")
if tracking_url:
    service = os.environ.get("JUPYTER_MLOPS_HUB_TRACKING_SERVICE", "mlops-tracking")
    c.TeamSpawner.tracking_url = tracking_url
    c.TeamSpawner.tracking_service = service
    # The server token only gets scopes the user holds: let every user access the service (JupyterHub >= 6).
    c.JupyterHub.extra_user_scopes = {f"access:services!service={service}"}

    # The hub runs the service itself when given its database (PostgreSQL): `jupyter mlops service`,
    # MLflow's tracking API for every user, each request checked against the caller's hub token.
    service_db = os.environ.get("JUPYTER_MLOPS_SERVICE_DATABASE_URL", "")
    if service_db:
        from jupyter_mlops.hub.service import hub_service

        entry, role = hub_service(
            service,
            os.environ.get("JUPYTER_MLOPS_SERVICE_BIND_URL", "http://127.0.0.1:8770"),
            service_db,
            artifact_root=os.environ.get("JUPYTER_MLOPS_SERVICE_ARTIFACT_ROOT") or None,
        )
        c.JupyterHub.services.append(entry)  # a list, or traitlets' lazy one if still unset
        c.JupyterHub.load_roles.append(role)

# Hub-wide limits (the per-team ones are in teams.yaml).
c.JupyterHub.concurrent_spawn_limit = 64
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3

# Team operations (jupyter_mlops.hub.api): GPU usage history and GPU-hours, the quota people see, job GPU
# leases, servers' activity reports, idle culling. Served by the hub itself under /hub/api/mlops/.
from jupyter_mlops.hub.api import handlers as mlops_handlers  # noqa: E402

c.JupyterHub.extra_handlers.extend(mlops_handlers())
c.TeamOps.usage_database_url = os.environ.get(
    "JUPYTER_MLOPS_HUB_USAGE_DB", "sqlite:///jupyterhub-mlops-usage.sqlite"
)
# The idle culler (per-team settings under teams.<name>.culling in teams.yaml): a hub service that asks the
# hub for a cull pass every JUPYTER_MLOPS_CULL_EVERY seconds (0: no culler).
cull_every = float(os.environ.get("JUPYTER_MLOPS_CULL_EVERY", "60"))
if cull_every > 0:
    import sys

    c.JupyterHub.services.append(
        {
            "name": "mlops-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyter_mlops.hub.cli",
                "culler",
                f"--every={cull_every:g}",
            ],
        }
    )
    c.JupyterHub.load_roles.append(
        {"name": "mlops-culler", "scopes": ["admin:servers"], "services": ["mlops-culler"]}
    )
