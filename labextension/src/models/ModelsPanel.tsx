/**
 * The "Models" left sidebar: registered models with their staged versions
 * and aliases; clicking one opens its version table.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IRegisteredModel, MLOpsClient } from '../api';
import { modelIcon } from '../pipelines/icon';
import {
  ErrorBanner,
  LoadingLine,
  PollingSidebar,
  SidebarHeader
} from '../sidebar';
import { modelSummary, sortModels } from './data';

/** What the panel needs from the application. */
export interface IModelsPanelOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  openModel: (name: string) => void;
  refreshMs: () => number;
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
    this._models = sortModels(
      await this._options.client.searchRegisteredModels()
    );
  }

  protected nextDelay(): number {
    return this._options.refreshMs();
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
      </div>
    );
  }

  private _models: IRegisteredModel[] = [];
}
