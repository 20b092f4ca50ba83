/**
 * `PipelineRunModel`: the state behind one pipeline run's view, apart from
 * the widget. It polls the run and follows the selected step's log with a
 * `@lumino/polling` `Poll` until the run has ended and the log is complete;
 * views listen to `changed` and read the getters.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, IPipelineRun, MLOpsClient } from '../api';

/** Run states after which nothing changes. */
export const RUN_TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);
/** Step states after which its log is complete. */
export const STEP_TERMINAL = new Set([
  'SUCCEEDED',
  'FAILED',
  'CANCELED',
  'SKIPPED',
  'CACHED'
]);
/** Most log text kept. */
export const MAX_LOG_CHARS = 200_000;
/** First read of a log: its last bytes. */
const LOG_TAIL = 64 * 1024;

/**
 * How many steps of a run succeeded (reused outputs count) and how many ran
 * to an end: a cancelled or failed run's skipped and cancelled steps are not
 * "done".
 */
export function stepsSucceeded(run: IPipelineRun): number {
  const counts = run.progress.counts ?? {};
  return (counts['SUCCEEDED'] ?? 0) + (counts['CACHED'] ?? 0);
}

/** The pipeline run model. */
export class PipelineRunModel implements IDisposable {
  constructor(options: PipelineRunModel.IOptions) {
    this._client = options.client;
    this.runId = options.runId;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: { interval: options.pollMs ?? 1000, backoff: false },
      name: `jupyter-mlops:pipeline-run-${options.runId}`,
      standby: () => this.ended || 'when-hidden'
    });
  }

  /** The run's id. */
  readonly runId: string;

  /** Emitted after any change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The run, or null before it is in. */
  get run(): IPipelineRun | null {
    return this._run;
  }

  /** Why the last read of the run failed, '' when it did not. */
  get error(): string {
    return this._error;
  }

  /** The step whose log is shown, '' for none. */
  get step(): string {
    return this._step;
  }

  /** The shown part of the step's log (its end, at most `MAX_LOG_CHARS`). */
  get log(): string {
    return this._log;
  }

  /** Whether the step's log is complete. */
  get logEnded(): boolean {
    return this._logEnded;
  }

  /** Why the last read of the log failed, '' when it did not. */
  get logError(): string {
    return this._logError;
  }

  /** Whether the run has ended and the shown log is complete: no more polls. */
  get ended(): boolean {
    return (
      this._run !== null && RUN_TERMINAL.has(this._run.status) && this._logEnded
    );
  }

  /** Whether the run is active (cancel applies; retry does not). */
  get active(): boolean {
    return this._run !== null && !RUN_TERMINAL.has(this._run.status);
  }

  /** Whether a cancel or retry is under way. */
  get busy(): boolean {
    return this._busy;
  }

  /** Read the run and follow it. */
  start(): Promise<void> {
    if (!this._started && !this.isDisposed) {
      this._started = true;
      return this._poll.start();
    }
    return Promise.resolve();
  }

  /** Show a step's log. */
  selectStep(name: string): void {
    if (name === this._step) {
      return;
    }
    this._step = name;
    this._log = '';
    this._logOffset = -1;
    this._logEnded = false;
    this._changed.emit();
    void this._readLog();
  }

  /** Cancel the run; throws when the server refuses. */
  async cancel(): Promise<void> {
    await this._busyWith(async () => {
      this._run = await this._client.cancelPipelineRun(this.runId);
    });
  }

  /** Run the run again; resolves to the new run. */
  retry(): Promise<IPipelineRun> {
    return this._busyWith(() => this._client.retryPipelineRun(this.runId));
  }

  /** The executed notebook of a step, as JSON text. */
  stepNotebook(step: string): Promise<string> {
    return this._client.getStepNotebook(this.runId, step);
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Stop polling and drop listeners. */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _busyWith<T>(work: () => Promise<T>): Promise<T> {
    this._busy = true;
    this._changed.emit();
    try {
      return await work();
    } finally {
      this._busy = false;
      if (!this.isDisposed) {
        this._changed.emit();
        // Follow what the change started (a cancel in progress).
        void this._poll.refresh();
      }
    }
  }

  /** One poll: the run, then the new part of the selected step's log. */
  private async _tick(): Promise<void> {
    try {
      const run = await this._client.getPipelineRun(this.runId);
      if (this.isDisposed) {
        return;
      }
      this._run = run;
      this._error = '';
      if (!this._step && run.steps.length) {
        const running = run.steps.find(s => s.status === 'RUNNING');
        this._step = (running ?? run.steps[0]).name;
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
    const step = this._step;
    if (!step || this._logEnded) {
      return;
    }
    try {
      const first = this._logOffset < 0;
      const chunk = await this._client.getStepLog(
        this.runId,
        step,
        first ? { tail: LOG_TAIL } : { offset: this._logOffset }
      );
      if (step !== this._step || this.isDisposed) {
        return; // another step was selected meanwhile
      }
      this._log = (this._log + chunk.text).slice(-MAX_LOG_CHARS);
      this._logOffset = chunk.nextOffset;
      this._logEnded = chunk.ended;
      this._logError = '';
    } catch (error) {
      if (step !== this._step || this.isDisposed) {
        return;
      }
      this._logError = describeError(error);
    }
    this._changed.emit();
  }

  private _client: MLOpsClient;
  private _poll: Poll;
  private _started = false;
  private _run: IPipelineRun | null = null;
  private _error = '';
  private _step = '';
  private _log = '';
  private _logOffset = -1;
  private _logEnded = false;
  private _logError = '';
  private _busy = false;
  private _changed = new Signal<this, void>(this);
}

/** Types of `PipelineRunModel`. */
export namespace PipelineRunModel {
  /** Constructor options. */
  export interface IOptions {
    client: MLOpsClient;
    runId: string;
    /** Poll period, ms; default 1000. */
    pollMs?: number;
  }
}
