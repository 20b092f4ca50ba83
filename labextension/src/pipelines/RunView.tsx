/**
 * The main-area view of one pipeline run: the DAG with steps coloured by
 * their live status, progress and elapsed time, the selected step's log
 * (followed while the step runs), and cancel / retry.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, IPipelineRun, MLOpsClient } from '../api';
import { layoutDag, DEFAULT_METRICS } from './dag';
import { formatElapsed } from './form';

/** Run states after which nothing changes. */
export const RUN_TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);
/** Step states after which its log is complete. */
export const STEP_TERMINAL = new Set([
  'SUCCEEDED',
  'FAILED',
  'CANCELED',
  'SKIPPED',
  'CACHED'
]);
/** Most log text kept on screen. */
const MAX_LOG_CHARS = 200_000;

/** What the view needs from the application. */
export interface IRunViewOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  runId: string;
  /** Open another run (the new run of a retry). */
  openRun: (runId: string) => void;
  /** Open notebook JSON in JupyterLab (the executed copy of a step). */
  openNotebookContent?: (name: string, content: string) => void;
  /** Open a tracked run's detail (MLOps sidebar). */
  openTrackedRun?: (runId: string) => void;
  pollMs?: number;
}

/** A pipeline run in the main area. */
export class PipelineRunView extends ReactWidget {
  constructor(private _options: IRunViewOptions) {
    super();
    this.addClass('jp-mlops-PipelineRunView');
    this.id = `jupyter-mlops-pipeline-run-${_options.runId}`;
    this.title.label = _options.trans.__('Pipeline run');
    this.title.closable = true;
    void this._tick();
  }

  get runId(): string {
    return this._options.runId;
  }

  get run(): IPipelineRun | null {
    return this._run;
  }

  dispose(): void {
    if (this._timer !== undefined) {
      window.clearTimeout(this._timer);
    }
    super.dispose();
  }

  /** Show a step's log. */
  selectStep(name: string): void {
    if (name === this._step) {
      return;
    }
    this._step = name;
    this._log = '';
    this._logOffset = -1;
    this._logEnded = false;
    this.update();
    void this._readLog();
  }

  private async _tick(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    try {
      this._run = await this._options.client.getPipelineRun(this.runId);
      this._error = '';
      this.title.label = `${this._run.name} · ${this._run.status.toLowerCase()}`;
      if (!this._step && this._run.steps.length) {
        const running = this._run.steps.find(s => s.status === 'RUNNING');
        this._step = (running ?? this._run.steps[0]).name;
      }
      await this._readLog();
    } catch (error) {
      this._error = describeError(error);
    }
    if (this.isDisposed) {
      return;
    }
    this.update();
    const ended =
      this._run !== null &&
      RUN_TERMINAL.has(this._run.status) &&
      this._logEnded;
    if (!ended) {
      this._timer = window.setTimeout(
        () => void this._tick(),
        this._options.pollMs ?? 1000
      );
    } else {
      this._timer = undefined;
    }
  }

  private async _readLog(): Promise<void> {
    const step = this._step;
    if (!step || this._logEnded) {
      return;
    }
    try {
      const first = this._logOffset < 0;
      const chunk = await this._options.client.getStepLog(
        this.runId,
        step,
        first ? { tail: 64 * 1024 } : { offset: this._logOffset }
      );
      if (step !== this._step) {
        return; // another step was selected meanwhile
      }
      this._log = (this._log + chunk.text).slice(-MAX_LOG_CHARS);
      this._logOffset = chunk.nextOffset;
      this._logEnded = chunk.ended;
      this._logError = '';
    } catch (error) {
      this._logError = describeError(error);
    }
    this.update();
  }

  private async _cancel(): Promise<void> {
    this._busy = true;
    this.update();
    try {
      this._run = await this._options.client.cancelPipelineRun(this.runId);
    } catch (error) {
      await showErrorMessage(
        this._options.trans.__('Could not cancel the run'),
        describeError(error)
      );
    }
    this._busy = false;
    if (this._timer === undefined) {
      void this._tick();
    }
    this.update();
  }

  private async _openNotebook(step: string): Promise<void> {
    try {
      const content = await this._options.client.getStepNotebook(
        this.runId,
        step
      );
      this._options.openNotebookContent?.(
        `${this._run?.name ?? 'pipeline'}-${step}.ipynb`,
        content
      );
    } catch (error) {
      await showErrorMessage(
        this._options.trans.__('Could not open the executed notebook'),
        describeError(error)
      );
    }
  }

  private async _retry(): Promise<void> {
    this._busy = true;
    this.update();
    try {
      const run = await this._options.client.retryPipelineRun(this.runId);
      this._options.openRun(run.run_id);
    } catch (error) {
      await showErrorMessage(
        this._options.trans.__('Could not retry the run'),
        describeError(error)
      );
    }
    this._busy = false;
    this.update();
  }

  protected onAfterShow(): void {
    // Scroll the log to its end when the tab comes back.
    this.update();
  }

  protected onUpdateRequest(msg: any): void {
    super.onUpdateRequest(msg);
    const pre = this.node.querySelector('.jp-mlops-PipelineLog-text');
    if (pre) {
      pre.scrollTop = pre.scrollHeight;
    }
  }

  protected render(): JSX.Element {
    const trans = this._options.trans;
    const run = this._run;
    if (!run) {
      return (
        <div className="jp-mlops-PipelineRunView-body">
          {this._error ? (
            <div className="jp-mlops-Banner" role="alert">
              {this._error}
            </div>
          ) : (
            <div className="jp-mlops-Placeholder">{trans.__('Loading…')}</div>
          )}
        </div>
      );
    }
    const active = !RUN_TERMINAL.has(run.status);
    const layout = layoutDag(run.steps);
    const { nodeWidth, nodeHeight } = DEFAULT_METRICS;
    const stepByName = new Map(run.steps.map(s => [s.name, s]));
    const selected = this._step ? stepByName.get(this._step) : undefined;
    const pct = run.progress.total
      ? Math.round((100 * run.progress.done) / run.progress.total)
      : 0;
    return (
      <div className="jp-mlops-PipelineRunView-body" data-run-id={run.run_id}>
        <div className="jp-mlops-PipelineRunView-header">
          <span className="jp-mlops-PipelineRunView-name">{run.name}</span>
          <span
            className={`jp-mlops-PipelineStatus jp-mlops-status-${run.status}`}
            data-status={run.status}
          >
            {run.status}
          </span>
          <span className="jp-mlops-PipelineRunView-progress">
            {trans.__(
              '%1 of %2 steps done',
              run.progress.done,
              run.progress.total
            )}
          </span>
          <progress max={100} value={pct} aria-label={trans.__('Progress')} />
          <span className="jp-mlops-PipelineRunView-elapsed">
            {formatElapsed(run.duration_ms)}
          </span>
          {run.target && run.target !== 'local' ? (
            <span className="jp-mlops-PipelineRunView-target">
              {trans.__('on %1', run.target)}
            </span>
          ) : null}
          {run.external_url ? (
            <a
              className="jp-mlops-LinkButton jp-mlops-PipelineExternal"
              href={run.external_url}
              target="_blank"
              rel="noopener noreferrer"
            >
              {trans.__('Open in Kubeflow')}
            </a>
          ) : null}
          <span className="jp-mlops-PipelineRunView-spacer" />
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-PipelineCancel"
            disabled={!active || this._busy}
            onClick={() => void this._cancel()}
          >
            {trans.__('Cancel')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-PipelineRetry"
            disabled={active || this._busy}
            onClick={() => void this._retry()}
          >
            {trans.__('Retry')}
          </button>
        </div>
        {run.reason ? (
          <div className="jp-mlops-PipelineRunView-reason">{run.reason}</div>
        ) : null}
        {this._error ? (
          <div className="jp-mlops-Banner" role="alert">
            {this._error}
          </div>
        ) : null}
        <div className="jp-mlops-PipelineDag">
          <svg
            width={layout.width}
            height={layout.height}
            viewBox={`0 0 ${layout.width} ${layout.height}`}
            role="img"
            aria-label={trans.__('Pipeline steps')}
          >
            <defs>
              <marker
                id={`jp-mlops-arrow-${run.run_id}`}
                viewBox="0 0 10 10"
                refX="10"
                refY="5"
                markerWidth="6"
                markerHeight="6"
                orient="auto-start-reverse"
              >
                <path d="M0,0 L10,5 L0,10 z" className="jp-mlops-DagArrow" />
              </marker>
            </defs>
            {layout.edges.map(e => (
              <path
                key={`${e.from}->${e.to}`}
                d={e.d}
                className="jp-mlops-DagEdge"
                markerEnd={`url(#jp-mlops-arrow-${run.run_id})`}
              />
            ))}
            {layout.nodes.map(n => {
              const s = stepByName.get(n.name)!;
              return (
                <g
                  key={n.name}
                  className={`jp-mlops-DagNode jp-mlops-status-${s.status}${
                    n.name === this._step ? ' jp-mod-selected' : ''
                  }`}
                  data-step={n.name}
                  data-status={s.status}
                  transform={`translate(${n.x},${n.y})`}
                  onClick={() => this.selectStep(n.name)}
                  role="button"
                  tabIndex={0}
                  onKeyDown={e => {
                    if (e.key === 'Enter' || e.key === ' ') {
                      this.selectStep(n.name);
                    }
                  }}
                >
                  <title>
                    {`${n.name}: ${s.status}${s.error ? ` — ${s.error}` : ''}`}
                  </title>
                  <rect width={nodeWidth} height={nodeHeight} rx={5} ry={5} />
                  <text x={8} y={16} className="jp-mlops-DagNode-name">
                    {n.name.length > 20 ? `${n.name.slice(0, 19)}…` : n.name}
                  </text>
                  <text x={8} y={32} className="jp-mlops-DagNode-status">
                    {s.status.toLowerCase()}
                    {s.duration_ms ? ` · ${formatElapsed(s.duration_ms)}` : ''}
                    {s.attempt > 1 ? ` · #${s.attempt}` : ''}
                  </text>
                </g>
              );
            })}
          </svg>
        </div>
        <div className="jp-mlops-PipelineLog">
          <div className="jp-mlops-PipelineLog-header">
            <span>
              {selected
                ? trans.__('Log of %1', selected.name)
                : trans.__('Select a step to see its log')}
            </span>
            {selected ? (
              <span
                className={`jp-mlops-PipelineStatus jp-mlops-status-${selected.status}`}
              >
                {selected.status}
              </span>
            ) : null}
            {selected && !this._logEnded ? (
              <span className="jp-mlops-PipelineLog-follow">
                {trans.__('following…')}
              </span>
            ) : null}
            {selected?.has_notebook && this._options.openNotebookContent ? (
              <button
                type="button"
                className="jp-mlops-LinkButton jp-mlops-PipelineNotebook"
                onClick={() => void this._openNotebook(selected.name)}
              >
                {trans.__('Open executed notebook')}
              </button>
            ) : null}
            {selected?.tracking_run_id && this._options.openTrackedRun ? (
              <button
                type="button"
                className="jp-mlops-LinkButton"
                onClick={() =>
                  this._options.openTrackedRun!(selected.tracking_run_id!)
                }
              >
                {trans.__('Open tracked run')}
              </button>
            ) : null}
          </div>
          {selected?.error ? (
            <div className="jp-mlops-PipelineLog-error">{selected.error}</div>
          ) : null}
          {this._logError ? (
            <div className="jp-mlops-Banner" role="alert">
              {this._logError}
            </div>
          ) : null}
          <pre className="jp-mlops-PipelineLog-text" data-step={this._step}>
            {this._log}
          </pre>
        </div>
      </div>
    );
  }

  private _run: IPipelineRun | null = null;
  private _error = '';
  private _step = '';
  private _log = '';
  private _logOffset = -1;
  private _logEnded = false;
  private _logError = '';
  private _busy = false;
  private _timer: number | undefined = undefined;
}
