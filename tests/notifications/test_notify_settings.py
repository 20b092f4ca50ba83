"""A user's notification settings: checked field by field, filters, the file they live in;
the webhook signature a receiver recomputes."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

import pytest

from jupyter_mlops.events import Event, EventBus
from jupyter_mlops.notifications import settings as user_settings
from jupyter_mlops.notifications.channels import signature
from jupyter_mlops.tracking.errors import TrackingError


def ev(**kw) -> Event:
    base = {"kind": "run", "outcome": "failed", "id": "r1", "name": "owl", "experiment_id": "3"}
    return Event(**{**base, **kw})


@pytest.mark.parametrize(
    "data, field",
    [
        ({"events": ["run", "cron"]}, "events: unknown kind(s) 'cron'"),
        ({"failuresOnly": "yes"}, "failuresOnly must be true or false"),
        ({"minDuration": -1}, "minDuration must be a number of seconds >= 0"),
        ({"email": "not-an-address"}, "email must be one address"),
        ({"webhooks": [{"url": "ftp://x/"}]}, "webhooks[0].url must be an http(s) URL"),
        ({"webhooks": [{"url": "http://x/", "token": 1}]}, "webhooks[0]: unknown field(s) 'token'"),
        ({"colour": "red"}, "Unknown notification setting(s) 'colour'"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_settings_name_the_field(data, field):
    with pytest.raises(TrackingError) as e:
        user_settings.UserSettings.from_json(data)
    assert e.value.http_status == 400
    assert field in e.value.message


def test_filters():
    s = user_settings.UserSettings.from_json({})
    assert s.wants(ev()) and s.wants(ev(outcome="succeeded"))
    s = user_settings.UserSettings.from_json({"failuresOnly": True, "events": ["run", "job"]})
    assert s.wants(ev()) and s.wants(ev(outcome="culled"))
    assert not s.wants(ev(outcome="succeeded"))
    assert not s.wants(ev(kind="pipeline_run"))
    s = user_settings.UserSettings.from_json({"experiments": ["churn"], "pipelines": ["nightly"]})
    assert s.wants(ev(), experiment_name="churn") and not s.wants(ev(), experiment_name="other")
    assert s.wants(ev(kind="pipeline_run", experiment_id="3", pipeline="nightly"), "churn")
    assert not s.wants(ev(kind="pipeline_run", pipeline="weekly"), "churn")
    assert s.wants(ev(kind="deployment", experiment_id=""))  # deployments have no experiment
    s = user_settings.UserSettings.from_json({"minDuration": 60})
    assert not s.wants(ev(start_time=1_000, end_time=30_000))
    assert s.wants(ev(start_time=1_000, end_time=61_000))


def test_settings_file_round_trips_and_is_private(tmp_path):
    path = str(tmp_path / "d" / "notifications.json")
    assert user_settings.load(path) == user_settings.UserSettings()
    s = user_settings.UserSettings.from_json(
        {"email": "ada@example.org", "webhooks": [{"url": "https://h.example/x", "secret": "k"}]}
    )
    user_settings.save(path, s)
    assert user_settings.load(path) == s
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_signature_is_hmac_sha256_of_the_body():
    body = b'{"event":"run.failed"}'
    want = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={want}"


def test_links_and_a_culled_server():
    assert ev().link == "#/experiments/3/runs/r1"
    assert ev(kind="pipeline_run", id="p1").link == "#/pipelines/runs/p1"
    assert ev(kind="job", id="j1").link == "#/jobs/j1"
    assert ev(kind="deployment", id="churn-api").link == "#/deployments/churn-api"
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    bus.subscribe(lambda e: 1 / 0)  # a broken subscriber is logged, never raised
    bus.stopping_reason = "culled"
    bus.publish(ev(outcome="killed"))
    bus.publish(ev(outcome="succeeded"))
    assert [e.outcome for e in seen] == ["culled", "succeeded"]
    assert seen[0].title() == "Run 'owl' stopped: its server was culled"
