"""Reading a Kubernetes target's cluster settings: in-cluster defaults, errors naming the field."""

from __future__ import annotations

import pytest

from jupyter_mlops.kube import KubeConfig, read_kube_config
from jupyter_mlops.targets import ConfigReader, TargetConfigError

WHERE = "targets['gpu']"


def read(raw: dict, env: dict | None = None, sa: str = "/nonexistent") -> KubeConfig:
    return read_kube_config(
        "gpu", ConfigReader(WHERE, raw), environ=env or {}, service_account_dir=sa
    )


def test_in_cluster_defaults_come_from_the_service_account(tmp_path):
    (tmp_path / "namespace").write_text("team-a\n")
    (tmp_path / "token").write_text("tok")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = read(
        {}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, str(tmp_path)
    )
    assert cfg == KubeConfig(
        target="gpu",
        api_url="https://10.0.0.1:443",
        namespace="team-a",
        token_path=str(tmp_path / "token"),
        ca_cert=str(tmp_path / "ca.crt"),
    )
    assert cfg.read_token() == "tok"
    (tmp_path / "token").write_text("rotated\n")
    assert cfg.read_token() == "rotated"
    v6 = read(
        {}, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, str(tmp_path)
    )
    assert v6.api_url == "https://[fd00::1]:6443"
    # an explicit API server is not verified with the cluster's own CA
    out = read({"api_url": "https://k8s.example:6443/", "namespace": "ml"}, {}, str(tmp_path))
    assert (out.api_url, out.namespace, out.ca_cert) == ("https://k8s.example:6443", "ml", None)


def test_explicit_settings():
    cfg = read(
        {
            "api_url": "http://127.0.0.1:8001",
            "token": "t",
            "verify_tls": False,
            "request_timeout": 5,
        }
    )
    assert (cfg.namespace, cfg.read_token(), cfg.verify_tls, cfg.request_timeout) == (
        "default",
        "t",
        False,
        5.0,
    )


@pytest.mark.parametrize(
    "raw, message",
    [
        ({}, f"{WHERE}.api_url: required (this server does not run in a Kubernetes pod"),
        ({"api_url": "k8s:6443"}, f"{WHERE}.api_url: must be an http(s) URL, not 'k8s:6443'"),
        (
            {"api_url": "https://k", "token": "a", "token_path": "/b"},
            f"{WHERE}: give token or token_path, not both",
        ),
        (
            {"api_url": "https://k", "token_path": "/no/such/token"},
            f"{WHERE}.token_path: no such file: '/no/such/token'",
        ),
        ({"api_url": "https://k", "ca_cert": "/no/ca.crt"}, f"{WHERE}.ca_cert: no such file"),
        (
            {"api_url": "https://k", "verify_tls": "no"},
            f"{WHERE}.verify_tls: must be true or false",
        ),
        ({"api_url": "https://k", "namespace": 3}, f"{WHERE}.namespace: must be a string"),
        (
            {"api_url": "https://k", "request_timeout": 0},
            f"{WHERE}.request_timeout: must be seconds between 0 and 600",
        ),
    ],
)
def test_mistakes_name_the_target_and_the_field(raw, message):
    with pytest.raises(TargetConfigError) as e:
        read(raw)
    assert str(e.value).startswith(message), str(e.value)
