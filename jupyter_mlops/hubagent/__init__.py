"""The single-user server's side of the hub's team operations.

When the server runs under JupyterHub as a team server (``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN`` and
``JUPYTER_MLOPS_TEAM`` set by ``TeamSpawner``), :class:`~.service.HubAgentService` reports activity and GPU
utilization to the hub, turns the hub's culling warnings into JupyterLab notifications, relays *Keep running*,
reserves training jobs' GPUs in the team quota, and serves the team's quota to the status bar.
"""
