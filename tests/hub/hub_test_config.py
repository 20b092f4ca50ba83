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

# KubeSpawner waits for its pod to run (and retries its API calls), and JupyterHub for a
# local spawner's server to answer and, stopped, to exit, with exponential_backoff at its
# defaults: waits of random length up to 0.2, 0.4, ... 5 s. A cluster's pod takes tens of
# seconds to pull and start; the fake kubelet's server is up in 2-8 s, when those waits
# have grown to 1.6-5 s, so the hub saw a running pod 2-3 s late on average (up to 5 s) on
# every spawn. Here they wait 0.5 s at most: the pod wait reads the pod reflector's dict,
# the others ask the fake API, the local server or the process again (cheap).
import functools  # noqa: E402

import jupyterhub.proxy  # noqa: E402
import jupyterhub.spawner  # noqa: E402
import jupyterhub.utils  # noqa: E402
import kubespawner.spawner  # noqa: E402

_backoff = functools.partial(jupyterhub.utils.exponential_backoff, max_wait=0.5)
# each module's own name: wait_for_http_server's, Spawner.wait_for_death's, the proxy
# API's retries, KubeSpawner's
for _module in (jupyterhub.utils, jupyterhub.spawner, jupyterhub.proxy, kubespawner.spawner):
    _module.exponential_backoff = _backoff
