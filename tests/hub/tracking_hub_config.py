"""JupyterHub config for tests/hub/test_tracking_service.py: the test hub (hub_test_config.py) with the
hub-wide tracking service it launches itself, two teams and an admin."""

import json
import os
import sys
from pathlib import Path

from jupyter_mlops.hub.service import hub_service

c = get_config()  # noqa: F821
load_subconfig(str(Path(__file__).resolve().parent / "hub_test_config.py"))  # noqa: F821

env = os.environ
c.JupyterHub.load_groups = {
    "vision": {"users": ["alice", "bob", "vic"]},
    "nlp": {"users": ["carol"]},
}
c.Authenticator.admin_users = {"ada"}
# A local spawner (KubeSpawner would need the fake Kubernetes API just to log in), whose servers get what
# TeamSpawner gives a pod when the tracking service is configured: the service URL and a token that may use it.
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
server_config = Path(env["MLOPS_TEST_WORKDIR"]) / "server-config"
server_config.mkdir(exist_ok=True)
(server_config / "jupyter_server_config.json").write_text(
    json.dumps(
        {
            "ServerApp": {
                "allow_root": True,  # the CI container runs as root
                "jpserver_extensions": {
                    "jupyter_mlops": True,
                    "jupyterlab": False,
                    "jupyter_lsp": False,
                },
            }
        }
    )
)
c.SimpleLocalProcessSpawner.home_dir_template = str(
    Path(env["MLOPS_TEST_WORKDIR"]) / "home" / "{username}"
)
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    "PYTHONPATH": env["PYTHONPATH"],
    "JUPYTER_CONFIG_DIR": str(server_config),
    "JUPYTER_MLOPS_TRACKING_URI": env["JUPYTER_MLOPS_HUB_TRACKING_URL"],
    # as TeamSpawner.get_env gives it: the server's own hub token (a callable: per spawn)
    "JUPYTER_MLOPS_TRACKING_TOKEN": lambda spawner: spawner.api_token,
}
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=mlops-tracking",
]
service, role = hub_service(
    "mlops-tracking",
    f"http://127.0.0.1:{env['MLOPS_TEST_SERVICE_PORT']}",
    env["MLOPS_TEST_SERVICE_DB"],
    artifact_root=env["MLOPS_TEST_SERVICE_ARTIFACTS"],
    environment={"PYTHONPATH": env["PYTHONPATH"]},
)
# vic maintains the vision team's models (the service's --config file)
maintainers = Path(env["MLOPS_TEST_WORKDIR"]) / "service_config.py"
maintainers.write_text('c.AccessPolicy.maintainers = {"vision": ["vic"]}\n')
service["command"].append(f"--config={maintainers}")
c.JupyterHub.services = [
    {"name": "test-admin", "api_token": env["MLOPS_TEST_ADMIN_TOKEN"]},
    service,
]
c.JupyterHub.load_roles = [
    {
        "name": "test-admin",
        "scopes": ["admin:users", "admin:servers", "admin:groups", "read:users", "tokens"],
        "services": ["test-admin"],
    },
    role,
]
