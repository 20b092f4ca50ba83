/**
 * The "Pipelines" left sidebar: the workspace's `*.pipeline.yaml` files (each
 * with run and schedule buttons), their recurring runs (edit, pause/resume,
 * run now, delete) and the latest pipeline runs (click to open).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import {
  describeError,
  IPipelineRun,
  IPipelineSchedule,
  MLOpsClient
} from '../api';
import { describeCron, formatNextRun } from './schedules';
import { pipelineIcon } from './icon';
import { formatElapsed } from './form';
import { RUN_TERMINAL } from './RunView';

/** What the panel needs from the application. */
export interface IPipelinesPanelOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  /** Open the submit dialog for a file. */
  submit: (path: string) => void;
  /** Open the schedule dialog for a file. */
  schedule: (path: string) => void;
  /** Open the edit dialog of a schedule. */
  editSchedule: (schedule: IPipelineSchedule) => void;
  /** Open a run's view. */
  openRun: (runId: string) => void;
  /** Open a file in the editor. */
  openFile: (path: string) => void;
  /** Refresh interval in ms (0: none). */
  refreshMs: () => number;
}

/** The Pipelines sidebar. */
export class PipelinesPanel extends ReactWidget {
  constructor(private _options: IPipelinesPanelOptions) {
    super();
    this.id = 'jupyter-mlops-pipelines';
    this.addClass('jp-mlops-PipelinesPanel');
    this.title.icon = pipelineIcon;
    this.title.caption = _options.trans.__('Pipelines');
  }

  /** Reload files and runs now. */
  async refresh(): Promise<void> {
    const { client } = this._options;
    try {
      const [files, runs, schedules] = await Promise.all([
        client.listPipelineFiles(),
        client.listPipelineRuns({ max_results: 50 }),
        client.listPipelineSchedules()
      ]);
      this._files = files;
      this._runs = runs;
      this._schedules = schedules;
      this._error = '';
    } catch (error) {
      this._error = describeError(error);
    }
    this._loaded = true;
    this.update();
  }

  /** Do one action on a schedule, then reload (errors go to the banner). */
  private async _act(
    schedule: IPipelineSchedule,
    action: 'pause' | 'resume' | 'run' | 'delete'
  ): Promise<void> {
    const { client, trans, openRun } = this._options;
    const id = schedule.schedule_id;
    try {
      if (action === 'delete') {
        const answer = await showDialog({
          title: trans.__('Delete schedule'),
          body: trans.__(
            'Delete the schedule "%1" (%2)? Its past runs are kept.',
            schedule.name,
            schedule.cron
          ),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Cancel') }),
            Dialog.warnButton({ label: trans.__('Delete') })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        await client.deletePipelineSchedule(id);
      } else if (action === 'run') {
        const run = await client.runPipelineScheduleNow(id);
        openRun(run.run_id);
      } else {
        await client.updatePipelineSchedule(id, {
          paused: action === 'pause'
        });
      }
    } catch (error) {
      this._error = describeError(error);
      this.update();
      return;
    }
    // reload, and follow a new run until it ends
    this._schedule(0);
  }

  dispose(): void {
    this._stop();
    super.dispose();
  }

  protected onAfterShow(): void {
    this._schedule(0);
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      this._schedule(0);
    }
  }

  protected onBeforeHide(): void {
    this._stop();
  }

  protected onBeforeDetach(): void {
    this._stop();
  }

  private _stop(): void {
    if (this._timer !== undefined) {
      window.clearTimeout(this._timer);
      this._timer = undefined;
    }
  }

  private _schedule(delay: number): void {
    this._stop();
    this._timer = window.setTimeout(async () => {
      await this.refresh();
      if (this.isDisposed || !this.isVisible) {
        return;
      }
      const active = this._runs.some(r => !RUN_TERMINAL.has(r.status));
      const every = this._options.refreshMs();
      if (every > 0 || active) {
        this._schedule(active ? Math.min(every || 2000, 2000) : every);
      }
    }, delay);
  }

  protected render(): JSX.Element {
    const { trans, submit, schedule, openRun, openFile } = this._options;
    return (
      <div className="jp-mlops-PipelinesPanel-body">
        <div className="jp-mlops-PipelinesPanel-toolbar">
          <h2 className="jp-mlops-RunsPanel-heading">
            {trans.__('Pipelines')}
          </h2>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-PipelinesRefresh"
            onClick={() => void this.refresh()}
            title={trans.__('Reload pipeline files and runs')}
          >
            {trans.__('Refresh')}
          </button>
        </div>
        {this._error ? (
          <div className="jp-mlops-Banner" role="alert">
            {this._error}
          </div>
        ) : null}
        <h3 className="jp-mlops-PipelinesPanel-section">{trans.__('Files')}</h3>
        <ul className="jp-mlops-PipelineFiles">
          {this._loaded && this._files.length === 0 ? (
            <li className="jp-mlops-PipelinesPanel-empty">
              {trans.__('No *.pipeline.yaml files in the workspace.')}
            </li>
          ) : null}
          {this._files.map(path => (
            <li
              key={path}
              className="jp-mlops-PipelineFile"
              data-path={path}
              title={path}
            >
              <button
                type="button"
                className="jp-mlops-LinkButton jp-mlops-PipelineFile-name"
                onClick={() => openFile(path)}
              >
                {path}
              </button>
              <button
                type="button"
                className="jp-mlops-Button jp-mod-styled jp-mlops-PipelineFile-run"
                onClick={() => submit(path)}
                title={trans.__('Run %1', path)}
              >
                {trans.__('Run…')}
              </button>
              <button
                type="button"
                className="jp-mlops-Button jp-mod-styled jp-mlops-PipelineFile-schedule"
                onClick={() => schedule(path)}
                title={trans.__('Run %1 on a cron schedule', path)}
              >
                {trans.__('Schedule…')}
              </button>
            </li>
          ))}
        </ul>
        <h3 className="jp-mlops-PipelinesPanel-section">
          {trans.__('Schedules')}
        </h3>
        <ul className="jp-mlops-PipelineSchedules">
          {this._loaded && this._schedules.length === 0 ? (
            <li className="jp-mlops-PipelinesPanel-empty">
              {trans.__('No recurring runs. Use “Schedule…” on a file.')}
            </li>
          ) : null}
          {this._schedules.map(s => this._renderSchedule(s))}
        </ul>
        <h3 className="jp-mlops-PipelinesPanel-section">{trans.__('Runs')}</h3>
        <ul className="jp-mlops-PipelineRuns">
          {this._loaded && this._runs.length === 0 ? (
            <li className="jp-mlops-PipelinesPanel-empty">
              {trans.__('No pipeline runs yet.')}
            </li>
          ) : null}
          {this._runs.map(run => (
            <li
              key={run.run_id}
              className="jp-mlops-PipelineRunItem"
              data-run-id={run.run_id}
              data-status={run.status}
              onClick={() => openRun(run.run_id)}
              onKeyDown={e => {
                if (e.key === 'Enter') {
                  openRun(run.run_id);
                }
              }}
              tabIndex={0}
              role="button"
              title={run.path ?? run.name}
            >
              <span className="jp-mlops-PipelineRunItem-name">{run.name}</span>
              <span
                className={`jp-mlops-PipelineStatus jp-mlops-status-${run.status}`}
              >
                {run.status}
              </span>
              <span className="jp-mlops-PipelineRunItem-meta">
                {run.progress.done}/{run.progress.total}
                {run.duration_ms ? ` · ${formatElapsed(run.duration_ms)}` : ''}
                {run.created_time
                  ? ` · ${new Date(run.created_time).toLocaleTimeString()}`
                  : ''}
              </span>
            </li>
          ))}
        </ul>
      </div>
    );
  }

  private _renderSchedule(s: IPipelineSchedule): JSX.Element {
    const { trans, editSchedule } = this._options;
    const hint = describeCron(s.cron);
    return (
      <li
        key={s.schedule_id}
        className="jp-mlops-ScheduleItem"
        data-schedule-id={s.schedule_id}
        data-path={s.pipeline_path}
        data-paused={s.paused ? 'true' : 'false'}
        title={s.pipeline_path}
      >
        <span className="jp-mlops-ScheduleItem-name">{s.name}</span>
        {s.paused ? (
          <span className="jp-mlops-PipelineStatus jp-mlops-ScheduleItem-paused">
            {trans.__('paused')}
          </span>
        ) : null}
        <span className="jp-mlops-ScheduleItem-meta">
          <span className="jp-mlops-ScheduleItem-path">{s.pipeline_path}</span>
        </span>
        <span className="jp-mlops-ScheduleItem-meta">
          <code className="jp-mlops-ScheduleItem-cron">{s.cron}</code>
          {hint ? (
            <span className="jp-mlops-ScheduleItem-hint"> · {hint}</span>
          ) : null}
          <span className="jp-mlops-ScheduleItem-tz"> · {s.timezone}</span>
        </span>
        <span className="jp-mlops-ScheduleItem-meta">
          {trans.__('Next:')}{' '}
          <span className="jp-mlops-ScheduleItem-next">
            {s.paused
              ? trans.__('paused')
              : formatNextRun(s.next_fire_time, s.timezone)}
          </span>
        </span>
        {s.last_error ? (
          <span className="jp-mlops-ScheduleItem-error" role="alert">
            {s.last_error}
          </span>
        ) : null}
        <span className="jp-mlops-ScheduleItem-actions">
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-ScheduleItem-edit"
            onClick={() => editSchedule(s)}
            title={trans.__('Change the cron, time zone, parameters or name')}
          >
            {trans.__('Edit…')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-ScheduleItem-toggle"
            onClick={() => void this._act(s, s.paused ? 'resume' : 'pause')}
          >
            {s.paused ? trans.__('Resume') : trans.__('Pause')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-ScheduleItem-run"
            onClick={() => void this._act(s, 'run')}
            title={trans.__('Start a run of this schedule now')}
          >
            {trans.__('Run now')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-ScheduleItem-delete"
            onClick={() => void this._act(s, 'delete')}
          >
            {trans.__('Delete')}
          </button>
        </span>
      </li>
    );
  }

  private _schedules: IPipelineSchedule[] = [];
  private _files: string[] = [];
  private _runs: IPipelineRun[] = [];
  private _error = '';
  private _loaded = false;
  private _timer: number | undefined = undefined;
}
