"""The multi-user mode outside JupyterHub: jupyter_server's token login names no
user (each request is a new anonymous one), so a server configured that way
refuses to start, saying what to configure, instead of serving runs nobody owns."""

from __future__ import annotations

import pytest
from serverproc import JupyterServerProcess, ServerExited

from jupyter_mlops.hub.identity import HubIdentityProvider
from jupyter_mlops.server.access import anonymous_identity_problem

pytestmark = pytest.mark.slow


def test_multi_user_with_token_auth_refuses_to_start(tmp_path):
    server = JupyterServerProcess(root=tmp_path / "srv", extra_args=["--MLOpsApp.multi_user=True"])
    with pytest.raises(ServerExited) as exc:
        server.start()
    message = str(exc.value)
    assert "exited (1)" in message
    assert "MLOpsApp.multi_user=True needs an identity provider that names each user" in message
    assert "ServerApp.identity_provider_class" in message and "jupyter mlops service" in message


def test_identity_providers_that_name_users_are_accepted():
    from jupyter_server.auth.identity import PasswordIdentityProvider

    assert anonymous_identity_problem(HubIdentityProvider()) is None
    assert "PasswordIdentityProvider" in (
        anonymous_identity_problem(PasswordIdentityProvider()) or ""
    )
