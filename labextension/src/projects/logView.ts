/**
 * `ProjectLogView`: a project run's output in the main area, followed with a
 * `@lumino/polling` `Poll` until the run has ended, with a link to the
 * tracked run in the runs panel.
 */
import { Poll } from '@lumino/polling';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { describeError, MLOpsClient } from '../api';

/** Most text kept in the view. */
const MAX_CHARS = 200_000;

export class ProjectLogView extends Widget {
  constructor(private _options: ProjectLogView.IOptions) {
    super();
    const { trans, runId } = _options;
    this.id = `jupyter-mlops-project-log-${runId}`;
    this.addClass('jp-mlops-ProjectLog');
    this.title.label = trans.__('Project run %1', runId.slice(0, 8));
    this.title.closable = true;
    const header = document.createElement('div');
    header.className = 'jp-mlops-ProjectLog-header';
    this._status = document.createElement('span');
    this._status.className = 'jp-mlops-ProjectLog-status';
    this._status.textContent = trans.__('running');
    const open = document.createElement('button');
    open.className = 'jp-mod-styled jp-mod-accept';
    open.textContent = trans.__('Open run');
    open.onclick = () => _options.openRun(runId);
    header.append(this._status, open);
    this._pre = document.createElement('pre');
    this._pre.className = 'jp-mlops-ProjectLog-text';
    this.node.append(header, this._pre);
    this._poll = new Poll({
      factory: () => this._read(),
      frequency: { interval: _options.pollMs ?? 1000, backoff: false },
      name: `jupyter-mlops:project-log:${runId}`
    });
  }

  get runId(): string {
    return this._options.runId;
  }

  /** The text shown so far. */
  get text(): string {
    return this._pre.textContent ?? '';
  }

  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  private async _read(): Promise<void> {
    const { client, runId, trans } = this._options;
    try {
      const part = await client.getProjectLog(runId, this._offset);
      this._offset = part.nextOffset;
      if (part.text) {
        const text = (this._pre.textContent ?? '') + part.text;
        this._pre.textContent = text.slice(-MAX_CHARS);
        this._pre.scrollTop = this._pre.scrollHeight;
      }
      if (part.ended) {
        const run = await client.getProjectRun(runId);
        this._status.textContent = run.error
          ? `${run.status.toLowerCase()}: ${run.error}`
          : run.status.toLowerCase();
        this._status.dataset.status = run.status;
        this._poll.dispose();
      }
    } catch (error) {
      this._status.textContent = trans.__(
        'log unavailable: %1',
        describeError(error)
      );
      this._poll.dispose();
    }
  }

  private _offset = 0;
  private _pre: HTMLPreElement;
  private _status: HTMLSpanElement;
  private _poll: Poll;
}

export namespace ProjectLogView {
  export interface IOptions {
    client: MLOpsClient;
    trans: TranslationBundle;
    runId: string;
    /** Open the tracked run (the runs panel's run view). */
    openRun: (runId: string) => void;
    pollMs?: number;
  }
}
