/**
 * One registered model in the main area: its versions with stage badges and
 * aliases, stage transitions (confirmed first), alias editing, and links to
 * each version's run and source notebook (the lineage endpoint).
 */
import {
  Dialog,
  InputDialog,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React from 'react';

import {
  describeError,
  IModelLineage,
  IRegisteredModel,
  MLOpsClient,
  quoteFilterValue
} from '../api';
import { modelUri } from '../deployments/serving';
import { modelIcon } from '../pipelines/icon';
import { aliasProblem, IVersionRow, Stage, STAGES, versionRows } from './data';

/** What the view needs from the application. */
export interface IModelViewOptions {
  client: MLOpsClient;
  trans: TranslationBundle;
  name: string;
  openRun: (runId: string) => void;
  openPath: (path: string) => void;
  /** Called after a change (the sidebar refreshes). */
  changed: () => void;
  /** "Deploy…" a model URI (a version or an alias); absent: no deploy buttons. */
  deploy?: (modelUri: string) => void;
  /** Open a deployment's view. */
  openDeployment?: (name: string) => void;
}

/** A confirmation body with an "archive the others" checkbox. */
class TransitionBody extends Widget implements Dialog.IBodyWidget<boolean> {
  constructor(text: string, archiveLabel: string | null) {
    super();
    const p = document.createElement('p');
    p.textContent = text;
    this.node.appendChild(p);
    if (archiveLabel) {
      const label = document.createElement('label');
      label.className = 'jp-mlops-TransitionArchive';
      this._box.type = 'checkbox';
      this._box.name = 'archive_existing_versions';
      label.appendChild(this._box);
      label.appendChild(document.createTextNode(` ${archiveLabel}`));
      this.node.appendChild(label);
    }
  }

  getValue(): boolean {
    return this._box.checked;
  }

  private _box = document.createElement('input');
}

/** A registered model's versions. */
export class ModelView extends ReactWidget {
  constructor(private _options: IModelViewOptions) {
    super();
    this.addClass('jp-mlops-ModelsView');
    this.id = `jupyter-mlops-model-${encodeURIComponent(_options.name)}`;
    this.title.label = _options.name;
    this.title.caption = _options.trans.__('Model %1', _options.name);
    this.title.closable = true;
    this.title.icon = modelIcon;
    void this.refresh();
  }

  get modelName(): string {
    return this._options.name;
  }

  async refresh(): Promise<void> {
    const { client, name } = this._options;
    try {
      const [models, versions] = await Promise.all([
        client.searchRegisteredModels(`name = ${quoteFilterValue(name)}`),
        client.searchModelVersions(name)
      ]);
      this._model = models.find(m => m.name === name) ?? null;
      this._rows = versionRows(versions, this._model);
      this._error = '';
      void this._loadLineage();
    } catch (error) {
      this._error = describeError(error);
    }
    this._loaded = true;
    this.update();
  }

  private async _loadLineage(): Promise<void> {
    const { client, name } = this._options;
    await Promise.all(
      this._rows.slice(0, 50).map(async row => {
        if (this._lineage.has(row.version)) {
          return;
        }
        try {
          this._lineage.set(
            row.version,
            await client.getModelLineage(name, row.version)
          );
        } catch {
          this._lineage.set(row.version, null);
        }
      })
    );
    this.update();
  }

  private async _act(work: () => Promise<void>, what: string): Promise<void> {
    try {
      await work();
    } catch (error) {
      await showErrorMessage(what, describeError(error));
    }
    await this.refresh();
    this._options.changed();
  }

  private async _transition(row: IVersionRow, stage: Stage): Promise<void> {
    const { trans, client, name } = this._options;
    if (stage === row.stage) {
      return;
    }
    const canArchive = stage === 'Staging' || stage === 'Production';
    const body = new TransitionBody(
      trans.__(
        'Move version %1 of %2 from %3 to %4?',
        row.version,
        name,
        row.stage,
        stage
      ),
      canArchive
        ? trans.__('Archive the other versions now in %1', stage)
        : null
    );
    const result = await showDialog({
      title: trans.__('Change stage'),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Move to %1', stage) })
      ]
    });
    if (!result.button.accept) {
      this.update(); // put the select back
      return;
    }
    const archive = !!result.value && canArchive;
    await this._act(async () => {
      await client.transitionModelVersionStage(
        name,
        row.version,
        stage,
        archive
      );
    }, trans.__('Could not change the stage'));
  }

  private async _addAlias(row: IVersionRow): Promise<void> {
    const { trans, client, name } = this._options;
    const answer = await InputDialog.getText({
      title: trans.__('Alias for version %1', row.version),
      placeholder: 'champion',
      okLabel: trans.__('Set alias')
    });
    if (!answer.button.accept || !answer.value) {
      return;
    }
    const alias = answer.value.trim();
    const problem = aliasProblem(alias);
    if (problem) {
      await showErrorMessage(trans.__('Invalid alias'), problem);
      return;
    }
    await this._act(
      () => client.setModelAlias(name, alias, row.version),
      trans.__('Could not set the alias')
    );
  }

  private async _removeAlias(alias: string): Promise<void> {
    const { trans, client, name } = this._options;
    await this._act(
      () => client.deleteModelAlias(name, alias),
      trans.__('Could not remove the alias')
    );
  }

  protected render(): JSX.Element {
    const { trans, name, openRun, openPath, deploy, openDeployment } =
      this._options;
    return (
      <div className="jp-mlops-ModelsView-body" data-model={name}>
        <h2>{name}</h2>
        {this._model?.description ? <p>{this._model.description}</p> : null}
        {this._error ? (
          <div className="jp-mlops-Banner" role="alert">
            {this._error}
          </div>
        ) : null}
        {this._loaded && !this._rows.length && !this._error ? (
          <p className="jp-mlops-Muted">{trans.__('No versions.')}</p>
        ) : null}
        <table className="jp-mlops-VersionTable">
          <thead>
            <tr>
              <th>{trans.__('Version')}</th>
              <th>{trans.__('Stage')}</th>
              <th>{trans.__('Aliases')}</th>
              <th>{trans.__('Created')}</th>
              <th>{trans.__('Run')}</th>
              <th>{trans.__('Source')}</th>
              {deploy ? <th>{trans.__('Serving')}</th> : null}
            </tr>
          </thead>
          <tbody>
            {this._rows.map(row => {
              const lineage = this._lineage.get(row.version);
              const notebook = lineage?.source?.notebook;
              return (
                <tr
                  key={row.version}
                  className="jp-mlops-VersionRow"
                  data-version={row.version}
                  data-stage={row.stage}
                >
                  <td>v{row.version}</td>
                  <td>
                    <span
                      className="jp-mlops-StageBadge"
                      data-stage={row.stage}
                    >
                      {row.stage}
                    </span>{' '}
                    <select
                      className="jp-mod-styled jp-mlops-StageSelect"
                      aria-label={trans.__('Stage of version %1', row.version)}
                      value={row.stage}
                      onChange={e =>
                        void this._transition(row, e.target.value as Stage)
                      }
                    >
                      {STAGES.map(s => (
                        <option key={s} value={s}>
                          {s}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>
                    {row.aliases.map(a => (
                      <span
                        key={a}
                        className="jp-mlops-AliasBadge"
                        data-alias={a}
                      >
                        @{a}{' '}
                        {deploy ? (
                          <button
                            type="button"
                            className="jp-mlops-LinkButton jp-mlops-AliasDeploy"
                            title={trans.__('Deploy %1@%2', name, a)}
                            onClick={() => deploy(modelUri(name, { alias: a }))}
                          >
                            {trans.__('Deploy…')}
                          </button>
                        ) : null}
                        <button
                          type="button"
                          className="jp-mlops-LinkButton jp-mlops-AliasRemove"
                          title={trans.__('Remove alias %1', a)}
                          aria-label={trans.__('Remove alias %1', a)}
                          onClick={() => void this._removeAlias(a)}
                        >
                          ×
                        </button>
                      </span>
                    ))}
                    <button
                      type="button"
                      className="jp-mlops-LinkButton jp-mlops-AliasAdd"
                      onClick={() => void this._addAlias(row)}
                    >
                      {trans.__('+ alias')}
                    </button>
                  </td>
                  <td>
                    {row.created ? new Date(row.created).toLocaleString() : ''}
                  </td>
                  <td>
                    {row.runId ? (
                      <button
                        type="button"
                        className="jp-mlops-LinkButton jp-mlops-VersionRun"
                        title={row.source}
                        onClick={() => openRun(row.runId)}
                      >
                        {lineage?.run?.run_name || row.runId.slice(0, 8)}
                      </button>
                    ) : (
                      <span className="jp-mlops-Muted">{row.source}</span>
                    )}
                  </td>
                  <td>
                    {notebook ? (
                      <button
                        type="button"
                        className="jp-mlops-LinkButton jp-mlops-VersionNotebook"
                        onClick={() => openPath(notebook)}
                      >
                        {notebook}
                      </button>
                    ) : (
                      <span className="jp-mlops-Muted">
                        {lineage?.source?.name ?? ''}
                      </span>
                    )}
                  </td>
                  {deploy ? (
                    <td className="jp-mlops-VersionServing">
                      {row.image ? (
                        <div
                          className="jp-mlops-VersionImage"
                          title={trans.__('Image built for this version')}
                        >
                          <code>{row.image}</code>
                        </div>
                      ) : null}
                      {row.deployments.map(d => (
                        <button
                          key={d}
                          type="button"
                          className="jp-mlops-LinkButton jp-mlops-VersionDeployment"
                          data-deployment={d}
                          title={trans.__('Open deployment %1', d)}
                          onClick={() => openDeployment?.(d)}
                        >
                          {trans.__('▶ %1', d)}
                        </button>
                      ))}
                      <button
                        type="button"
                        className="jp-mlops-Button jp-mod-styled jp-mlops-VersionDeploy"
                        onClick={() =>
                          deploy(modelUri(name, { version: row.version }))
                        }
                      >
                        {trans.__('Deploy…')}
                      </button>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    );
  }

  private _model: IRegisteredModel | null = null;
  private _rows: IVersionRow[] = [];
  private _lineage = new Map<string, IModelLineage | null>();
  private _error = '';
  private _loaded = false;
}
