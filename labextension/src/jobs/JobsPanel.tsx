/**
 * The "Training jobs" left sidebar: a Submit button (the job form) and the
 * latest jobs with their status, ranks and elapsed time; clicking one opens
 * its view. It reloads every 2 s while a job is active.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IJob, JobsApi } from '../api';
import { formatElapsed } from '../pipelines/form';
import {
  ActionButton,
  ErrorBanner,
  ListSection,
  LoadingLine,
  PollingSidebar,
  SidebarHeader
} from '../sidebar';
import { JOB_TERMINAL, jobProgress } from './grid';
import { jobIcon } from './icon';

/** Id of the sidebar (the left area's tab). */
export const JOBS_PANEL_ID = 'jupyter-mlops-jobs';

/** What the panel needs from the application. */
export interface IJobsPanelOptions {
  api: JobsApi;
  trans: TranslationBundle;
  /** Open the submit form. */
  submit: () => void;
  openJob: (jobId: string) => void;
  /** Refresh interval in ms (0: none). */
  refreshMs: () => number;
}

/** The Training jobs sidebar. */
export class JobsPanel extends PollingSidebar {
  constructor(private _options: IJobsPanelOptions) {
    super({
      id: JOBS_PANEL_ID,
      className: 'jp-mlops-JobsPanel',
      icon: jobIcon,
      caption: _options.trans.__('Training jobs')
    });
  }

  /** The jobs last loaded, newest first. */
  get jobs(): IJob[] {
    return this._jobs;
  }

  protected async load(): Promise<void> {
    this._jobs = await this._options.api.list({ max_results: 50 });
  }

  /** The settings' pace, but every 2 s at most while a job is active. */
  protected nextDelay(): number {
    const every = this._options.refreshMs();
    const active = this._jobs.some(j => !JOB_TERMINAL.has(String(j.status)));
    return active ? Math.min(every || 2000, 2000) : every;
  }

  protected render(): JSX.Element {
    const { trans, submit, openJob } = this._options;
    return (
      <div className="jp-mlops-PipelinesPanel-body">
        <SidebarHeader
          title={trans.__('Training jobs')}
          refreshLabel={trans.__('Refresh')}
          refreshClass="jp-mlops-JobsRefresh"
          refreshTitle={trans.__('Reload the jobs')}
          onRefresh={() => void this.refresh()}
        />
        <div className="jp-mlops-JobsPanel-actions">
          <ActionButton
            className="jp-mlops-JobSubmit"
            label={trans.__('Submit job…')}
            title={trans.__(
              'Run a script or notebook on several processes (nodes × ranks)'
            )}
            onClick={submit}
          />
        </div>
        <ErrorBanner error={this.error} />
        <LoadingLine
          loaded={this.loaded}
          error={this.error}
          text={trans.__('Loading jobs…')}
        />
        <ListSection
          title={trans.__('Jobs')}
          listClass="jp-mlops-JobList"
          empty={
            this.loaded && !this._jobs.length
              ? trans.__(
                  'No training jobs yet. Submit one here, or run a *.job.yaml file from the file browser.'
                )
              : null
          }
        >
          {this._jobs.map(job => {
            const p = jobProgress(job);
            return (
              <li
                key={job.job_id}
                className="jp-mlops-PipelineRunItem jp-mlops-JobItem"
                data-job-id={job.job_id}
                data-status={job.status}
                onClick={() => openJob(job.job_id)}
                onKeyDown={e => {
                  if (e.key === 'Enter') {
                    openJob(job.job_id);
                  }
                }}
                tabIndex={0}
                role="button"
                title={job.reason || job.path || job.name}
              >
                <span className="jp-mlops-PipelineRunItem-name">
                  {job.name}
                </span>
                <span
                  className={`jp-mlops-PipelineStatus jp-mlops-status-${job.status}`}
                >
                  {job.status}
                </span>
                <span className="jp-mlops-PipelineRunItem-meta">
                  {trans.__(
                    '%1×%2 · %3 running, %4/%5 ended',
                    job.nodes ?? 1,
                    job.procs_per_node ?? 1,
                    p.running,
                    p.ended,
                    p.total
                  )}
                  {job.duration_ms
                    ? ` · ${formatElapsed(job.duration_ms)}`
                    : ''}
                  {job.created_time
                    ? ` · ${new Date(job.created_time).toLocaleTimeString()}`
                    : ''}
                </span>
              </li>
            );
          })}
        </ListSection>
      </div>
    );
  }

  private _jobs: IJob[] = [];
}
