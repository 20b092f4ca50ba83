/**
 * The main-area view of one training job: status, progress and elapsed time,
 * the grid of nodes × ranks coloured by their state (click one to read its
 * log, followed while the job runs), cancel (confirmed first) and the link to
 * the job's tracked run with its live charts. Data and polling: `JobModel`.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, JobsApi } from '../api';
import { confirmDanger } from '../dialogs';
import { formatElapsed } from '../pipelines/form';
import { jobProgress, rankGrid } from './grid';
import { jobIcon } from './icon';
import { JobModel } from './jobModel';
import { FollowPending, LogPanel } from '../followView';

/** What the view needs from the application. */
export interface IJobViewOptions {
  api: JobsApi;
  trans: TranslationBundle;
  jobId: string;
  /** Open a tracked run's detail (its charts follow the run live). */
  openTrackedRun: (runId: string) => void;
  /** Open a file of the workspace. */
  openPath: (path: string) => void;
  pollMs?: number;
}

/** A training job in the main area. */
export class JobView extends ReactWidget {
  constructor(private _options: IJobViewOptions) {
    super();
    this.addClass('jp-mlops-JobView');
    this.id = `jupyter-mlops-job-${_options.jobId}`;
    this.title.label = _options.trans.__('Training job');
    this.title.closable = true;
    this.title.icon = jobIcon;
    this.model = new JobModel({
      api: _options.api,
      jobId: _options.jobId,
      pollMs: _options.pollMs
    });
    this.model.changed.connect(() => {
      const job = this.model.job;
      if (job) {
        this.title.label = `${job.name} · ${String(job.status).toLowerCase()}`;
      }
      this.update();
    });
    void this.model.start();
  }

  readonly model: JobModel;

  get jobId(): string {
    return this._options.jobId;
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.model.dispose();
    }
    super.dispose();
  }

  private async _cancel(): Promise<void> {
    const trans = this._options.trans;
    const job = this.model.job;
    const go = await confirmDanger(
      trans,
      trans.__('Cancel training job'),
      trans.__(
        'Cancel "%1"? Its %2 processes are stopped; their logs are kept in the tracked run.',
        job?.name ?? this.jobId,
        job?.progress.total ?? 0
      ),
      trans.__('Cancel job')
    );
    if (!go) {
      return;
    }
    try {
      await this.model.cancel();
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not cancel the job'),
        describeError(error)
      );
    }
  }

  protected onUpdateRequest(msg: any): void {
    super.onUpdateRequest(msg);
    const pre = this.node.querySelector('.jp-mlops-JobLog-text');
    if (pre) {
      pre.scrollTop = pre.scrollHeight;
    }
  }

  protected render(): JSX.Element {
    const { trans, openTrackedRun, openPath } = this._options;
    const model = this.model;
    const job = model.job;
    if (!job) {
      return (
        <FollowPending
          className="jp-mlops-JobView-body"
          error={model.error}
          loading={trans.__('Loading…')}
        />
      );
    }
    const grid = rankGrid(job);
    const progress = jobProgress(job);
    const selected = job.ranks.find(r => r.rank === model.rank);
    return (
      <div
        className="jp-mlops-JobView-body"
        data-job-id={job.job_id}
        data-status={job.status}
      >
        <div className="jp-mlops-PipelineRunView-header">
          <span className="jp-mlops-PipelineRunView-name">{job.name}</span>
          <span
            className={`jp-mlops-PipelineStatus jp-mlops-status-${job.status}`}
            data-status={job.status}
          >
            {job.status}
          </span>
          <span className="jp-mlops-JobView-shape">
            {trans.__(
              '%1 × %2 · %3',
              grid.nodes,
              grid.procsPerNode,
              job.framework ?? ''
            )}
          </span>
          <span className="jp-mlops-PipelineRunView-progress">
            {trans.__('%1 of %2 ranks ended', progress.ended, progress.total)}
          </span>
          <progress
            max={100}
            value={progress.percent}
            aria-label={trans.__('Progress')}
          />
          <span className="jp-mlops-PipelineRunView-elapsed">
            {formatElapsed(job.duration_ms)}
          </span>
          {job.attempt && job.attempt > 1 ? (
            <span className="jp-mlops-Muted">
              {trans.__('attempt %1', job.attempt)}
            </span>
          ) : null}
          {job.target && job.target !== 'local' ? (
            <span className="jp-mlops-Muted">
              {trans.__('on %1', job.target)}
            </span>
          ) : null}
          <span className="jp-mlops-PipelineRunView-spacer" />
          <button
            type="button"
            className="jp-mlops-LinkButton jp-mlops-JobRunLink"
            title={trans.__(
              'The job’s tracked run: parameters, metrics (live charts), logs'
            )}
            onClick={() => openTrackedRun(job.run_id)}
          >
            {trans.__('Open tracked run')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-JobCancel"
            disabled={!model.active || model.busy}
            onClick={() => void this._cancel()}
          >
            {trans.__('Cancel')}
          </button>
        </div>
        {job.reason ? (
          <div className="jp-mlops-PipelineRunView-reason">{job.reason}</div>
        ) : null}
        {job.path ? (
          <div className="jp-mlops-JobView-path">
            <button
              type="button"
              className="jp-mlops-LinkButton"
              onClick={() => openPath(job.path!)}
            >
              {job.path}
            </button>
          </div>
        ) : null}
        {Object.keys(job.parameters ?? {}).length ? (
          <dl className="jp-mlops-PipelineRunView-params">
            <dt>{trans.__('Parameters')}</dt>
            {Object.entries(job.parameters ?? {}).map(([key, value]) => (
              <dd key={key} data-param={key}>
                <span className="jp-mlops-Mono">{key}</span> ={' '}
                {typeof value === 'string' ? value : JSON.stringify(value)}
              </dd>
            ))}
          </dl>
        ) : null}
        {model.error ? (
          <div className="jp-mlops-Banner" role="alert">
            {model.error}
          </div>
        ) : null}
        <table
          className="jp-mlops-RankGrid"
          aria-label={trans.__('Nodes and ranks')}
        >
          <thead>
            <tr>
              <th />
              {grid.rows[0].map(c => (
                <th key={c.localRank} scope="col">
                  {trans.__('local %1', c.localRank)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {grid.rows.map((row, node) => (
              <tr key={node} data-node={node}>
                <th scope="row">{trans.__('node %1', node)}</th>
                {row.map(cell => (
                  <td key={cell.localRank}>
                    <button
                      type="button"
                      className={`jp-mlops-RankCell jp-mlops-status-${cell.status}${
                        cell.rank === model.rank ? ' jp-mod-selected' : ''
                      }`}
                      data-rank={cell.rank}
                      data-status={cell.status}
                      title={
                        cell.info?.error
                          ? `${cell.status}: ${cell.info.error}`
                          : cell.status
                      }
                      onClick={() => model.selectRank(cell.rank)}
                    >
                      <span className="jp-mlops-RankCell-rank">
                        {trans.__('rank %1', cell.rank)}
                      </span>
                      <span className="jp-mlops-RankCell-status">
                        {cell.status.toLowerCase()}
                        {cell.info?.exit_code !== null &&
                        cell.info?.exit_code !== undefined
                          ? ` · ${trans.__('exit %1', cell.info.exit_code)}`
                          : ''}
                      </span>
                    </button>
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        <LogPanel
          className="jp-mlops-JobLog"
          title={
            model.rank >= 0
              ? trans.__('Log of rank %1', model.rank)
              : trans.__('Select a rank to see its log')
          }
          status={selected ? String(selected.status) : undefined}
          following={
            model.rank >= 0 && !model.logEnded
              ? trans.__('following…')
              : undefined
          }
          error={selected?.error}
          logError={model.logError}
          log={model.log}
          textClass="jp-mlops-JobLog-text"
          textData={{ rank: model.rank }}
        />
      </div>
    );
  }
}
