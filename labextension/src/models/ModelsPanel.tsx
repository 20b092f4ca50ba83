/**
 * The "Models" left sidebar: registered models with their staged versions
 * and aliases; clicking one opens its version table.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import {
  DeploymentsApi,
  describeError,
  IDeployment,
  IRegisteredModel,
  MLOpsClient
} from '../api';
import { DeploymentsSection } from '../deployments/DeploymentsSection';
import { MetricsHistory } from '../deployments/serving';
import { modelIcon } from '../pipelines/icon';
import {
  ErrorBanner,
  LoadingLine,
  PollingSidebar,
  SidebarHeader
} from '../sidebar';
import { modelSummary, sortModels } from './data';

/** Deployment states in which nothing is under way. */
const SETTLED = new Set(['READY', 'FAILED', 'STOPPED']);

/** What the panel needs from the application. */
export interface IModelsPanelOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  openModel: (name: string) => void;
  refreshMs: () => number;
  /** Deployments: the list below the models, with their metrics. */
  deployments?: {
    api: DeploymentsApi;
    history: MetricsHistory;
    open: (name: string) => void;
  };
}

/** The Models sidebar. */
export class ModelsPanel extends PollingSidebar {
  constructor(private _options: IModelsPanelOptions) {
    super({
      id: 'jupyter-mlops-models',
      className: 'jp-mlops-ModelsPanel',
      icon: modelIcon,
      caption: _options.trans.__('Models')
    });
  }

  protected async load(): Promise<void> {
    const [models] = await Promise.all([
      this._options.client.searchRegisteredModels(),
      this._loadDeployments()
    ]);
    this._models = sortModels(models);
  }

  /** The deployments and a metrics scrape of each (failures shown in the section). */
  private async _loadDeployments(): Promise<void> {
    const d = this._options.deployments;
    if (!d) {
      return;
    }
    try {
      this._deployments = (await d.api.list()).deployments;
      this._deploymentsError = '';
    } catch (error) {
      this._deploymentsError = describeError(error);
      return;
    }
    await Promise.all(
      this._deployments.map(async dep => {
        try {
          const scrape = await d.api.scrape(dep.name, d.history);
          if (scrape) {
            d.history.record(dep.name, scrape);
          }
        } catch {
          // no metrics (yet): the sparklines stay empty
        }
      })
    );
  }

  /** The settings' pace; every 2 s while a deployment rolls out, 5 s while any serves. */
  protected nextDelay(): number {
    const every = this._options.refreshMs();
    if (this._deployments.some(d => !SETTLED.has(String(d.status)))) {
      return Math.min(every || 2000, 2000);
    }
    // Serving ones: often enough for the sparklines to move.
    return this._deployments.length ? Math.min(every || 5000, 5000) : every;
  }

  protected render(): JSX.Element {
    const { trans, openModel } = this._options;
    return (
      <div className="jp-mlops-ModelsPanel-body">
        <SidebarHeader
          title={trans.__('Models')}
          refreshLabel={trans.__('Refresh')}
          refreshClass="jp-mlops-ModelsRefresh"
          onRefresh={() => void this.refresh()}
        />
        <ErrorBanner error={this.error} />
        <LoadingLine
          loaded={this.loaded}
          error={this.error}
          text={trans.__('Loading models…')}
        />
        <ul className="jp-mlops-ModelList">
          {this.loaded && !this._models.length ? (
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
        {this._options.deployments ? (
          <DeploymentsSection
            trans={trans}
            deployments={this._deployments}
            history={this._options.deployments.history}
            loaded={this.loaded}
            error={this._deploymentsError}
            open={this._options.deployments.open}
          />
        ) : null}
      </div>
    );
  }

  private _models: IRegisteredModel[] = [];
  private _deployments: IDeployment[] = [];
  private _deploymentsError = '';
}
