"""Recurring runs in the Pipelines sidebar, in a real JupyterLab (headless
Chromium): a schedule is created from a pipeline file's "Schedule…" form (a bad
cron is refused with the server's message in the dialog), listed with its next
run time, paused and resumed, run now (a run appears) and deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from uihelpers import TIMEOUT_MS, expect, open_sidebar, set_theme

pytestmark = pytest.mark.ui

PANEL = "#jupyter-mlops-pipelines"
TAB = '.lm-TabBar-tab[data-id="jupyter-mlops-pipelines"]'
API = "mlops/api/v1/pipelines/"

PIPELINE = """\
name: ui-nightly
parameters:
  who: {type: string, description: who to greet}
steps:
  greet:
    script: hello.py
    parameters: {who: "{{ params.who }}"}
"""

HELLO = """\
import sys
who = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--who=")][0]
print(f"good night {who}", flush=True)
"""


@pytest.fixture
def pipeline_file(lab: Any) -> str:
    folder = lab.root / "work" / "nightly"
    folder.mkdir(exist_ok=True)
    (folder / "nightly.pipeline.yaml").write_text(PIPELINE)
    (folder / "hello.py").write_text(HELLO)
    return "nightly/nightly.pipeline.yaml"


def _open_panel(page: Any) -> Any:
    return open_sidebar(page, PANEL, TAB)


def _expected_next(ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") + f" ({tz})"


def test_schedule_lifecycle_from_the_panel(
    page: Any,
    lab: Any,
    pipeline_file: str,
    allowed_console_errors: list[str],
    screenshot_dir: Any,
) -> None:
    # The refused cron is a 400 the browser logs as a failed resource.
    allowed_console_errors.append("status of 400")
    assert page.evaluate(
        "() => window.jupyterapp.commands.hasCommand('jupyter-mlops:schedule-pipeline')"
    )
    panel = _open_panel(page)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    item = panel.locator(f'.jp-mlops-PipelineFile[data-path="{pipeline_file}"]')
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.locator(".jp-mlops-PipelineFile-schedule").click()

    dialog = page.locator(".jp-Dialog")
    form = dialog.locator(".jp-mlops-SubmitForm")
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    # The same generated parameter form, plus cron and the browser's time zone.
    expect(form.locator('input[name="who"]')).to_be_visible()
    browser_tz = page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone")
    expect(form.locator('input[name="timezone"]')).to_have_value(browser_tz)
    expect(form.locator('select[name="target"]')).to_have_count(0)  # only local: nothing to choose
    form.locator('input[name="who"]').fill("owl")

    # A bad cron: the dialog comes back with the server's message, fields kept.
    form.locator('input[name="cron"]').fill("61 25 * * *")
    dialog.locator(".jp-mod-accept").click()
    error = page.locator(".jp-Dialog .jp-mlops-SubmitForm-serverError")
    expect(error).to_contain_text("Invalid cron expression", timeout=TIMEOUT_MS)
    page.screenshot(path=str(screenshot_dir / "pipeline-schedule-bad-cron.png"))
    form = page.locator(".jp-Dialog .jp-mlops-SubmitForm")
    expect(form.locator('input[name="who"]')).to_have_value("owl")
    expect(form.locator('input[name="cron"]')).to_have_value("61 25 * * *")
    assert lab.api("GET", API + "schedules")["schedules"] == []

    # A good one, with a human hint as it is typed: weekdays at an hour 12 h away in Paris,
    # so it cannot fire (and move its next run time) while the test runs.
    hour = (datetime.now(ZoneInfo("Europe/Paris")).hour + 12) % 24
    cron, at = f"0 {hour} * * 1-5", f"{hour:02d}:00"
    form.locator('input[name="cron"]').fill(cron)
    expect(form.locator(".jp-mlops-CronHint")).to_have_text(f"at {at}, Monday–Friday")
    form.locator('input[name="timezone"]').fill("Europe/Paris")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)

    sched = panel.locator(".jp-mlops-ScheduleItem")
    expect(sched).to_have_count(1, timeout=TIMEOUT_MS)
    [server] = lab.api("GET", API + "schedules")["schedules"]
    assert server["cron"] == cron
    assert server["timezone"] == "Europe/Paris"
    assert server["parameters"] == {"who": "owl"}
    assert server["pipeline_path"] == pipeline_file
    sid = server["schedule_id"]
    expect(sched).to_have_attribute("data-schedule-id", sid)
    expect(sched.locator(".jp-mlops-ScheduleItem-name")).to_have_text("ui-nightly")
    expect(sched.locator(".jp-mlops-ScheduleItem-cron")).to_have_text(cron)
    expect(sched.locator(".jp-mlops-ScheduleItem-hint")).to_contain_text(f"{at}, Monday–Friday")
    next_run = sched.locator(".jp-mlops-ScheduleItem-next")
    expect(next_run).to_have_text(_expected_next(server["next_fire_time"], "Europe/Paris"))
    assert f"{at} (Europe/Paris)" in next_run.inner_text()
    page.screenshot(path=str(screenshot_dir / "pipeline-schedules.png"))

    # Pause, then resume.
    toggle = sched.locator(".jp-mlops-ScheduleItem-toggle")
    expect(toggle).to_have_text("Pause")
    toggle.click()
    expect(sched).to_have_attribute("data-paused", "true", timeout=TIMEOUT_MS)
    expect(toggle).to_have_text("Resume")
    assert lab.api("GET", API + f"schedules/{sid}")["schedule"]["paused"] is True
    toggle.click()
    expect(sched).to_have_attribute("data-paused", "false", timeout=TIMEOUT_MS)
    resumed = lab.api("GET", API + f"schedules/{sid}")["schedule"]
    assert resumed["paused"] is False
    expect(next_run).to_have_text(_expected_next(resumed["next_fire_time"], "Europe/Paris"))

    # Run now: a run of the schedule opens and succeeds with its parameters.
    sched.locator(".jp-mlops-ScheduleItem-run").click()
    view = page.locator(".jp-mlops-PipelineRunView:visible")
    expect(view).to_have_count(1, timeout=TIMEOUT_MS)
    status = view.locator(".jp-mlops-PipelineRunView-header .jp-mlops-PipelineStatus")
    expect(status).to_have_text("SUCCEEDED", timeout=TIMEOUT_MS)
    runs = lab.api("GET", API + f"runs?schedule_id={sid}")["runs"]
    assert len(runs) == 1
    assert runs[0]["parameters"] == {"who": "owl"}
    panel = _open_panel(page)
    run_item = panel.locator(f'.jp-mlops-PipelineRunItem[data-run-id="{runs[0]["run_id"]}"]')
    expect(run_item).to_be_visible(timeout=TIMEOUT_MS)
    # named after its schedule and the time it started, not at random
    assert runs[0]["run_name"].startswith("ui-nightly 20")
    expect(run_item.locator(".jp-mlops-PipelineRunItem-name")).to_have_text(runs[0]["run_name"])

    # Delete asks first; cancelling keeps it, confirming removes it.
    sched.locator(".jp-mlops-ScheduleItem-delete").click()
    confirm = page.locator(".jp-Dialog")
    expect(confirm).to_contain_text("Delete the schedule")
    confirm.locator(".jp-mod-reject").click()
    expect(sched).to_have_count(1)
    sched.locator(".jp-mlops-ScheduleItem-delete").click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(sched).to_have_count(0, timeout=TIMEOUT_MS)
    assert lab.api("GET", API + "schedules")["schedules"] == []
    # its past run is kept
    assert lab.api("GET", API + f"runs/{runs[0]['run_id']}")["run"]["status"] == "SUCCEEDED"


def test_edit_a_schedule_in_its_form(
    page: Any,
    lab: Any,
    pipeline_file: str,
    allowed_console_errors: list[str],
    screenshot_dir: Any,
) -> None:
    allowed_console_errors.append("status of 400")
    # Yearly, so it cannot fire (and move its next time) while the test runs.
    created = lab.api(
        "POST",
        API + "schedules",
        {
            "path": pipeline_file,
            "cron": "0 6 1 1 *",
            "timezone": "UTC",
            "parameters": {"who": "owl"},
            "name": "new year",
        },
    )["schedule"]
    sid = created["schedule_id"]
    panel = _open_panel(page)
    panel.locator(".jp-mlops-PipelinesRefresh").click()
    sched = panel.locator(f'.jp-mlops-ScheduleItem[data-schedule-id="{sid}"]')
    expect(sched).to_be_visible(timeout=TIMEOUT_MS)
    sched.locator(".jp-mlops-ScheduleItem-edit").click()

    # The create form, started with the schedule's values.
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("Edit schedule new year")
    form = dialog.locator(".jp-mlops-SubmitForm")
    expect(form.locator('input[name="who"]')).to_have_value("owl")
    expect(form.locator('input[name="cron"]')).to_have_value("0 6 1 1 *")
    expect(form.locator(".jp-mlops-CronHint")).to_have_text("at 06:00, on day 1, in January")
    expect(form.locator('input[name="timezone"]')).to_have_value("UTC")
    expect(form.locator('input[name="run_name"]')).to_have_value("new year")
    expect(form.locator('select[name="target"]')).to_have_count(0)

    # A bad cron: the server's message in the dialog, every field kept, nothing saved.
    form.locator('input[name="who"]').fill("cat")
    form.locator('input[name="cron"]').fill("61 25 * * *")
    dialog.locator(".jp-mod-accept").click()
    error = page.locator(".jp-Dialog .jp-mlops-SubmitForm-serverError")
    expect(error).to_contain_text("Invalid cron expression", timeout=TIMEOUT_MS)
    form = page.locator(".jp-Dialog .jp-mlops-SubmitForm")
    expect(form.locator('input[name="who"]')).to_have_value("cat")
    expect(form.locator('input[name="cron"]')).to_have_value("61 25 * * *")
    assert lab.api("GET", API + f"schedules/{sid}")["schedule"] == created

    # A good cron and zone: saved, and the list shows the new next fire time.
    form.locator('input[name="cron"]').fill("30 7 2 2 *")
    expect(form.locator(".jp-mlops-CronHint")).to_have_text("at 07:30, on day 2, in February")
    form.locator('input[name="timezone"]').fill("Asia/Tokyo")
    for theme, light in (("JupyterLab Dark", False), ("JupyterLab Light", True)):
        set_theme(page, theme, light)
        page.screenshot(
            path=str(screenshot_dir / f"pipeline-schedule-edit-{theme[11:].lower()}.png")
        )
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    # the list reloads once the PATCH is answered
    expect(sched.locator(".jp-mlops-ScheduleItem-cron")).to_have_text(
        "30 7 2 2 *", timeout=TIMEOUT_MS
    )
    saved = lab.api("GET", API + f"schedules/{sid}")["schedule"]
    assert (saved["cron"], saved["timezone"], saved["parameters"], saved["name"]) == (
        "30 7 2 2 *",
        "Asia/Tokyo",
        {"who": "cat"},
        "new year",
    )
    assert saved["next_fire_time"] != created["next_fire_time"]
    next_run = sched.locator(".jp-mlops-ScheduleItem-next")
    expect(next_run).to_have_text(_expected_next(saved["next_fire_time"], "Asia/Tokyo"))
    assert "-02-02 07:30 (Asia/Tokyo)" in next_run.inner_text()
    lab.api("DELETE", API + f"schedules/{sid}")
