"""Notifications of runs that end through the REST API (as the mlflow client ends them): a
JupyterLab notification with the run's link, an e-mail through a real SMTP server on loopback
(aiosmtpd), webhook calls to a real HTTP receiver on loopback whose signature verifies, retries
of a failing receiver in the delivery log, never holding up the run's request."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd's handler: every message received."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default_policy))
        )
        return "250 OK"


@pytest.fixture
def smtpd():
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    box = Mailbox()
    for _ in range(5):  # another process may take the port between the probe and the bind
        controller = controller_mod.Controller(box, hostname="127.0.0.1", port=free_port())
        try:
            controller.start()
            break
        except (OSError, RuntimeError):  # aiosmtpd: the port taken meanwhile
            continue
    else:
        pytest.fail("no SMTP server could start on loopback")
    box.port = controller.port
    yield box
    controller.stop()


class Receiver:
    """A webhook receiver on loopback: answers ``codes`` in turn (then 200), records calls
    (header names in lower case: HTTP's are case-insensitive);
    ``hold`` keeps its answers back until set."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.codes = list(codes or [])
        self.calls: list[tuple[dict, bytes]] = []
        self.hold = threading.Event()
        self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.hold.wait(DEADLINE)
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(codes=None) -> Receiver:
        made.append(Receiver(codes))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def jp_server_config(jp_server_config, smtpd):
    cfg = dict(jp_server_config)
    cfg["NotificationService"] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtpd.port,
        "smtp_security": "none",
        "smtp_from": "MLOps <mlops@example.org>",
        "public_url": "https://hub.example.org/user/ada/",
        "retry_delay": 0.05,
        "max_retry_delay": 0.2,
        "max_attempts": 3,
    }
    return cfg


def until(api, what, check):
    """Poll (each call runs the server's loop) until ``check()`` is truthy."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        api("GET", "api/v1/notifications", params={"after": "0"})
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def new_run(api, experiment: str, name: str) -> tuple[str, str]:
    exp = api(
        "GET", "api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": experiment}
    )
    if exp.status == 200:
        eid = exp.json["experiment"]["experiment_id"]
    else:
        eid = api("POST", "api/2.0/mlflow/experiments/create", {"name": experiment}).json[
            "experiment_id"
        ]
    run = api("POST", "api/2.0/mlflow/runs/create", {"experiment_id": eid, "run_name": name})
    return eid, run.json["run"]["info"]["run_id"]


def end(api, run_id: str, status: str) -> None:
    r = api(
        "POST",
        "api/2.0/mlflow/runs/update",
        {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)},
    )
    assert r.status == 200, r.body


def notifications(api) -> list[dict]:
    return api("GET", "api/v1/notifications", params={"after": "0"}).json["notifications"]


def deliveries(api) -> list[dict]:
    return api("GET", "api/v1/notifications/deliveries").json["deliveries"]


def test_a_run_ended_over_rest_is_a_notification_with_its_link(api):
    eid, rid = new_run(api, "notify-lab", "bright-owl")
    end(api, rid, "FAILED")
    note = until(
        api, "the run's notification", lambda: [n for n in notifications(api) if rid in n["link"]]
    )[0]
    assert note["link"] == f"#/experiments/{eid}/runs/{rid}"
    assert note["type"] == "error" and note["source"] == "run" and note["auto_close"] == 0
    assert note["message"] == "Run 'bright-owl' failed (experiment 'notify-lab')"
    _, ok = new_run(api, "notify-lab", "calm-fox")
    end(api, ok, "FINISHED")
    note = until(
        api, "the finished run", lambda: [n for n in notifications(api) if ok in n["link"]]
    )[0]
    assert note["type"] == "success" and note["message"].startswith("Run 'calm-fox' finished")


def test_settings_are_checked_kept_and_private(api, jp_data_dir):
    r = api("POST", "api/v1/notifications/settings", {"settings": {"email": "nope"}})
    assert r.status == 400 and "email must be one address" in r.json["message"]
    good = {"email": "ada@example.org", "failuresOnly": True, "webhooks": []}
    r = api("POST", "api/v1/notifications/settings", {"settings": good})
    assert r.status == 200 and r.json["smtp"] is True
    got = api("GET", "api/v1/notifications/settings").json["settings"]
    assert got["email"] == "ada@example.org" and got["failuresOnly"] is True
    path = jp_data_dir / "mlops" / "notifications.json"
    assert json.loads(path.read_text())["email"] == "ada@example.org"
    assert path.stat().st_mode & 0o077 == 0


def test_a_failed_run_is_mailed_and_webhooks_are_signed(api, smtpd, receivers):
    hook = receivers()
    settings = {
        "email": "ada@example.org",
        "webhooks": [{"url": hook.url, "secret": "s3cret"}],
    }
    assert api("POST", "api/v1/notifications/settings", {"settings": settings}).status == 200
    eid, rid = new_run(api, "notify-mail", "long-train")
    end(api, rid, "FAILED")
    until(api, "the mail", lambda: smtpd.messages)
    until(api, "the webhook", lambda: hook.calls)
    ((to, mail),) = smtpd.messages
    assert to == ["ada@example.org"] and mail["From"] == "MLOps <mlops@example.org>"
    assert mail["Subject"] == "[MLOps] Run 'long-train' failed"
    link = f"https://hub.example.org/user/ada/mlops/#/experiments/{eid}/runs/{rid}"
    assert link in mail.get_content()
    ((headers, body),) = hook.calls
    want = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-mlops-signature"] == f"sha256={want}"
    assert headers["x-mlops-event"] == "run.failed"
    payload = json.loads(body)
    assert (payload["kind"], payload["id"], payload["outcome"]) == ("run", rid, "failed")
    assert payload["url"] == link and payload["experiment_name"] == "notify-mail"

    def both_delivered():
        log = deliveries(api)
        return log if len(log) == 2 and all(d["state"] == "delivered" for d in log) else None

    log = until(api, "both deliveries logged", both_delivered)
    assert {d["channel"] for d in log} == {"email", "webhook"}


def test_a_failing_receiver_is_retried_logged_and_never_holds_up_the_run(api, receivers):
    flaky = receivers([500, 503])  # then 200
    broken = receivers([500, 500, 500, 500])
    flaky.hold.clear()  # the receiver does not answer until told
    settings = {"webhooks": [{"url": flaky.url}, {"url": broken.url}]}
    assert api("POST", "api/v1/notifications/settings", {"settings": settings}).status == 200
    _, rid = new_run(api, "notify-retry", "patient")
    end(api, rid, "FAILED")  # answered while the receiver holds its answer
    until(api, "the first call", lambda: flaky.calls)
    assert api("GET", f"api/2.0/mlflow/runs/get?run_id={rid}").json["run"]["info"]["status"] == (
        "FAILED"
    )
    flaky.hold.set()

    def settled():
        log = {d["target"]: d for d in deliveries(api)}
        done = [log.get(flaky.url, {}).get("state"), log.get(broken.url, {}).get("state")]
        return log if done == ["delivered", "failed"] else None

    log = until(api, "both deliveries settled", settled)
    ok, bad = log[flaky.url], log[broken.url]
    assert [a["ok"] for a in ok["attempts"]] == [False, False, True]
    assert ok["attempts"][0]["error"].startswith("HTTP 500")
    assert ok["attempts"][1]["error"].startswith("HTTP 503")
    assert len(flaky.calls) == 3
    delivery_ids = {h["x-mlops-delivery"] for h, _ in flaky.calls}
    assert len(delivery_ids) == 1  # the same delivery, retried
    assert [a["ok"] for a in bad["attempts"]] == [False, False, False]  # max_attempts = 3
    assert bad["item"] == {"kind": "run", "id": rid, "name": "patient", "outcome": "failed"}


def test_a_run_a_kernel_ended_in_the_database_is_told(
    api, http_server_port, jp_base_url, jp_auth_header, mlops_db_url, tmp_path
):
    """A kernel of the server logs straight into its database (a sqlite:// URI): its client
    tells the server (api/v1/runs/ended) when it ends a run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env.update(
        JUPYTER_MLOPS_TRACKING_URI=mlops_db_url,
        JUPYTER_MLOPS_SERVER_URL=f"http://127.0.0.1:{http_server_port[1]}{jp_base_url}",
        JUPYTER_MLOPS_SERVER_TOKEN=jp_auth_header["Authorization"].split()[-1],
        JUPYTER_DATA_DIR=str(tmp_path / "kernel-data"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    script = (
        "import jupyter_mlops as mlops\n"
        "mlops.set_experiment('notify-direct')\n"
        "run = mlops.start_run(run_name='direct-sql')\n"
        "mlops.end_run('FAILED')\n"
        "print(run.info.run_id)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    until(api, "the kernel's process to end", lambda: proc.poll() is not None)  # serves it
    run_id = proc.stdout.read().split()[-1]
    assert proc.returncode == 0
    note = until(
        api,
        "the run's notification",
        lambda: [n for n in notifications(api) if run_id in n["link"]],
    )[0]
    assert note["message"] == "Run 'direct-sql' failed (experiment 'notify-direct')"
    r = api("POST", "api/v1/runs/ended", {"run_id": "0" * 32})
    assert r.status == 404 and r.json["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_test_delivery_reaches_the_channels(api, receivers):
    r = api("POST", "api/v1/notifications/test")
    assert r.status == 400 and "nothing to test" in r.json["message"]
    hook = receivers()
    settings = {"webhooks": [{"url": hook.url, "secret": "k"}]}
    assert api("POST", "api/v1/notifications/settings", {"settings": settings}).status == 200
    r = api("POST", "api/v1/notifications/test")
    assert r.status == 200, r.body
    (delivery_id,) = r.json["deliveries"]
    until(api, "the test call", lambda: hook.calls)
    ((headers, body),) = hook.calls
    assert headers["x-mlops-event"] == "test" and headers["x-mlops-delivery"] == delivery_id
    assert json.loads(body)["test"] is True
    want = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert headers["x-mlops-signature"] == f"sha256={want}"


def test_runs_ending_together_share_one_notification(api):
    """A sweep's runs that finish within the user's ``groupRuns`` seconds become one
    notification counting them, linking to the experiment; a failure stays its own, and
    ``groupRuns: 0`` tells each run."""
    settings = {"groupRuns": 3600}  # the whole test is one window, however slow the machine
    assert api("POST", "api/v1/notifications/settings", {"settings": settings}).status == 200
    runs = [new_run(api, "notify-sweep", f"trial-{i}") for i in range(4)]
    eid = runs[0][0]
    for _, rid in runs[:3]:
        end(api, rid, "FINISHED")
    end(api, runs[3][1], "FAILED")

    def sweep_notes():
        notes = [n for n in notifications(api) if n["source"] == "run" and not n["dismissed"]]
        done = [n for n in notes if n["type"] == "success"]
        failed = [n for n in notes if n["type"] == "error"]
        return notes if done and done[0]["message"].startswith("3 ") and failed else None

    notes = until(api, "the grouped notification", sweep_notes)
    finished = [n for n in notes if n["type"] == "success"]
    assert len(finished) == 1
    assert finished[0]["message"] == "3 runs finished in experiment 'notify-sweep'"
    assert finished[0]["link"] == f"#/experiments/{eid}"
    (failed,) = [n for n in notes if n["type"] == "error"]
    assert failed["message"] == "Run 'trial-3' failed (experiment 'notify-sweep')"
    # A later run of the sweep updates the same notification (JupyterLab replaces its toast).
    _, late = new_run(api, "notify-sweep", "trial-4")
    end(api, late, "FINISHED")
    (grown,) = until(
        api,
        "the count of four",
        lambda: [n for n in notifications(api) if n["message"].startswith("4 runs finished")],
    )
    assert grown["id"] == finished[0]["id"] and grown["seq"] > finished[0]["seq"]

    assert (
        api("POST", "api/v1/notifications/settings", {"settings": {"groupRuns": 0}}).status == 200
    )
    alone = [new_run(api, "notify-sweep", f"solo-{i}")[1] for i in range(2)]
    for rid in alone:
        end(api, rid, "FINISHED")
    for rid in alone:
        until(
            api,
            f"{rid}'s own notification",
            lambda rid=rid: [n for n in notifications(api) if rid in n["link"]],
        )
    assert api("GET", "api/v1/notifications/settings").json["settings"]["groupRuns"] == 0
    r = api("POST", "api/v1/notifications/settings", {"settings": {"groupRuns": -5}})
    assert r.status == 400 and "groupRuns must be a number of seconds" in r.json["message"]
