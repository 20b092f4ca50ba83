"""JupyterHub config for tests/hub: the shipped spawner/jupyterhub_config.py plus a loopback-only test rig.

Only what a cluster would provide differs: the Kubernetes API (our fake), ports, a dummy authenticator with
groups, and an admin service token for the REST calls of the tests.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821
load_subconfig(str(Path(__file__).resolve().parents[2] / "spawner" / "jupyterhub_config.py"))  # noqa: F821

env = os.environ
work = Path(env["MLOPS_TEST_WORKDIR"])

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["MLOPS_TEST_PROXY_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["MLOPS_TEST_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['MLOPS_TEST_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.pid_file = str(work / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{work / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(work / "cookie_secret")
c.JupyterHub.cleanup_servers = False  # user pods outlive a hub restart (tests stop their own)
c.JupyterHub.allow_named_servers = False

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "pw"
c.Authenticator.allow_all = True
c.JupyterHub.load_groups = {
    "vision": {"users": ["alice", "bob", "carol", "dan", "erin", "frank"]},
    "nlp": {"users": ["nina", "zoe"]},
    "vision-guests": {"users": ["zoe"]},
    "helpdesk": {"users": ["hugo"]},  # on no team: sharing with him is what the admin widened
}
c.TeamOps.share_groups = ["helpdesk"]
c.JupyterHub.services = [{"name": "test-admin", "api_token": env["MLOPS_TEST_ADMIN_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "test-admin",
        "scopes": [
            "admin:users",
            "admin:servers",
            "admin:groups",
            "read:users",
            "access:servers",
            "tokens",
        ],
        "services": ["test-admin"],
    }
]

c.TeamSpawner.k8s_api_host = env["MLOPS_TEST_K8S_URL"]
c.TeamSpawner.namespace = "jhub"
c.TeamSpawner.start_timeout = 240  # several servers start at once on a loaded CI machine
c.TeamSpawner.http_timeout = 120
c.TeamSpawner.k8s_api_request_timeout = 30
c.TeamSpawner.default_url = ""
