/**
 * One deployment in the main area: status (and why), URL, the versions it
 * serves with their traffic split, request-rate and latency sparklines,
 * rolling to another version (optionally as a canary), rollback, delete
 * (confirmed), the history of served versions, its logs, and a **Try it**
 * box that sends a request through the server and shows the answer (errors
 * inline). It polls while shown.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import React from 'react';

import {
  DeploymentsApi,
  describeError,
  IDeployment,
  IInvokeResponse,
  MLOpsClient
} from '../api';
import { confirmDanger } from '../dialogs';
import { modelIcon } from '../pipelines/icon';
import { CopyableUrl } from './DeploymentsSection';
import {
  describeSplit,
  MetricsHistory,
  modelUri,
  trafficSplit,
  tryItExample
} from './serving';
import { ServingSparklines } from './Sparkline';

/** What the view needs from the application. */
export interface IDeploymentViewOptions {
  api: DeploymentsApi;
  client: MLOpsClient;
  trans: TranslationBundle;
  name: string;
  history: MetricsHistory;
  /** Called after a change (the sidebar refreshes); `deleted` when it is gone. */
  changed: (deleted?: boolean) => void;
  pollMs?: number;
}

/** Deployment states after which a rollout has settled. */
const SETTLED = new Set(['READY', 'FAILED', 'STOPPED']);

/** A deployment in the main area. */
export class DeploymentView extends ReactWidget {
  constructor(private _options: IDeploymentViewOptions) {
    super();
    this.addClass('jp-mlops-DeploymentView');
    this.id = `jupyter-mlops-deployment-${_options.name}`;
    this.title.label = _options.name;
    this.title.caption = _options.trans.__('Deployment %1', _options.name);
    this.title.closable = true;
    this.title.icon = modelIcon;
    this._poll = new Poll({
      auto: true,
      factory: () => this._tick(),
      frequency: { interval: _options.pollMs ?? 2000, backoff: false },
      name: `jupyter-mlops:deployment-${_options.name}`,
      // Not while the tab is in the background (or the page hidden).
      standby: () => (this.isVisible ? 'when-hidden' : true)
    });
  }

  get deploymentName(): string {
    return this._options.name;
  }

  /** Read it again now. */
  refresh(): void {
    void this._poll.refresh();
  }

  protected onAfterShow(): void {
    this.refresh();
  }

  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  private async _tick(): Promise<void> {
    const { api, name, history } = this._options;
    if (this._deleted) {
      return;
    }
    try {
      this._dep = await api.get(name);
      this._error = '';
    } catch (error) {
      this._error = describeError(error);
      this.update();
      return;
    }
    try {
      const scrape = await api.scrape(name, history);
      if (scrape) {
        history.record(name, scrape);
      }
      this._metricsError = history.available
        ? ''
        : this._options.trans.__('this server has no metrics route');
    } catch (error) {
      this._metricsError = describeError(error);
    }
    await this._loadModelInfo();
    this.update();
  }

  /** The model's versions (to roll to) and the Try it box's first text, once. */
  private async _loadModelInfo(): Promise<void> {
    const dep = this._dep;
    if (!dep?.model_name || this._modelLoaded === dep.model_name) {
      return;
    }
    this._modelLoaded = dep.model_name;
    const { api, client } = this._options;
    try {
      const versions = await client.searchModelVersions(dep.model_name);
      this._versions = versions
        .map(v => String(v.version))
        .sort((a, b) => Number(b) - Number(a));
    } catch {
      this._versions = [];
    }
    if (this._request === null && dep.model_version) {
      const file = (path: string) =>
        api
          .modelFile(dep.model_name!, String(dep.model_version), path)
          .catch(() => null);
      // The signature only when there is no example (each missing file is a 404).
      const example = await file('serving_input_example.json');
      const mlmodel = example ? null : await file('MLmodel');
      if (this._request === null) {
        this._request = tryItExample(example, mlmodel);
      }
    }
  }

  private async _act(
    what: string,
    work: () => Promise<unknown>
  ): Promise<void> {
    this._busy = true;
    this.update();
    try {
      await work();
    } catch (error) {
      await showErrorMessage(what, describeError(error));
    } finally {
      this._busy = false;
    }
    this._options.changed();
    this.refresh();
  }

  private _roll(): void {
    const { api, trans, name } = this._options;
    const dep = this._dep;
    const version = this._rollTo || this._versions[0];
    if (!dep?.model_name || !version) {
      return;
    }
    const canary = Number(this._canary || '0');
    void this._act(trans.__('Could not roll the deployment'), () =>
      api.update(name, {
        model_uri: modelUri(dep.model_name!, { version }),
        canary_percent: canary > 0 && canary < 100 ? canary : undefined
      })
    );
  }

  private async _delete(): Promise<void> {
    const { api, trans, name } = this._options;
    const go = await confirmDanger(
      trans,
      trans.__('Delete deployment'),
      trans.__(
        'Delete the deployment "%1"? Its processes stop and its URL stops answering.',
        name
      ),
      trans.__('Delete')
    );
    if (!go) {
      return;
    }
    try {
      await api.remove(name);
    } catch (error) {
      await showErrorMessage(
        trans.__('Could not delete the deployment'),
        describeError(error)
      );
      return;
    }
    this._deleted = true;
    this._options.history.forget(name);
    this._options.changed(true);
    this.dispose();
  }

  private async _send(): Promise<void> {
    const { api, name } = this._options;
    let body: unknown;
    try {
      body = JSON.parse(this._request ?? '');
    } catch (error) {
      this._answer = null;
      this._answerError = `The request is not valid JSON: ${(error as Error).message}`;
      this.update();
      return;
    }
    this._sending = true;
    this._answerError = '';
    this.update();
    try {
      this._answer = await api.invoke(name, body, this._protocol);
    } catch (error) {
      this._answer = null;
      this._answerError = describeError(error);
    }
    this._sending = false;
    this.update();
  }

  private async _showLogs(): Promise<void> {
    try {
      this._logs = await this._options.api.logs(this._options.name, 32768);
    } catch (error) {
      this._logs = describeError(error);
    }
    this.update();
  }

  /** The answer's body, pretty when it is JSON. */
  private _answerText(answer: IInvokeResponse): string {
    try {
      return JSON.stringify(JSON.parse(answer.body), null, 2);
    } catch {
      return answer.body;
    }
  }

  private _renderTryIt(): JSX.Element {
    const trans = this._options.trans;
    const answer = this._answer;
    const failed =
      !!this._answerError || (answer !== null && answer.status >= 400);
    return (
      <section className="jp-mlops-TryIt">
        <h3>{trans.__('Try it')}</h3>
        <div className="jp-mlops-TryIt-controls">
          <select
            className="jp-mod-styled"
            name="protocol"
            aria-label={trans.__('Protocol')}
            value={this._protocol}
            onChange={e => {
              this._protocol = e.target.value === 'v2' ? 'v2' : 'mlflow';
              this.update();
            }}
          >
            <option value="mlflow">POST /invocations</option>
            <option value="v2">
              {`POST /v2/models/${this._options.name}/infer`}
            </option>
          </select>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-TryIt-send"
            disabled={this._sending || this._request === null}
            onClick={() => void this._send()}
          >
            {this._sending ? trans.__('Sending…') : trans.__('Send')}
          </button>
        </div>
        <textarea
          className="jp-mod-styled jp-mlops-TryIt-request"
          aria-label={trans.__('Request body (JSON)')}
          rows={8}
          spellCheck={false}
          value={this._request ?? ''}
          placeholder={trans.__('Loading the model’s input example…')}
          onChange={e => {
            this._request = e.target.value;
            this.update();
          }}
        />
        {this._answerError || answer ? (
          <div
            className={`jp-mlops-TryIt-response${failed ? ' jp-mod-error' : ''}`}
            role={failed ? 'alert' : undefined}
            data-status={answer?.status ?? ''}
          >
            {answer ? (
              <div className="jp-mlops-TryIt-status">
                {trans.__('HTTP %1', answer.status)}
              </div>
            ) : null}
            <pre className="jp-mlops-TryIt-body">
              {this._answerError || (answer ? this._answerText(answer) : '')}
            </pre>
          </div>
        ) : null}
      </section>
    );
  }

  protected render(): JSX.Element {
    const { trans, name, history } = this._options;
    const dep = this._dep;
    if (!dep) {
      return (
        <div className="jp-mlops-DeploymentView-body">
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
    const split = trafficSplit(dep, history.last(name));
    const settled = SETTLED.has(String(dep.status));
    const served = (dep.history ?? []).length;
    return (
      <div
        className="jp-mlops-DeploymentView-body"
        data-deployment={name}
        data-status={dep.status}
      >
        <div className="jp-mlops-PipelineRunView-header">
          <span className="jp-mlops-PipelineRunView-name">{name}</span>
          <span
            className={`jp-mlops-PipelineStatus jp-mlops-status-${dep.status}`}
            data-status={dep.status}
          >
            {dep.status}
          </span>
          <span className="jp-mlops-Muted">
            {trans.__('on %1 · %2 replica(s)', dep.target, dep.replicas)}
          </span>
          <span className="jp-mlops-PipelineRunView-spacer" />
          {split.length > 1 ? (
            <button
              type="button"
              className="jp-mlops-Button jp-mod-styled jp-mlops-DeploymentPromote"
              disabled={this._busy}
              title={trans.__('Give the canary all the traffic')}
              onClick={() =>
                void this._act(trans.__('Could not promote the canary'), () =>
                  this._options.api.promote(name)
                )
              }
            >
              {trans.__('Promote')}
            </button>
          ) : null}
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-DeploymentRollback"
            disabled={this._busy || !settled || served < 2}
            title={trans.__('Serve the previously served version again')}
            onClick={() =>
              void this._act(trans.__('Could not roll back'), () =>
                this._options.api.rollback(name)
              )
            }
          >
            {trans.__('Rollback')}
          </button>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-DeploymentDelete"
            disabled={this._busy}
            onClick={() => void this._delete()}
          >
            {trans.__('Delete')}
          </button>
        </div>
        {dep.reason ? (
          <div className="jp-mlops-PipelineRunView-reason">{dep.reason}</div>
        ) : null}
        {this._error ? (
          <div className="jp-mlops-Banner" role="alert">
            {this._error}
          </div>
        ) : null}
        <dl className="jp-mlops-DeploymentView-facts">
          <dt>{trans.__('URL')}</dt>
          <dd>{dep.url ? <CopyableUrl url={dep.url} trans={trans} /> : '–'}</dd>
          <dt>{trans.__('Model')}</dt>
          <dd>
            <code>{dep.model_uri}</code>
            {dep.follow_alias ? ` · ${trans.__('follows the alias')}` : ''}
          </dd>
          <dt>{trans.__('Serving')}</dt>
          <dd className="jp-mlops-DeploymentView-split">
            {describeSplit(split) || '–'}
          </dd>
          <dt>{trans.__('Traffic')}</dt>
          <dd>
            <ServingSparklines
              points={history.points(name)}
              width={140}
              height={28}
            />
            {this._metricsError ? (
              <span className="jp-mlops-Muted" title={this._metricsError}>
                {' '}
                {trans.__('(no metrics: %1)', this._metricsError)}
              </span>
            ) : null}
          </dd>
        </dl>
        {split.length > 1 ? (
          <div
            className="jp-mlops-TrafficBar"
            aria-label={trans.__('Traffic split')}
          >
            {split.map(s => (
              <span
                key={s.version}
                className="jp-mlops-TrafficBar-part"
                data-version={s.version}
                style={{ flexGrow: s.percent }}
              >
                v{s.version} {Math.round(s.percent)}%
              </span>
            ))}
          </div>
        ) : null}
        <div className="jp-mlops-DeploymentView-roll">
          <label>
            {trans.__('Roll to')}{' '}
            <select
              className="jp-mod-styled"
              name="version"
              value={this._rollTo || this._versions[0] || ''}
              onChange={e => {
                this._rollTo = e.target.value;
                this.update();
              }}
            >
              {this._versions.map(v => (
                <option key={v} value={v}>
                  {`v${v}`}
                  {v === String(dep.model_version)
                    ? trans.__(' (serving)')
                    : ''}
                </option>
              ))}
            </select>
          </label>
          <label>
            {trans.__('canary %')}{' '}
            <input
              className="jp-mod-styled jp-mlops-DeploymentView-canary"
              name="canary"
              type="number"
              min={0}
              max={100}
              placeholder="0"
              value={this._canary}
              onChange={e => {
                this._canary = e.target.value;
                this.update();
              }}
            />
          </label>
          <button
            type="button"
            className="jp-mlops-Button jp-mod-styled jp-mlops-DeploymentRoll"
            disabled={this._busy || !settled || !this._versions.length}
            onClick={() => this._roll()}
          >
            {trans.__('Roll out')}
          </button>
        </div>
        {this._renderTryIt()}
        <section>
          <h3>{trans.__('History')}</h3>
          <table className="jp-mlops-VersionTable jp-mlops-DeploymentHistory">
            <thead>
              <tr>
                <th>#</th>
                <th>{trans.__('Action')}</th>
                <th>{trans.__('Version')}</th>
                <th>{trans.__('From')}</th>
                <th>{trans.__('Until')}</th>
              </tr>
            </thead>
            <tbody>
              {[...(dep.history ?? [])].reverse().map(h => (
                <tr key={h.seq} data-version={h.model_version ?? ''}>
                  <td>{h.seq}</td>
                  <td>{h.action}</td>
                  <td>
                    {h.model_version ? `v${h.model_version}` : h.model_uri}
                  </td>
                  <td>
                    {h.start_time
                      ? new Date(h.start_time).toLocaleString()
                      : ''}
                  </td>
                  <td>
                    {h.end_time
                      ? new Date(h.end_time).toLocaleString()
                      : trans.__('serving')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section>
          <h3>
            {trans.__('Logs')}{' '}
            <button
              type="button"
              className="jp-mlops-LinkButton jp-mlops-DeploymentLogs"
              onClick={() => void this._showLogs()}
            >
              {this._logs === null ? trans.__('Show') : trans.__('Reload')}
            </button>
          </h3>
          {this._logs !== null ? (
            <pre className="jp-mlops-JobLog-text jp-mlops-DeploymentView-logs">
              {this._logs}
            </pre>
          ) : null}
        </section>
      </div>
    );
  }

  private _poll: Poll;
  private _dep: IDeployment | null = null;
  private _error = '';
  private _metricsError = '';
  private _busy = false;
  private _deleted = false;
  private _versions: string[] = [];
  private _modelLoaded = '';
  private _rollTo = '';
  private _canary = '';
  private _request: string | null = null;
  private _protocol: 'mlflow' | 'v2' = 'mlflow';
  private _sending = false;
  private _answer: IInvokeResponse | null = null;
  private _answerError = '';
  private _logs: string | null = null;
}
