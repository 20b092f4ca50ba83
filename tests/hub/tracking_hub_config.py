"""JupyterHub config for tests/hub/test_tracking_service.py: the test hub (hub_test_config.py) with the
hub-wide tracking service it launches itself, two teams and an admin."""

import os
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
# No user servers here: a local spawner (KubeSpawner would need the fake Kubernetes API just to log in).
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
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
        "scopes": ["admin:users", "admin:groups", "read:users", "tokens"],
        "services": ["test-admin"],
    },
    role,
]
