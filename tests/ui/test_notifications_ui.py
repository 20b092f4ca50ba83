"""A run that fails is a notification in JupyterLab whose Open button opens the run."""

from __future__ import annotations

from uihelpers import TIMEOUT_MS, expect, run_as_user


def test_a_failed_run_is_a_notification_that_opens_the_run(lab, page):
    out = run_as_user(
        lab,
        """
        import mlflow
        mlflow.set_experiment("notify-ui")
        run = mlflow.start_run(run_name="ui-fails")
        mlflow.end_run(status="FAILED")
        print(run.info.run_id)
        """,
    )
    run_id = out.split()[-1]
    toast = page.locator(".Toastify__toast", has_text="Run 'ui-fails' failed")
    expect(toast).to_be_visible(timeout=TIMEOUT_MS)
    expect(toast).to_contain_text("experiment 'notify-ui'")
    toast.get_by_role("button", name="Open").click()
    expect(page.locator(f"#jupyter-mlops-run-{run_id}")).to_be_visible(timeout=TIMEOUT_MS)
