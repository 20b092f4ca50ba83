/**
 * Types of the training jobs REST API (`mlops/api/v1/jobs/...`; see
 * docs/training.md).
 */
import { IPipelineIssue, IPipelineParam } from './pipelineTypes';

/** Job states. */
export type JobStatus =
  | 'QUEUED'
  | 'RUNNING'
  | 'RESTARTING'
  | 'CANCELING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELED';

/** Rank states. */
export type RankStatus =
  'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';

/** One process of a job. */
export interface IJobRank {
  rank: number;
  node: number;
  local_rank: number;
  status: RankStatus | string;
  pid?: number | null;
  exit_code?: number | null;
  start_time?: number | null;
  end_time?: number | null;
  duration_ms?: number | null;
  error?: string | null;
  has_log?: boolean;
}

/** A job's spec in canonical form (the `*.job.yaml` shape, defaults filled in). */
export interface IJobSpec {
  name: string;
  description?: string;
  experiment?: string;
  framework?: string;
  script?: string;
  notebook?: string;
  function?: string;
  code?: string;
  args?: string[];
  params?: Record<string, IPipelineParam | unknown>;
  env?: Record<string, string>;
  nodes?: number;
  procs_per_node?: number;
  resources?: { gpu?: number; cpu?: number | string; memory?: string };
  restart_policy?: string;
  max_restarts?: number;
  image?: string;
}

/** A training job as the server presents it. */
export interface IJob {
  job_id: string;
  /** The tracked run (the same id). */
  run_id: string;
  name: string;
  status: JobStatus | string;
  reason?: string | null;
  framework?: string;
  nodes?: number;
  procs_per_node?: number;
  path?: string | null;
  experiment_id?: string;
  parameters?: Record<string, unknown>;
  attempt?: number;
  created_time?: number;
  start_time?: number | null;
  end_time?: number | null;
  duration_ms?: number | null;
  target?: string;
  spec?: IJobSpec;
  progress: { counts: Record<string, number>; total: number };
  ranks: IJobRank[];
}

/** Where jobs can run. */
export interface IJobTarget {
  name: string;
  display_name?: string;
  kind?: string;
  default?: boolean;
  gpus?: string[];
  max_ranks?: number;
}

/** Answer of `POST jobs/validate`. */
export interface IJobValidateResponse {
  valid: boolean;
  issues: IPipelineIssue[];
  job?: IJobSpec & { params?: Record<string, IPipelineParam> };
}

/** Body of `POST jobs`: a file, YAML text, or a spec with the folder its paths are in. */
export interface ISubmitJobRequest {
  path?: string;
  text?: string;
  spec?: IJobSpec;
  base_dir?: string;
  parameters?: Record<string, unknown>;
  run_name?: string;
  target?: string;
}

/** A piece of a rank's log. */
export interface IRankLog {
  text: string;
  /** Where the next read starts. */
  nextOffset: number;
  /** Whether the job has ended (the log is complete once read to here). */
  ended: boolean;
}
