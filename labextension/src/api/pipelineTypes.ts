/**
 * Types of the pipelines REST API (`mlops/api/v1/pipelines/...`: runs,
 * steps, targets and schedules; see docs/pipelines.md).
 */

/** A pipeline parameter's declared type. */
export type PipelineParamType =
  'string' | 'integer' | 'float' | 'boolean' | 'list' | 'dict';

/** A declared pipeline parameter (no `default`: required). */
export interface IPipelineParam {
  type: PipelineParamType;
  default?: unknown;
  description?: string;
  enum?: unknown[];
}

/** A step of a pipeline definition (canonical JSON of the YAML). */
export interface IPipelineStepDef {
  notebook?: string;
  script?: string;
  depends_on?: string[];
  parameters?: Record<string, unknown>;
}

/** The canonical JSON of a pipeline. */
export interface IPipelineDef {
  name: string;
  description?: string;
  experiment?: string;
  parameters?: Record<string, IPipelineParam>;
  steps: Record<string, IPipelineStepDef>;
}

/** One validation problem. */
export interface IPipelineIssue {
  file?: string | null;
  line?: number | null;
  column?: number | null;
  field?: string;
  message: string;
  code?: string;
}

/** Answer of `POST pipelines/validate`. */
export interface IValidateResponse {
  valid: boolean;
  issues: IPipelineIssue[];
  pipeline?: IPipelineDef;
  path?: string;
  order?: string[];
}

/** Where runs can go. */
export interface IPipelineTarget {
  name: string;
  display_name?: string;
  /** `local` (this server) or `kubeflow` (a configured Kubeflow Pipelines endpoint). */
  kind?: 'local' | 'kubeflow';
  default?: boolean;
  parallelism?: number;
  /** The Kubeflow Pipelines UI (kubeflow targets). */
  ui_url?: string | null;
  namespace?: string | null;
}

/** Run states. */
export type PipelineRunStatus =
  'QUEUED' | 'RUNNING' | 'CANCELING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';

/** Step states. */
export type PipelineStepStatus =
  | 'PENDING'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELED'
  | 'SKIPPED'
  | 'CACHED';

/** A step of a run. */
export interface IPipelineStep {
  name: string;
  status: PipelineStepStatus;
  attempt: number;
  kind: 'notebook' | 'script';
  path?: string | null;
  depends_on: string[];
  start_time?: number | null;
  end_time?: number | null;
  duration_ms?: number | null;
  tracking_run_id?: string | null;
  error?: string | null;
  cached_from?: string | null;
  has_log?: boolean;
  has_notebook?: boolean;
}

/** A pipeline run. */
export interface IPipelineRun {
  run_id: string;
  /** The pipeline's name. */
  name: string;
  /** The run's own name (typed in the form, or "<schedule> <due time>"). */
  run_name?: string | null;
  status: PipelineRunStatus;
  reason?: string | null;
  path?: string | null;
  experiment_id?: string;
  parameters?: Record<string, unknown>;
  created_time?: number;
  start_time?: number | null;
  end_time?: number | null;
  duration_ms?: number | null;
  target?: string;
  /** The run in the Kubeflow Pipelines UI (kubeflow targets with a `ui_url`). */
  external_url?: string | null;
  schedule_id?: string | null;
  retry_of?: string | null;
  progress: { done: number; total: number; counts: Record<string, number> };
  steps: IPipelineStep[];
}

/** Body of `POST pipelines/runs`. */
export interface ISubmitPipelineRequest {
  path?: string;
  text?: string;
  parameters?: Record<string, unknown>;
  run_name?: string;
  target?: string;
}

/** A chunk of a step's log. */
export interface IStepLog {
  text: string;
  /** Offset to ask for next. */
  nextOffset: number;
  /** Whether the step has ended (nothing more will come). */
  ended: boolean;
}

/** A recurring run of a pipeline (`GET pipelines/schedules/{id}`). */
export interface IPipelineSchedule {
  schedule_id: string;
  name: string;
  /** The pipeline file, relative to the server root. */
  pipeline_path: string;
  parameters: Record<string, unknown>;
  /** Five-field cron expression. */
  cron: string;
  /** IANA time zone the cron follows. */
  timezone: string;
  paused: boolean;
  /** Epoch ms of the next fire, if any. */
  next_fire_time?: number | null;
  last_fire_time?: number | null;
  last_run_id?: string | null;
  last_error?: string | null;
  created_time?: number;
  /** Where its runs go: `local` or a Kubeflow target (absent from older servers: local). */
  target?: string;
}

/** Body of `POST pipelines/schedules`. */
export interface ICreateScheduleRequest {
  path: string;
  cron: string;
  timezone?: string;
  parameters?: Record<string, unknown>;
  name?: string;
  paused?: boolean;
  /** `local` (the default) or a name from `GET pipelines/targets`. */
  target?: string;
}

/** Body of `PATCH pipelines/schedules/{id}` (`parameters` replace the stored ones). */
export interface IUpdateScheduleRequest {
  paused?: boolean;
  name?: string;
  cron?: string;
  timezone?: string;
  parameters?: Record<string, unknown>;
  target?: string;
}
