/**
 * The status-bar item of training jobs: while jobs run, how many and how
 * many of their ranks are running (clicking opens the job, or the Jobs
 * sidebar when several run); nothing otherwise.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { JobsApi } from '../api';
import { activeJobsSummary, JOB_TERMINAL } from './grid';

/** A status-bar item with the running jobs' progress. */
export class JobsStatus extends Widget {
  constructor(private _options: JobsStatus.IOptions) {
    super();
    this.addClass('jp-mlops-JobsStatus');
    this.node.title = _options.trans.__('MLOps: training jobs running');
    this.node.addEventListener('click', () => {
      if (this._single) {
        _options.openJob(this._single);
      } else {
        _options.openPanel();
      }
    });
    this._schedule(0);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  /** Look again now (after a submit). */
  refresh(): void {
    this._schedule(0);
  }

  private _schedule(ms: number): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this._update(), ms);
  }

  private async _update(): Promise<void> {
    let text = '';
    let active = 0;
    this._single = '';
    try {
      const jobs = (await this._options.api.list({ max_results: 50 })).filter(
        j => !JOB_TERMINAL.has(String(j.status))
      );
      active = jobs.length;
      text = activeJobsSummary(jobs);
      this._single = jobs.length === 1 ? jobs[0].job_id : '';
    } catch {
      // No server extension or no training service: show nothing.
    }
    if (this.isDisposed) {
      return;
    }
    this.node.textContent = text ? `⚙ ${text}` : '';
    this.node.style.cursor = text ? 'pointer' : '';
    const every = this._options.interval();
    // While jobs run, follow them closely; otherwise look now and then for new ones.
    this._schedule(active ? 2000 : Math.max(every, 5000));
  }

  private _timer: number | undefined;
  private _single = '';
}

/** Types of `JobsStatus`. */
export namespace JobsStatus {
  export interface IOptions {
    api: JobsApi;
    trans: TranslationBundle;
    /** Refresh period, ms, while no job runs. */
    interval: () => number;
    openJob: (jobId: string) => void;
    openPanel: () => void;
  }
}
