/**
 * Types of the tracking REST API (MLflow's experiments, runs, metrics and
 * artifacts). Pipelines and the registry have their own modules
 * (`pipelineTypes.ts`, `registryTypes.ts`).
 *
 * Field names are MLflow's REST names (snake_case); int64 timestamps are epoch
 * milliseconds. MLflow omits unset fields, so most fields are optional.
 */

/** A `{key, value}` pair: params, tags and experiment tags. */
export interface IKeyValue {
  key: string;
  value: string;
}

/** `"active"` or `"deleted"`. */
export type LifecycleStage = 'active' | 'deleted';

/** Which experiments or runs a search returns. */
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

/** MLflow's run status enum, as its name. */
export type RunStatus =
  'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

/** An MLflow experiment. */
export interface IExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: LifecycleStage;
  last_update_time?: number;
  creation_time?: number;
  tags?: IKeyValue[];
}

/** A run's metadata. */
export interface IRunInfo {
  run_id: string;
  /** Deprecated duplicate of `run_id`. */
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status?: RunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: LifecycleStage;
}

/** One metric value. */
export interface IMetric {
  key: string;
  value: number | string;
  timestamp: number;
  step?: number;
  dataset_name?: string;
  dataset_digest?: string;
  model_id?: string;
  run_id?: string;
}

/** A run's params, tags and latest metric values. */
export interface IRunData {
  metrics?: IMetric[];
  params?: IKeyValue[];
  tags?: IKeyValue[];
}

/** A dataset logged as a run input. */
export interface IDatasetInput {
  tags?: IKeyValue[];
  dataset?: {
    name?: string;
    digest?: string;
    source_type?: string;
    source?: string;
    schema?: string;
    profile?: string;
  };
}

/** A run: its info, data and inputs. */
export interface IRun {
  info: IRunInfo;
  data?: IRunData;
  inputs?: { dataset_inputs?: IDatasetInput[]; model_inputs?: unknown[] };
  outputs?: { model_outputs?: unknown[] };
}

/** Body of `experiments/search`. */
export interface ISearchExperimentsRequest {
  max_results?: number;
  page_token?: string;
  filter?: string;
  order_by?: string[];
  view_type?: ViewType;
}

/** Answer of `experiments/search`. */
export interface ISearchExperimentsResponse {
  experiments?: IExperiment[];
  next_page_token?: string;
}

/** Body of `experiments/create`. */
export interface ICreateExperimentRequest {
  name: string;
  artifact_location?: string;
  tags?: IKeyValue[];
}

/**
 * The keys of each kind a search's runs carry (ours, beside MLflow's fields;
 * a kind left out: all its keys). A stock MLflow server ignores it.
 */
export interface IDataKeys {
  params?: string[];
  metrics?: string[];
  tags?: string[];
}

/** Body of `runs/search`. */
export interface ISearchRunsRequest {
  experiment_ids: string[];
  filter?: string;
  run_view_type?: ViewType;
  max_results?: number;
  order_by?: string[];
  page_token?: string;
  /** Only these keys in each run's data (the runs table's columns). */
  data_keys?: IDataKeys;
}

/** Request of `v1/runs/changes` (the runs table's live updates). */
export interface IChangedRunsRequest {
  experiment_ids: string[];
  /** Epoch ms on the server's clock: the previous answer's `now`. */
  since: number;
  max_results?: number;
  /** Only these keys in each run's data, as in `runs/search`. */
  data_keys?: IDataKeys;
}

/** Answer of `v1/runs/changes`. */
export interface IChangedRuns {
  /** Runs changed at or after `since` (deleted ones too). */
  runs: IRun[];
  /** The server's clock when it looked. */
  now: number;
  /** More runs changed than `max_results`. */
  truncated: boolean;
}

/** Request of `v1/runs/keys` (the runs table's column picker). */
export interface IRunKeysRequest {
  experiment_ids: string[];
  search?: string;
  max_results?: number;
}

/** Answer of `v1/runs/keys`. */
export interface IRunKeys {
  params: string[];
  metrics: string[];
  tags: string[];
}

/** Answer of `runs/search`. */
export interface ISearchRunsResponse {
  runs?: IRun[];
  next_page_token?: string;
}

/** Query of `metrics/get-history`. */
export interface IMetricHistoryRequest {
  run_id: string;
  metric_key: string;
  max_results?: number;
  page_token?: string;
}

/** Answer of `metrics/get-history`. */
export interface IMetricHistoryResponse {
  metrics?: IMetric[];
  next_page_token?: string;
}

/** Query of jupyter-mlops' `v1/metrics/series` (down-sampled history). */
export interface IMetricSeriesRequest {
  run_id: string;
  metric_key: string;
  /** Most points to return (server default 1000). */
  max_points?: number;
  x_axis?: 'step' | 'timestamp';
  start_step?: number;
  end_step?: number;
}

/**
 * One point of a down-sampled series: the bucket's representative value plus
 * the min and max of the raw values it stands for, and how many there were.
 */
export interface ISeriesPoint {
  step: number;
  timestamp: number;
  value: number;
  min: number;
  max: number;
  count: number;
}

/** Answer of `v1/metrics/series`. */
export interface IMetricSeriesResponse {
  points: ISeriesPoint[];
}

/** One entry of `artifacts/list`. */
export interface IFileInfo {
  path: string;
  is_dir?: boolean;
  file_size?: number | string;
}

/** Query of `v1/metrics/series-bulk`. */
export interface IMetricSeriesBulkRequest {
  run_ids: string[];
  metric_key: string;
  max_points?: number;
  x_axis?: 'step' | 'timestamp';
}

/** Answer of `v1/metrics/series-bulk`: one entry per run, in request order. */
export interface IMetricSeriesBulkResponse {
  series: { run_id: string; points: ISeriesPoint[] }[];
}
