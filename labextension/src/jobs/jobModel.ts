/**
 * `JobModel`: the state behind one training job's view: a `FollowModel` of
 * the job and its ranks' logs.
 */
import { IJob, JobsApi } from '../api';
import type { ILogChunk, ILogRead } from '../api/client';
import { FollowModel } from '../followModel';
import { JOB_TERMINAL } from './grid';

/** The job model: the job, and the selected rank's log. */
export class JobModel extends FollowModel<IJob, number> {
  constructor(options: JobModel.IOptions) {
    super({
      name: `jupyter-mlops:job-${options.jobId}`,
      none: -1,
      pollMs: options.pollMs
    });
    this._api = options.api;
    this.jobId = options.jobId;
  }

  readonly jobId: string;

  /** The job, or null before it is in. */
  get job(): IJob | null {
    return this.current;
  }

  /** The rank whose log is shown, -1 for none. */
  get rank(): number {
    return this.part;
  }

  /** Show a rank's log (followed while the job runs). */
  selectRank(rank: number): void {
    this.select(rank);
  }

  /** Cancel the job; throws when the server refuses. */
  async cancel(): Promise<void> {
    await this.busyWith(async () => {
      this.setCurrent(await this._api.cancel(this.jobId));
    });
  }

  protected fetch(): Promise<IJob> {
    return this._api.get(this.jobId);
  }

  protected isActive(job: IJob): boolean {
    return !JOB_TERMINAL.has(String(job.status));
  }

  protected readLog(rank: number, read: ILogRead): Promise<ILogChunk> {
    return this._api.rankLog(this.jobId, rank, read);
  }

  /** Rank 0 once the job has ranks. */
  protected firstPart(job: IJob): number {
    return job.ranks.length ? 0 : -1;
  }

  /**
   * The job ended before this read: the read holds all there is (a read as
   * long as the server's page may have left more behind).
   */
  protected logComplete(chunk: ILogChunk): boolean {
    return chunk.ended && chunk.text.length < 512 * 1024;
  }

  private _api: JobsApi;
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
