/**
 * The main-area view of one pipeline run: the DAG with steps coloured by
 * their live status, progress and elapsed time, the selected step's log
 * (followed while the step runs), and cancel / retry. The data and its
 * polling live in `PipelineRunModel`.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, IPipelineRun, MLOpsClient } from '../api';
import { confirmDanger } from '../dialogs';
import { pipelineIcon } from './icon';
import type { ArtifactSource } from '../artifactsDrive';
import { PipelineRunModel, stepsSucceeded } from './runModel';
import { layoutDag, DEFAULT_METRICS } from './dag';
import { formatElapsed, pipelineRunLabel } from './form';
import { FollowPending, LogPanel } from '../followView';

/** What the view needs from the application. */
export interface IRunViewOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  runId: string;
  /** Open another run (the new run of a retry). */
  openRun: (runId: string) => void;
  /** Open notebook JSON in JupyterLab (the executed copy of a step). */
  openNotebookContent?: (
    name: string,
    content: string,
    source?: ArtifactSource
  ) => void;
  /** Open a tracked run's detail (MLOps sidebar). */
  openTrackedRun?: (runId: string) => void;
  pollMs?: number;
}

/** A pipeline run in the main area: a React view of a `PipelineRunModel`. */
export class PipelineRunView extends ReactWidget {
  constructor(private _options: IRunViewOptions) {
    super();
    this.addClass('jp-mlops-PipelineRunView');
    this.id = `jupyter-mlops-pipeline-run-${_options.runId}`;
    this.title.label = _options.trans.__('Pipeline run');
    this.title.closable = true;
    this.title.icon = pipelineIcon;
    this.model = new PipelineRunModel({
      client: _options.client,
      runId: _options.runId,
      pollMs: _options.pollMs
    });
    this.model.changed.connect(() => {
      const run = this.model.run;
      if (run) {
        this.title.label = `${pipelineRunLabel(run)} · ${run.status.toLowerCase()}`;
        this.title.caption = `${run.name} · ${run.run_id}`;
      }
      this.update();
    });
    void this.model.start();
  }

  /** The model the view shows. */
  readonly model: PipelineRunModel;

  get runId(): string {
    return this._options.runId;
  }

  get run(): IPipelineRun | null {
    return this.model.run;
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.model.dispose();
    }
    super.dispose();
  }

  /** Show a step's log. */
  selectStep(name: string): void {
    this.model.selectStep(name);
  }

  private async _cancel(): Promise<void> {
    const trans = this._options.trans;
    const go = await confirmDanger(
      trans,
      trans.__('Cancel pipeline run'),
      trans.__(
        'Cancel "%1"? Running steps are stopped; steps that succeeded keep their outputs (Retry reuses them).',
        this.model.run?.name ?? this.runId
      ),
      trans.__('Cancel run')
    );
    if (!go) {
      return;
    }
    try {
      await this.model.cancel();
    } catch (error) {
      await showErrorMessage(
        this._options.trans.__('Could not cancel the run'),
        describeError(error)
      );
    }
  }

  private async _openNotebook(step: string): Promise<void> {
    try {
      const content = await this.model.stepNotebook(step);
      const name = `${this.model.run?.name ?? 'pipeline'}-${step}.ipynb`;
      this._options.openNotebookContent?.(name, content, {
        kind: 'pipeline',
        runId: this.model.runId,
        step,
        name
      });
    } catch (error) {
      await showErrorMessage(
        this._options.trans.__('Could not open the executed notebook'),
        describeError(error)
      );
    }
  }

  private async _retry(): Promise<void> {
    try {
      const run = await this.model.retry();
      this._options.openRun(run.run_id);
    } catch (error) {
      await showErrorMessage(
        this._options.trans.__('Could not retry the run'),
        describeError(error)
      );
    }
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
    const model = this.model;
    const run = model.run;
    if (!run) {
      return (
        <FollowPending
          className="jp-mlops-PipelineRunView-body"
          error={model.error}
          loading={trans.__('Loading…')}
        />
      );
    }
    const active = model.active;
    const layout = layoutDag(run.steps);
    const { nodeWidth, nodeHeight } = DEFAULT_METRICS;
    const stepByName = new Map(run.steps.map(s => [s.name, s]));
    const selected = model.step ? stepByName.get(model.step) : undefined;
    const finished = active || run.status === 'SUCCEEDED';
    const pct = run.progress.total
      ? Math.round(
          (100 * (finished ? run.progress.done : stepsSucceeded(run))) /
            run.progress.total
        )
      : 0;
    return (
      <div className="jp-mlops-PipelineRunView-body" data-run-id={run.run_id}>
        <div className="jp-mlops-PipelineRunView-header">
          <span className="jp-mlops-PipelineRunView-name">
            {pipelineRunLabel(run)}
          </span>
          {run.run_name && run.run_name !== run.name ? (
            <span
              className="jp-mlops-PipelineRunView-pipeline"
              title={trans.__('Pipeline')}
            >
              {run.name}
            </span>
          ) : null}
          <span
            className={`jp-mlops-PipelineStatus jp-mlops-status-${run.status}`}
            data-status={run.status}
          >
            {run.status}
          </span>
          <span className="jp-mlops-PipelineRunView-progress">
            {run.status === 'SUCCEEDED' || active
              ? trans.__(
                  '%1 of %2 steps done',
                  run.progress.done,
                  run.progress.total
                )
              : trans.__(
                  '%1 of %2 steps succeeded',
                  stepsSucceeded(run),
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
            disabled={!active || model.busy}
            onClick={() => void this._cancel()}
          >
            {trans.__('Cancel')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-PipelineRetry"
            disabled={active || model.busy}
            onClick={() => void this._retry()}
          >
            {trans.__('Retry')}
          </button>
        </div>
        {run.reason ? (
          <div className="jp-mlops-PipelineRunView-reason">{run.reason}</div>
        ) : null}
        {Object.keys(run.parameters ?? {}).length ? (
          <dl className="jp-mlops-PipelineRunView-params">
            <dt>{trans.__('Parameters')}</dt>
            {Object.entries(run.parameters ?? {}).map(([key, value]) => (
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
                    n.name === model.step ? ' jp-mod-selected' : ''
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
        <LogPanel
          title={
            selected
              ? trans.__('Log of %1', selected.name)
              : trans.__('Select a step to see its log')
          }
          status={selected?.status}
          following={
            selected && !model.logEnded ? trans.__('following…') : undefined
          }
          error={selected?.error}
          logError={model.logError}
          log={model.log}
          textClass="jp-mlops-PipelineLog-text"
          textData={{ step: model.step }}
        >
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
        </LogPanel>
      </div>
    );
  }
}
