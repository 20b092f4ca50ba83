/**
 * `PipelineRunModel`: the state behind one pipeline run's view, apart from
 * the widget: a `FollowModel` of the run and its steps' logs.
 */
import { IPipelineRun, MLOpsClient } from '../api';
import type { ILogChunk, ILogRead } from '../api/client';
import { FollowModel } from '../followModel';

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

/**
 * How many steps of a run succeeded (reused outputs count) and how many ran
 * to an end: a cancelled or failed run's skipped and cancelled steps are not
 * "done".
 */
export function stepsSucceeded(run: IPipelineRun): number {
  const counts = run.progress.counts ?? {};
  return (counts['SUCCEEDED'] ?? 0) + (counts['CACHED'] ?? 0);
}

/** The pipeline run model: the run, and the selected step's log. */
export class PipelineRunModel extends FollowModel<IPipelineRun, string> {
  constructor(options: PipelineRunModel.IOptions) {
    super({
      name: `jupyter-mlops:pipeline-run-${options.runId}`,
      none: '',
      pollMs: options.pollMs
    });
    this._client = options.client;
    this.runId = options.runId;
  }

  /** The run's id. */
  readonly runId: string;

  /** The run, or null before it is in. */
  get run(): IPipelineRun | null {
    return this.current;
  }

  /** The step whose log is shown, '' for none. */
  get step(): string {
    return this.part;
  }

  /** Show a step's log. */
  selectStep(name: string): void {
    this.select(name);
  }

  /** Cancel the run; throws when the server refuses. */
  async cancel(): Promise<void> {
    await this.busyWith(async () => {
      this.setCurrent(await this._client.cancelPipelineRun(this.runId));
    });
  }

  /** Run the run again; resolves to the new run. */
  retry(): Promise<IPipelineRun> {
    return this.busyWith(() => this._client.retryPipelineRun(this.runId));
  }

  /** The executed notebook of a step, as JSON text. */
  stepNotebook(step: string): Promise<string> {
    return this._client.getStepNotebook(this.runId, step);
  }

  protected fetch(): Promise<IPipelineRun> {
    return this._client.getPipelineRun(this.runId);
  }

  protected isActive(run: IPipelineRun): boolean {
    return !RUN_TERMINAL.has(run.status);
  }

  protected readLog(step: string, read: ILogRead): Promise<ILogChunk> {
    return this._client.getStepLog(this.runId, step, read);
  }

  /** The running step, else the first. */
  protected firstPart(run: IPipelineRun): string {
    const running = run.steps.find(s => s.status === 'RUNNING');
    return (running ?? run.steps[0])?.name ?? '';
  }

  private _client: MLOpsClient;
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
