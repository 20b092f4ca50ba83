/**
 * The status-bar item: the run the current notebook is logging to, found as
 * the newest RUNNING run whose `mlops.source.notebook_path` is the notebook
 * (no code runs in the user's kernel).
 */
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { MLOpsClient } from './api';
import { runName, Tags } from './rows';

/** The search filter for the runs of a notebook (path relative to the root). */
export function notebookRunsFilter(path: string): string {
  return `tags.\`${Tags.notebookPath}\` = '${path.replace(/'/g, "''")}'`;
}

/** A status-bar item with the current notebook's active run. */
export class ActiveRunStatus extends Widget {
  constructor(options: ActiveRunStatus.IOptions) {
    super();
    this._options = options;
    this.addClass('jp-mlops-ActiveRun');
    this.node.title = options.trans.__('MLOps: the run this notebook logs to');
    this.node.addEventListener('click', () => {
      if (this._runId) {
        options.openRun(this._runId);
      }
    });
    options.notebooks.currentChanged.connect(() => this._schedule(0));
    this._schedule(0);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _schedule(ms: number): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this._update(), ms);
  }

  private async _update(): Promise<void> {
    const { client, notebooks, trans } = this._options;
    const path = notebooks.currentWidget?.context.path;
    let text = '';
    this._runId = null;
    if (path) {
      try {
        const experiments = await client.listExperiments({
          view_type: 'ACTIVE_ONLY'
        });
        const runs = experiments.length
          ? await client.listRuns(
              {
                experiment_ids: experiments.map(e => e.experiment_id),
                filter: `${notebookRunsFilter(path)} and attributes.status = 'RUNNING'`,
                order_by: ['attributes.start_time DESC']
              },
              1
            )
          : [];
        if (runs.length) {
          this._runId = runs[0].info.run_id;
          text = trans.__('● run: %1', runName(runs[0]));
        }
      } catch {
        // No server extension or no store: show nothing.
      }
    }
    if (this.isDisposed) {
      return;
    }
    this.node.textContent = text;
    this.node.dataset.runId = this._runId ?? '';
    this.node.style.cursor = this._runId ? 'pointer' : '';
    const every = this._options.interval();
    if (every > 0 && path) {
      this._schedule(Math.max(every, 2000));
    }
  }

  private _options: ActiveRunStatus.IOptions;
  private _timer: number | undefined;
  private _runId: string | null = null;
}

/** Types of `ActiveRunStatus`. */
export namespace ActiveRunStatus {
  export interface IOptions {
    client: MLOpsClient;
    notebooks: INotebookTracker;
    trans: TranslationBundle;
    /** Refresh period, ms (0: only on notebook change). */
    interval: () => number;
    openRun: (runId: string) => void;
  }
}
