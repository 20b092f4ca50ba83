/**
 * The "Models" left sidebar: registered models with their staged versions
 * and aliases; clicking one opens its version table.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError, IRegisteredModel, MLOpsClient } from '../api';
import { modelIcon } from '../pipelines/icon';
import { modelSummary, sortModels } from './data';

/** What the panel needs from the application. */
export interface IModelsPanelOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  openModel: (name: string) => void;
  refreshMs: () => number;
}

/** The Models sidebar. */
export class ModelsPanel extends ReactWidget {
  constructor(private _options: IModelsPanelOptions) {
    super();
    this.id = 'jupyter-mlops-models';
    this.addClass('jp-mlops-ModelsPanel');
    this.title.icon = modelIcon;
    this.title.caption = _options.trans.__('Models');
  }

  async refresh(): Promise<void> {
    try {
      this._models = sortModels(
        await this._options.client.searchRegisteredModels()
      );
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
      const every = this._options.refreshMs();
      if (!this.isDisposed && this.isVisible && every > 0) {
        this._schedule(every);
      }
    }, delay);
  }

  protected render(): JSX.Element {
    const { trans, openModel } = this._options;
    return (
      <div className="jp-mlops-ModelsPanel-body">
        <div className="jp-mlops-PipelinesPanel-toolbar">
          <h2 className="jp-mlops-RunsPanel-heading">{trans.__('Models')}</h2>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-ModelsRefresh"
            onClick={() => void this.refresh()}
          >
            {trans.__('Refresh')}
          </button>
        </div>
        {this._error ? (
          <div className="jp-mlops-Banner" role="alert">
            {this._error}
          </div>
        ) : null}
        <ul className="jp-mlops-ModelList">
          {this._loaded && !this._models.length ? (
            <li className="jp-mlops-PipelinesPanel-empty">
              {trans.__(
                'No registered models. Register one from a run’s artifacts (a folder with an MLmodel file).'
              )}
            </li>
          ) : null}
          {this._models.map(m => {
            const s = modelSummary(m);
            return (
              <li
                key={m.name}
                className="jp-mlops-ModelItem"
                data-model={m.name}
                role="button"
                tabIndex={0}
                onClick={() => openModel(m.name)}
                onKeyDown={e => {
                  if (e.key === 'Enter') {
                    openModel(m.name);
                  }
                }}
              >
                <span className="jp-mlops-PipelineRunItem-name">{s.name}</span>
                {s.latest ? (
                  <span className="jp-mlops-Muted">v{s.latest}</span>
                ) : null}
                <span className="jp-mlops-PipelineRunItem-meta">
                  {s.stages.map(st => (
                    <span
                      key={st.stage}
                      className="jp-mlops-StageBadge"
                      data-stage={st.stage}
                    >
                      {st.stage} v{st.version}
                    </span>
                  ))}{' '}
                  {s.aliases.map(a => (
                    <span key={a} className="jp-mlops-AliasBadge">
                      @{a}
                    </span>
                  ))}
                </span>
              </li>
            );
          })}
        </ul>
      </div>
    );
  }

  private _models: IRegisteredModel[] = [];
  private _error = '';
  private _loaded = false;
  private _timer: number | undefined = undefined;
}
