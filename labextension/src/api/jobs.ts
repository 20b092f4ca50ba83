/**
 * Training jobs over REST (`mlops/api/v1/jobs/...`, docs/training.md), on top
 * of `MLOpsClient`: submit, list, get, cancel, validate, targets, and a
 * rank's log read from an offset or its tail.
 */
import { MLOpsClient } from './client';
import {
  IJob,
  IJobTarget,
  IJobValidateResponse,
  IRankLog,
  ISubmitJobRequest
} from './jobTypes';

const enc = encodeURIComponent;

/** The training job routes. */
export class JobsApi {
  constructor(readonly client: MLOpsClient) {}

  /** Jobs, newest first. */
  async list(
    query: { status?: string; name?: string; max_results?: number } = {}
  ): Promise<IJob[]> {
    const answer = await this.client.request<{ jobs?: IJob[] }>('v1', 'jobs', {
      query
    });
    return answer.jobs ?? [];
  }

  /** A job with every rank's state. */
  async get(jobId: string): Promise<IJob> {
    const answer = await this.client.request<{ job: IJob }>(
      'v1',
      `jobs/${enc(jobId)}`
    );
    return answer.job;
  }

  /** Submit a job; a 400 `MLOpsApiError` carries the validation issues. */
  async submit(request: ISubmitJobRequest): Promise<IJob> {
    const answer = await this.client.request<{ job: IJob }>('v1', 'jobs', {
      method: 'POST',
      body: request
    });
    return answer.job;
  }

  /** The issues of a job file, YAML text or spec, without running it. */
  validate(
    request: Pick<ISubmitJobRequest, 'path' | 'text' | 'spec' | 'base_dir'>
  ): Promise<IJobValidateResponse> {
    return this.client.request('v1', 'jobs/validate', {
      method: 'POST',
      body: request
    });
  }

  /** Cancel a job (answers once its ranks stopped; 409 when it had ended). */
  async cancel(jobId: string): Promise<IJob> {
    const answer = await this.client.request<{ job: IJob }>(
      'v1',
      `jobs/${enc(jobId)}/cancel`,
      { method: 'POST', body: {} }
    );
    return answer.job;
  }

  /** Where jobs can run. */
  async targets(): Promise<IJobTarget[]> {
    const answer = await this.client.request<{ targets?: IJobTarget[] }>(
      'v1',
      'jobs/targets'
    );
    return answer.targets ?? [];
  }

  /** A rank's log from `offset`, or its last `tail` bytes. */
  rankLog(
    jobId: string,
    rank: number,
    options: { offset?: number; tail?: number } = {}
  ): Promise<IRankLog> {
    return this.client.fetchLogChunk(
      `jobs/${enc(jobId)}/ranks/${rank}/log`,
      'X-Job-Ended',
      options
    );
  }
}
