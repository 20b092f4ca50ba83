/**
 * The "Pipelines" left sidebar: the workspace's `*.pipeline.yaml` files (each
 * with a run button) and the latest pipeline runs (click to open).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, IPipelineRun, MLOpsClient } from '../api';
import { pipelineIcon } from './icon';
import { formatElapsed } from './form';
import { RUN_TERMINAL } from './RunView';

/** What the panel needs from the application. */
export interface IPipelinesPanelOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  /** Open the submit dialog for a file. */
  submit: (path: string) => void;
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
      const [files, runs] = await Promise.all([
        client.listPipelineFiles(),
        client.listPipelineRuns({ max_results: 50 })
      ]);
      this._files = files;
      this._runs = runs;
      this._error = '';
    } catch (error) {
      this._error = describeError(error);
    }
    this._loaded = true;
    this.update();
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
    const { trans, submit, openRun, openFile } = this._options;
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
            </li>
          ))}
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

  private _files: string[] = [];
  private _runs: IPipelineRun[] = [];
  private _error = '';
  private _loaded = false;
  private _timer: number | undefined = undefined;
}
