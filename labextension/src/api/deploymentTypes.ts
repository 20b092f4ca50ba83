/**
 * Types of the deployments REST API (`mlops/api/v1/deployments/...`; see
 * docs/deployments.md).
 */

/** Deployment states. */
export type DeploymentStatus =
  'STARTING' | 'READY' | 'UPDATING' | 'RESTARTING' | 'FAILED' | 'STOPPED';

/** One entry of a deployment's history: a version it served. */
export interface IDeploymentHistory {
  seq: number;
  action: string;
  model_uri: string;
  model_name?: string | null;
  model_version?: string | null;
  start_time?: number | null;
  end_time?: number | null;
}

/** A version served, with its share of the requests (canary rollouts). */
export interface ITrafficSplit {
  version?: string | null;
  model_uri?: string | null;
  percent: number;
  replicas?: number;
}

/** A deployment. */
export interface IDeployment {
  name: string;
  model_uri: string;
  target: string;
  replicas: number;
  resources?: Record<string, unknown>;
  follow_alias?: boolean;
  status: DeploymentStatus | string;
  reason?: string | null;
  url?: string | null;
  model_name?: string | null;
  model_version?: string | null;
  served_uri?: string | null;
  created_time?: number;
  updated_time?: number;
  /** The versions served and their shares of the requests. */
  traffic?: ITrafficSplit[];
  history?: IDeploymentHistory[];
}

/** Where deployments can run. */
export interface IDeploymentTarget {
  name: string;
  display_name?: string;
  kind?: string;
  default?: boolean;
}

/** Body of `POST deployments`. */
export interface ICreateDeploymentRequest {
  name: string;
  model_uri: string;
  target?: string;
  replicas?: number;
  follow_alias?: boolean;
  /** Share of requests for the new version (targets that split traffic). */
  canary_percent?: number;
}

/** Body of `PATCH deployments/<name>`. */
export interface IUpdateDeploymentRequest {
  model_uri?: string;
  replicas?: number;
  follow_alias?: boolean;
  canary_percent?: number;
}

/** A latency histogram: cumulative `[le, count]` buckets (Prometheus'). */
export interface ILatencyHistogram {
  buckets: [number | string, number][];
  sum: number;
  count: number;
}

/** One version's counters in a metrics scrape. */
export interface IVersionMetrics {
  version: string;
  model_uri?: string;
  traffic_percent?: number;
  replicas?: number;
  requests_total: number;
  errors_total: number;
  latency_seconds: ILatencyHistogram;
}

/** Answer of `GET deployments/<name>/metrics`: one scrape. */
export interface IDeploymentMetrics {
  scraped_at: number;
  versions: IVersionMetrics[];
}

/** What a deployment answered to a request (any status). */
export interface IInvokeResponse {
  status: number;
  contentType: string;
  body: string;
}
