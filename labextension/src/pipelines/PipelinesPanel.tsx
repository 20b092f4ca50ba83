/**
 * The "Pipelines" left sidebar: the workspace's `*.pipeline.yaml` files (each
 * with run and schedule buttons), their recurring runs (edit, pause/resume,
 * run now, delete) and the latest pipeline runs (click to open).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import {
  describeError,
  IPipelineRun,
  IPipelineSchedule,
  MLOpsClient
} from '../api';
import { confirmDanger } from '../dialogs';
import {
  ActionButton,
  ErrorBanner,
  ListSection,
  LoadingLine,
  PollingSidebar,
  SidebarHeader
} from '../sidebar';
import { describeCron, formatNextRun, scheduleTargetLabel } from './schedules';
import { pipelineIcon } from './icon';
import { formatElapsed, pipelineRunLabel } from './form';
import { RUN_TERMINAL } from './runModel';

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
export class PipelinesPanel extends PollingSidebar {
  constructor(private _options: IPipelinesPanelOptions) {
    super({
      id: 'jupyter-mlops-pipelines',
      className: 'jp-mlops-PipelinesPanel',
      icon: pipelineIcon,
      caption: _options.trans.__('Pipelines')
    });
  }

  /** Files, runs and schedules. */
  protected async load(): Promise<void> {
    const { client } = this._options;
    const [files, runs, schedules] = await Promise.all([
      client.listPipelineFiles(),
      client.listPipelineRuns({ max_results: 50 }),
      client.listPipelineSchedules()
    ]);
    this._files = files;
    this._runs = runs;
    this._schedules = schedules;
  }

  /** The settings' pace, but every 2 s at most while a run is going. */
  protected nextDelay(): number {
    const every = this._options.refreshMs();
    const active = this._runs.some(r => !RUN_TERMINAL.has(r.status));
    return active ? Math.min(every || 2000, 2000) : every;
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
        const go = await confirmDanger(
          trans,
          trans.__('Delete schedule'),
          trans.__(
            'Delete the schedule "%1" (%2)? Its past runs are kept.',
            schedule.name,
            schedule.cron
          ),
          trans.__('Delete')
        );
        if (!go) {
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
      this.error = describeError(error);
      this.update();
      return;
    }
    // reload, and follow a new run until it ends
    this.reloadIn(0);
  }

  protected render(): JSX.Element {
    const { trans, submit, schedule, openRun, openFile } = this._options;
    return (
      <div className="jp-mlops-PipelinesPanel-body">
        <SidebarHeader
          title={trans.__('Pipelines')}
          refreshLabel={trans.__('Refresh')}
          refreshClass="jp-mlops-PipelinesRefresh"
          refreshTitle={trans.__('Reload pipeline files and runs')}
          onRefresh={() => void this.refresh()}
        />
        <ErrorBanner error={this.error} />
        <LoadingLine
          loaded={this.loaded}
          error={this.error}
          text={trans.__('Loading pipelines…')}
        />
        <ListSection
          title={trans.__('Files')}
          listClass="jp-mlops-PipelineFiles"
          empty={this._empty(
            this._files,
            trans.__('No *.pipeline.yaml files in the workspace.')
          )}
        >
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
              <ActionButton
                className="jp-mlops-PipelineFile-run"
                label={trans.__('Run…')}
                title={trans.__('Run %1', path)}
                onClick={() => submit(path)}
              />
              <ActionButton
                className="jp-mlops-PipelineFile-schedule"
                label={trans.__('Schedule…')}
                title={trans.__('Run %1 on a cron schedule', path)}
                onClick={() => schedule(path)}
              />
            </li>
          ))}
        </ListSection>
        <ListSection
          title={trans.__('Schedules')}
          listClass="jp-mlops-PipelineSchedules"
          empty={this._empty(
            this._schedules,
            trans.__('No recurring runs. Use “Schedule…” on a file.')
          )}
        >
          {this._schedules.map(s => this._renderSchedule(s))}
        </ListSection>
        <ListSection
          title={trans.__('Runs')}
          listClass="jp-mlops-PipelineRuns"
          empty={this._empty(this._runs, trans.__('No pipeline runs yet.'))}
        >
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
              <span className="jp-mlops-PipelineRunItem-name">
                {pipelineRunLabel(run)}
              </span>
              <span
                className={`jp-mlops-PipelineStatus jp-mlops-status-${run.status}`}
              >
                {run.status}
              </span>
              <span className="jp-mlops-PipelineRunItem-meta">
                {run.run_name && run.run_name !== run.name
                  ? `${run.name} · `
                  : ''}
                {run.progress.done}/{run.progress.total}
                {run.duration_ms ? ` · ${formatElapsed(run.duration_ms)}` : ''}
                {run.created_time
                  ? ` · ${new Date(run.created_time).toLocaleTimeString()}`
                  : ''}
              </span>
            </li>
          ))}
        </ListSection>
      </div>
    );
  }

  /** The empty-list line, once loaded with nothing to list. */
  private _empty(items: unknown[], text: string): string | null {
    return this.loaded && items.length === 0 ? text : null;
  }

  private _renderSchedule(s: IPipelineSchedule): JSX.Element {
    const { trans, editSchedule } = this._options;
    const hint = describeCron(s.cron);
    const target = scheduleTargetLabel(s);
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
          {target ? (
            <span className="jp-mlops-ScheduleItem-target">
              {' '}
              · {trans.__('on %1', target)}
            </span>
          ) : null}
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
          <ActionButton
            className="jp-mlops-ScheduleItem-edit"
            label={trans.__('Edit…')}
            title={trans.__('Change the cron, time zone, parameters or name')}
            onClick={() => editSchedule(s)}
          />
          <ActionButton
            className="jp-mlops-ScheduleItem-toggle"
            label={s.paused ? trans.__('Resume') : trans.__('Pause')}
            onClick={() => void this._act(s, s.paused ? 'resume' : 'pause')}
          />
          <ActionButton
            className="jp-mlops-ScheduleItem-run"
            label={trans.__('Run now')}
            title={trans.__('Start a run of this schedule now')}
            onClick={() => void this._act(s, 'run')}
          />
          <ActionButton
            className="jp-mlops-ScheduleItem-delete"
            label={trans.__('Delete')}
            onClick={() => void this._act(s, 'delete')}
          />
        </span>
      </li>
    );
  }

  private _schedules: IPipelineSchedule[] = [];
  private _files: string[] = [];
  private _runs: IPipelineRun[] = [];
}
