/**
 * `JobModel`: the state behind one training job's view. It polls the job and
 * follows the selected rank's log with a `@lumino/polling` `Poll` until the
 * job has ended and the log is read to its end; views listen to `changed`.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, IJob, JobsApi } from '../api';
import { JOB_TERMINAL } from './grid';

/** Most log text kept. */
export const MAX_LOG_CHARS = 200_000;
/** First read of a log: its last bytes. */
const LOG_TAIL = 64 * 1024;

/** The job model. */
export class JobModel implements IDisposable {
  constructor(options: JobModel.IOptions) {
    this._api = options.api;
    this.jobId = options.jobId;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: { interval: options.pollMs ?? 1000, backoff: false },
      name: `jupyter-mlops:job-${options.jobId}`,
      standby: () => this.ended || 'when-hidden'
    });
  }

  readonly jobId: string;

  /** Emitted after any change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The job, or null before it is in. */
  get job(): IJob | null {
    return this._job;
  }

  /** Why the last read of the job failed, '' when it did not. */
  get error(): string {
    return this._error;
  }

  /** The rank whose log is shown, -1 for none. */
  get rank(): number {
    return this._rank;
  }

  /** The shown part of the rank's log (its end, at most `MAX_LOG_CHARS`). */
  get log(): string {
    return this._log;
  }

  /** Whether the rank's log is read to its end and the job has ended. */
  get logEnded(): boolean {
    return this._logEnded;
  }

  /** Why the last read of the log failed, '' when it did not. */
  get logError(): string {
    return this._logError;
  }

  /** Whether the job is active (cancel applies). */
  get active(): boolean {
    return this._job !== null && !JOB_TERMINAL.has(String(this._job.status));
  }

  /** Whether the job has ended and the shown log is complete: no more polls. */
  get ended(): boolean {
    return this._job !== null && !this.active && this._logEnded;
  }

  /** Whether a cancel is under way. */
  get busy(): boolean {
    return this._busy;
  }

  /** Read the job and follow it. */
  start(): Promise<void> {
    if (!this._started && !this.isDisposed) {
      this._started = true;
      return this._poll.start();
    }
    return Promise.resolve();
  }

  /** Show a rank's log (followed while the job runs). */
  selectRank(rank: number): void {
    if (rank === this._rank) {
      return;
    }
    this._rank = rank;
    this._log = '';
    this._logOffset = -1;
    this._logEnded = false;
    this._logError = '';
    this._changed.emit();
    void this._readLog();
    void this._poll.refresh();
  }

  /** Cancel the job; throws when the server refuses. */
  async cancel(): Promise<void> {
    this._busy = true;
    this._changed.emit();
    try {
      this._job = await this._api.cancel(this.jobId);
    } finally {
      this._busy = false;
      if (!this.isDisposed) {
        this._changed.emit();
        void this._poll.refresh();
      }
    }
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** One poll: the job, then the new part of the selected rank's log. */
  private async _tick(): Promise<void> {
    try {
      const job = await this._api.get(this.jobId);
      if (this.isDisposed) {
        return;
      }
      this._job = job;
      this._error = '';
      if (this._rank < 0 && job.ranks.length) {
        this._rank = 0;
      }
      this._changed.emit();
      await this._readLog();
    } catch (error) {
      if (!this.isDisposed) {
        this._error = describeError(error);
        this._changed.emit();
      }
    }
  }

  private async _readLog(): Promise<void> {
    const rank = this._rank;
    if (rank < 0 || this._logEnded || this._reading) {
      return;
    }
    this._reading = true;
    try {
      const first = this._logOffset < 0;
      const chunk = await this._api.rankLog(
        this.jobId,
        rank,
        first ? { tail: LOG_TAIL } : { offset: this._logOffset }
      );
      if (rank !== this._rank || this.isDisposed) {
        return; // another rank was selected meanwhile
      }
      this._log = (this._log + chunk.text).slice(-MAX_LOG_CHARS);
      this._logOffset = chunk.nextOffset;
      // The job ended before this read: the read holds all there is.
      // (a read as long as the server's page size may have left more behind).
      this._logEnded = chunk.ended && chunk.text.length < 512 * 1024;
      this._logError = '';
    } catch (error) {
      if (rank !== this._rank || this.isDisposed) {
        return;
      }
      this._logError = describeError(error);
    } finally {
      this._reading = false;
    }
    this._changed.emit();
  }

  private _api: JobsApi;
  private _poll: Poll;
  private _started = false;
  private _job: IJob | null = null;
  private _error = '';
  private _rank = -1;
  private _log = '';
  private _logOffset = -1;
  private _logEnded = false;
  private _logError = '';
  private _reading = false;
  private _busy = false;
  private _changed = new Signal<this, void>(this);
}

/** Types of `JobModel`. */
export namespace JobModel {
  export interface IOptions {
    api: JobsApi;
    jobId: string;
    /** Poll period, ms; default 1000. */
    pollMs?: number;
  }
}
