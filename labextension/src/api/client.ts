/**
 * The one typed REST client of the front end: every HTTP request of the
 * extension goes through `MLOpsClient`.
 *
 * Requests use `ServerConnection.makeRequest`, which adds the Jupyter token
 * and XSRF header, so they are authenticated like any JupyterLab request.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { errorFromResponse, MLOpsApiError, networkError } from './errors';
import {
  ICreateExperimentRequest,
  IExperiment,
  IMetric,
  IMetricHistoryRequest,
  IMetricHistoryResponse,
  IMetricSeriesBulkRequest,
  IMetricSeriesBulkResponse,
  IMetricSeriesRequest,
  IMetricSeriesResponse,
  IFileInfo,
  IRun,
  IRunInfo,
  ISearchExperimentsRequest,
  ISearchExperimentsResponse,
  IChangedRuns,
  IChangedRunsRequest,
  IRunKeys,
  IRunKeysRequest,
  ISearchRunsRequest,
  ISearchRunsResponse
} from './types';
import {
  ICreateScheduleRequest,
  IPipelineRun,
  IPipelineSchedule,
  IPipelineTarget,
  IStepLog,
  ISubmitPipelineRequest,
  IUpdateScheduleRequest,
  IValidateResponse
} from './pipelineTypes';
import {
  IModelLineage,
  IModelVersion,
  IRegisteredModel
} from './registryTypes';
import {
  IProject,
  IProjectLog,
  IProjectRun,
  IProjectRunRequest
} from './projectTypes';

/** Path of the extension's routes below the server's base URL. */
export const API_ROOT = 'mlops';

/**
 * Which family of routes: MLflow's (`2.0/mlflow`), MLflow 3's (`3.0/mlflow`),
 * MLflow's UI routes (`ajax-api/2.0/mlflow`) or ours (`v1`).
 */
export type ApiFamily = 'mlflow' | 'mlflow3' | 'ajax' | 'v1';

const FAMILY_PREFIX: Record<ApiFamily, string[]> = {
  mlflow: ['api', '2.0', 'mlflow'],
  mlflow3: ['api', '3.0', 'mlflow'],
  ajax: ['ajax-api', '2.0', 'mlflow'],
  v1: ['api', 'v1']
};

/** Where a log read starts: an `offset`, or the last `tail` bytes. */
export interface ILogRead {
  offset?: number;
  tail?: number;
}

/** A chunk of a followed log. */
export interface ILogChunk {
  text: string;
  /** Where the next read starts. */
  nextOffset: number;
  /** Whether the log's writer ended (nothing more will come). */
  ended: boolean;
}

/** Query values; arrays become repeated keys, `undefined` is dropped. */
export type Query = Record<
  string,
  string | number | boolean | undefined | Array<string | number>
>;

/**
 * The URL of an API route.
 *
 * @param baseUrl - the Jupyter server's base URL (`serverSettings.baseUrl`)
 * @param family - `mlflow` for `mlops/api/2.0/mlflow/…`, `v1` for `mlops/api/v1/…`
 * @param endpoint - e.g. `experiments/search`
 * @param query - query-string fields (GET requests)
 */
export function apiUrl(
  baseUrl: string,
  family: ApiFamily,
  endpoint: string,
  query?: Query
): string {
  const url = URLExt.join(
    baseUrl,
    API_ROOT,
    ...FAMILY_PREFIX[family],
    endpoint
  );
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) {
      continue;
    }
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.length ? `${url}?${parts.join('&')}` : url;
}

/**
 * A string as a quoted literal of a search filter (`name = '…'`): quotes and
 * backslashes are escaped with a backslash, as the registry's parser reads them.
 */
export function quoteFilterValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Options of one request. */
interface IRequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  query?: Query;
  body?: unknown;
}

/** Page through a paginated search until done or `limit` items are read. */
async function collectPages<T>(
  fetchPage: (
    pageToken: string | undefined
  ) => Promise<{ items: T[]; next?: string }>,
  limit: number
): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined = undefined;
  do {
    const page = await fetchPage(token);
    items.push(...page.items);
    token = page.next || undefined;
  } while (token && items.length < limit);
  return items.slice(0, limit);
}

/** Typed access to jupyter-mlops' REST API. */
export class MLOpsClient {
  /**
   * @param serverSettings - the application's settings,
   *   `app.serviceManager.serverSettings`
   */
  constructor(readonly serverSettings: ServerConnection.ISettings) {}

  /** Send one request and parse the JSON answer; throws `MLOpsApiError`. */
  async request<T>(
    family: ApiFamily,
    endpoint: string,
    options: IRequestOptions = {}
  ): Promise<T> {
    const method = options.method ?? 'GET';
    const url = apiUrl(
      this.serverSettings.baseUrl,
      family,
      endpoint,
      options.query
    );
    const init: RequestInit = { method };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        url,
        init,
        this.serverSettings
      );
    } catch (error) {
      throw networkError(error, url);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw networkError(error, url);
    }
    if (!response.ok) {
      throw errorFromResponse(response.status, text, url);
    }
    if (!text) {
      return {} as T;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new MLOpsApiError(
        'The server answered with something that is not JSON',
        'INVALID_RESPONSE',
        response.status,
        url
      );
    }
  }

  // ----- experiments -------------------------------------------------------

  /** One page of `experiments/search`. */
  searchExperiments(
    request: ISearchExperimentsRequest = {}
  ): Promise<ISearchExperimentsResponse> {
    return this.request('mlflow', 'experiments/search', {
      method: 'POST',
      body: request
    });
  }

  /** Every experiment matching `request`, following page tokens. */
  listExperiments(
    request: ISearchExperimentsRequest = {},
    limit = 10000
  ): Promise<IExperiment[]> {
    return collectPages(async page_token => {
      const answer = await this.searchExperiments({
        max_results: 1000,
        ...request,
        page_token
      });
      return {
        items: answer.experiments ?? [],
        next: answer.next_page_token
      };
    }, limit);
  }

  /** An experiment by id. */
  async getExperiment(experimentId: string): Promise<IExperiment> {
    const answer = await this.request<{ experiment: IExperiment }>(
      'mlflow',
      'experiments/get',
      { query: { experiment_id: experimentId } }
    );
    return answer.experiment;
  }

  /** Create an experiment; returns its id. */
  async createExperiment(request: ICreateExperimentRequest): Promise<string> {
    const answer = await this.request<{ experiment_id: string }>(
      'mlflow',
      'experiments/create',
      { method: 'POST', body: request }
    );
    return answer.experiment_id;
  }

  /** Rename an experiment. */
  async updateExperiment(experimentId: string, newName: string): Promise<void> {
    await this.request('mlflow', 'experiments/update', {
      method: 'POST',
      body: { experiment_id: experimentId, new_name: newName }
    });
  }

  /** Mark an experiment (and its runs) deleted; `restoreExperiment` undoes it. */
  async deleteExperiment(experimentId: string): Promise<void> {
    await this.request('mlflow', 'experiments/delete', {
      method: 'POST',
      body: { experiment_id: experimentId }
    });
  }

  /** Restore a deleted experiment. */
  async restoreExperiment(experimentId: string): Promise<void> {
    await this.request('mlflow', 'experiments/restore', {
      method: 'POST',
      body: { experiment_id: experimentId }
    });
  }

  // ----- runs --------------------------------------------------------------

  /** One page of `runs/search`. */
  searchRuns(request: ISearchRunsRequest): Promise<ISearchRunsResponse> {
    return this.request('mlflow', 'runs/search', {
      method: 'POST',
      body: request
    });
  }

  /** How many runs `searchRuns` finds with these fields, over all pages. */
  async countRuns(
    request: Pick<
      ISearchRunsRequest,
      'experiment_ids' | 'filter' | 'run_view_type'
    >
  ): Promise<number> {
    const answer = await this.request<{ count: number }>('v1', 'runs/count', {
      method: 'POST',
      body: request
    });
    return answer.count ?? 0;
  }

  /** The experiments' runs changed since the server time `since`. */
  async changedRuns(request: IChangedRunsRequest): Promise<IChangedRuns> {
    const answer = await this.request<Partial<IChangedRuns>>(
      'v1',
      'runs/changes',
      { method: 'POST', body: request }
    );
    return {
      runs: answer.runs ?? [],
      now: answer.now ?? request.since,
      truncated: !!answer.truncated
    };
  }

  /**
   * The param, metric and tag keys of the experiments' active runs that
   * contain `search` (case-insensitive), sorted, at most `max_results` of each.
   */
  runKeys(request: IRunKeysRequest): Promise<IRunKeys> {
    return this.request<IRunKeys>('v1', 'runs/keys', {
      method: 'POST',
      body: request
    }).then(answer => ({
      params: answer.params ?? [],
      metrics: answer.metrics ?? [],
      tags: answer.tags ?? []
    }));
  }

  /** Up to `limit` runs matching `request`, following page tokens. */
  listRuns(request: ISearchRunsRequest, limit = 1000): Promise<IRun[]> {
    return collectPages(async page_token => {
      const answer = await this.searchRuns({
        ...request,
        max_results: Math.min(limit, 1000),
        page_token
      });
      return { items: answer.runs ?? [], next: answer.next_page_token };
    }, limit);
  }

  /** A run by id, with the latest value of each metric. */
  async getRun(runId: string): Promise<IRun> {
    const answer = await this.request<{ run: IRun }>('mlflow', 'runs/get', {
      query: { run_id: runId }
    });
    return answer.run;
  }

  // ----- metrics -----------------------------------------------------------

  /** One page of a metric's full history (MLflow's `metrics/get-history`). */
  getMetricHistory(
    request: IMetricHistoryRequest
  ): Promise<IMetricHistoryResponse> {
    return this.request('mlflow', 'metrics/get-history', {
      query: { ...request }
    });
  }

  /** A metric's whole history, following page tokens. */
  listMetricHistory(
    runId: string,
    metricKey: string,
    limit = 1_000_000
  ): Promise<IMetric[]> {
    return collectPages(async page_token => {
      const answer = await this.getMetricHistory({
        run_id: runId,
        metric_key: metricKey,
        max_results: 25000,
        page_token
      });
      return { items: answer.metrics ?? [], next: answer.next_page_token };
    }, limit);
  }

  /**
   * A metric down-sampled by the server (`v1/metrics/series`): at most
   * `max_points` buckets, each keeping the min and max it stands for.
   */
  getMetricSeries(
    request: IMetricSeriesRequest
  ): Promise<IMetricSeriesResponse> {
    return this.request('v1', 'metrics/series', { query: { ...request } });
  }

  /**
   * One metric down-sampled for many runs in one request
   * (`v1/metrics/series-bulk`, at most 200 runs); a run without the metric
   * has no points.
   */
  async getMetricSeriesBulk(
    request: IMetricSeriesBulkRequest
  ): Promise<IMetricSeriesBulkResponse> {
    const { run_ids, ...rest } = request;
    return this.request('v1', 'metrics/series-bulk', {
      query: { ...rest, run_ids }
    });
  }

  // ----- run edits -----------------------------------------------------------

  /** Set a tag on a run (also edits `mlflow.note.content`, the description). */
  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.request('mlflow', 'runs/set-tag', {
      method: 'POST',
      body: { run_id: runId, key, value }
    });
  }

  /** Remove a tag from a run. */
  async deleteTag(runId: string, key: string): Promise<void> {
    await this.request('mlflow', 'runs/delete-tag', {
      method: 'POST',
      body: { run_id: runId, key }
    });
  }

  /** Mark a run deleted (restorable). */
  async deleteRun(runId: string): Promise<void> {
    await this.request('mlflow', 'runs/delete', {
      method: 'POST',
      body: { run_id: runId }
    });
  }

  /** Restore a deleted run. */
  async restoreRun(runId: string): Promise<void> {
    await this.request('mlflow', 'runs/restore', {
      method: 'POST',
      body: { run_id: runId }
    });
  }

  // ----- artifacts -----------------------------------------------------------

  /** Files and folders directly under `path` of a run's artifacts. */
  async listArtifacts(runId: string, path = ''): Promise<IFileInfo[]> {
    const answer = await this.request<{ files?: IFileInfo[] }>(
      'mlflow',
      'artifacts/list',
      { query: { run_id: runId, path: path || undefined } }
    );
    return answer.files ?? [];
  }

  /**
   * URL of one artifact through the server's artifact proxy
   * (`mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>`).
   */
  artifactUrl(run: IRunInfo, path: string): string {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    const prefix = 'mlflow-artifacts:/';
    const uri = run.artifact_uri ?? '';
    const root = uri.startsWith(prefix)
      ? uri.slice(prefix.length).replace(/^\/+/, '')
      : `${run.experiment_id}/${run.run_id}/artifacts`;
    return URLExt.join(
      this.serverSettings.baseUrl,
      API_ROOT,
      'api/2.0/mlflow-artifacts/artifacts',
      root,
      encoded
    );
  }

  /** Fetch an artifact (authenticated); throws `MLOpsApiError` on 4xx/5xx. */
  async fetchArtifact(run: IRunInfo, path: string): Promise<Response> {
    const url = this.artifactUrl(run, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        url,
        { method: 'GET' },
        this.serverSettings
      );
    } catch (error) {
      throw networkError(error, url);
    }
    if (!response.ok) {
      throw errorFromResponse(response.status, await response.text(), url);
    }
    return response;
  }

  // ----- pipelines -----------------------------------------------------------

  /** Validate a pipeline file (path relative to the server root) or YAML text. */
  validatePipeline(
    source: { path: string } | { text: string }
  ): Promise<IValidateResponse> {
    return this.request('v1', 'pipelines/validate', {
      method: 'POST',
      body: source
    });
  }

  /** `*.pipeline.yaml` files under the server root. */
  async listPipelineFiles(): Promise<string[]> {
    const answer = await this.request<{ files?: string[] }>(
      'v1',
      'pipelines/files'
    );
    return answer.files ?? [];
  }

  /** Where runs can go. */
  async listPipelineTargets(): Promise<IPipelineTarget[]> {
    const answer = await this.request<{ targets?: IPipelineTarget[] }>(
      'v1',
      'pipelines/targets'
    );
    return answer.targets ?? [];
  }

  /** Submit a run; a 400 `MLOpsApiError` carries the validation issues. */
  async submitPipeline(request: ISubmitPipelineRequest): Promise<IPipelineRun> {
    const answer = await this.request<{ run: IPipelineRun }>(
      'v1',
      'pipelines/runs',
      { method: 'POST', body: request }
    );
    return answer.run;
  }

  /** Pipeline runs, newest first. */
  async listPipelineRuns(
    query: { path?: string; status?: string; max_results?: number } = {}
  ): Promise<IPipelineRun[]> {
    const answer = await this.request<{ runs?: IPipelineRun[] }>(
      'v1',
      'pipelines/runs',
      { query }
    );
    return answer.runs ?? [];
  }

  // ----- pipeline schedules (recurring runs) ---------------------------------

  /** All schedules, oldest first. */
  async listPipelineSchedules(): Promise<IPipelineSchedule[]> {
    const answer = await this.request<{ schedules?: IPipelineSchedule[] }>(
      'v1',
      'pipelines/schedules'
    );
    return answer.schedules ?? [];
  }

  /** Create a schedule; a bad cron or time zone is a 400 `MLOpsApiError`. */
  async createPipelineSchedule(
    request: ICreateScheduleRequest
  ): Promise<IPipelineSchedule> {
    const answer = await this.request<{ schedule: IPipelineSchedule }>(
      'v1',
      'pipelines/schedules',
      { method: 'POST', body: request }
    );
    return answer.schedule;
  }

  /** One schedule. */
  async getPipelineSchedule(scheduleId: string): Promise<IPipelineSchedule> {
    const answer = await this.request<{ schedule: IPipelineSchedule }>(
      'v1',
      `pipelines/schedules/${encodeURIComponent(scheduleId)}`
    );
    return answer.schedule;
  }

  /**
   * Pause/resume, rename, re-time or re-parameterise a schedule (a new cron,
   * time zone or resuming computes the next time from now); bad values are a
   * 400 `MLOpsApiError`.
   */
  async updatePipelineSchedule(
    scheduleId: string,
    change: IUpdateScheduleRequest
  ): Promise<IPipelineSchedule> {
    const answer = await this.request<{ schedule: IPipelineSchedule }>(
      'v1',
      `pipelines/schedules/${encodeURIComponent(scheduleId)}`,
      { method: 'PATCH', body: change }
    );
    return answer.schedule;
  }

  /** Delete a schedule (its past runs stay). */
  async deletePipelineSchedule(scheduleId: string): Promise<void> {
    await this.request(
      'v1',
      `pipelines/schedules/${encodeURIComponent(scheduleId)}`,
      { method: 'DELETE' }
    );
  }

  /** Start a run of a schedule now; gives the new run. */
  async runPipelineScheduleNow(scheduleId: string): Promise<IPipelineRun> {
    const answer = await this.request<{ run: IPipelineRun }>(
      'v1',
      `pipelines/schedules/${encodeURIComponent(scheduleId)}/run`,
      { method: 'POST', body: {} }
    );
    return answer.run;
  }

  /** A pipeline run with its steps. */
  async getPipelineRun(runId: string): Promise<IPipelineRun> {
    const answer = await this.request<{ run: IPipelineRun }>(
      'v1',
      `pipelines/runs/${encodeURIComponent(runId)}`
    );
    return answer.run;
  }

  /** Cancel a run (answers once it stopped). */
  async cancelPipelineRun(runId: string): Promise<IPipelineRun> {
    const answer = await this.request<{ run: IPipelineRun }>(
      'v1',
      `pipelines/runs/${encodeURIComponent(runId)}/cancel`,
      { method: 'POST', body: {} }
    );
    return answer.run;
  }

  /** Rerun a run (reusing the outputs of steps that succeeded): the new run. */
  async retryPipelineRun(
    runId: string,
    parameters: Record<string, unknown> = {}
  ): Promise<IPipelineRun> {
    const answer = await this.request<{ run: IPipelineRun }>(
      'v1',
      `pipelines/runs/${encodeURIComponent(runId)}/retry`,
      { method: 'POST', body: { parameters } }
    );
    return answer.run;
  }

  /**
   * A chunk of a log the server writes as it goes (a pipeline step's, a
   * project run's, a job rank's): its text from `offset` (or its last `tail`
   * bytes), where the next read starts (`X-Log-Offset`) and whether its writer
   * ended (the `endedHeader` says `true`).
   */
  async fetchLogChunk(
    path: string,
    endedHeader: string,
    options: ILogRead = {}
  ): Promise<ILogChunk> {
    const url = apiUrl(this.serverSettings.baseUrl, 'v1', path, {
      offset: options.offset,
      tail: options.tail
    });
    let response: Response;
    let text: string;
    try {
      response = await ServerConnection.makeRequest(
        url,
        { method: 'GET' },
        this.serverSettings
      );
      text = await response.text();
    } catch (error) {
      throw networkError(error, url);
    }
    if (!response.ok) {
      throw errorFromResponse(response.status, text, url);
    }
    const next = Number(response.headers.get('X-Log-Offset'));
    return {
      text,
      nextOffset: Number.isFinite(next) ? next : (options.offset ?? 0),
      ended: response.headers.get(endedHeader) === 'true'
    };
  }

  /** A step's log from `offset`, or its last `tail` bytes. */
  getStepLog(
    runId: string,
    step: string,
    options: ILogRead = {}
  ): Promise<IStepLog> {
    return this.fetchLogChunk(
      `pipelines/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step)}/log`,
      'X-Step-Ended',
      options
    );
  }

  /** The executed notebook of a step (readable while it runs), as JSON text. */
  async getStepNotebook(runId: string, step: string): Promise<string> {
    const notebook = await this.request<unknown>(
      'v1',
      `pipelines/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step)}/notebook`
    );
    return JSON.stringify(notebook);
  }

  // ----- MLflow projects -----------------------------------------------------

  /** A project's entry points and typed parameters (`uri` relative to the root). */
  async inspectProject(uri: string): Promise<IProject> {
    const answer = await this.request<{ project: IProject }>(
      'v1',
      'projects/inspect',
      { method: 'POST', body: { uri } }
    );
    return answer.project;
  }

  /** Start an entry point as a tracked run; a 400 names the parameter and line. */
  async runProject(request: IProjectRunRequest): Promise<IProjectRun> {
    const answer = await this.request<{ run: IProjectRun }>(
      'v1',
      'projects/runs',
      { method: 'POST', body: request }
    );
    return answer.run;
  }

  /** A project run's state. */
  async getProjectRun(runId: string): Promise<IProjectRun> {
    const answer = await this.request<{ run: IProjectRun }>(
      'v1',
      `projects/runs/${encodeURIComponent(runId)}`
    );
    return answer.run;
  }

  /** A project run's output from `offset`. */
  getProjectLog(runId: string, offset = 0): Promise<IProjectLog> {
    return this.fetchLogChunk(
      `projects/runs/${encodeURIComponent(runId)}/log`,
      'X-Run-Ended',
      { offset }
    );
  }

  // ----- model registry ------------------------------------------------------

  /** Registered models (each with `latest_versions` and `aliases`). */
  async searchRegisteredModels(filter?: string): Promise<IRegisteredModel[]> {
    return collectPages(async page_token => {
      const answer = await this.request<{
        registered_models?: IRegisteredModel[];
        next_page_token?: string;
      }>('mlflow', 'registered-models/search', {
        query: { filter, max_results: 1000, page_token }
      });
      return {
        items: answer.registered_models ?? [],
        next: answer.next_page_token
      };
    }, 10000);
  }

  /** Every version of a model. */
  async searchModelVersions(name: string): Promise<IModelVersion[]> {
    const filter = `name = ${quoteFilterValue(name)}`;
    return collectPages(async page_token => {
      const answer = await this.request<{
        model_versions?: IModelVersion[];
        next_page_token?: string;
      }>('mlflow', 'model-versions/search', {
        query: { filter, page_token }
      });
      return {
        items: answer.model_versions ?? [],
        next: answer.next_page_token
      };
    }, 100000);
  }

  /** Move a version to a stage. */
  async transitionModelVersionStage(
    name: string,
    version: string,
    stage: string,
    archiveExistingVersions = false
  ): Promise<IModelVersion> {
    const answer = await this.request<{ model_version: IModelVersion }>(
      'mlflow',
      'model-versions/transition-stage',
      {
        method: 'POST',
        body: {
          name,
          version,
          stage,
          archive_existing_versions: archiveExistingVersions
        }
      }
    );
    return answer.model_version;
  }

  /** Point an alias at a version. */
  async setModelAlias(
    name: string,
    alias: string,
    version: string
  ): Promise<void> {
    await this.request('mlflow', 'registered-models/alias', {
      method: 'POST',
      body: { name, alias, version }
    });
  }

  /** Remove an alias. */
  async deleteModelAlias(name: string, alias: string): Promise<void> {
    await this.request('mlflow', 'registered-models/alias', {
      method: 'DELETE',
      query: { name, alias }
    });
  }

  /**
   * Register a run's artifact folder as a new version of `name` (creating the
   * model when it does not exist yet).
   */
  async registerModel(
    name: string,
    runId: string,
    path: string
  ): Promise<IModelVersion> {
    try {
      await this.request('mlflow', 'registered-models/create', {
        method: 'POST',
        body: { name }
      });
    } catch (error) {
      if (
        !(error instanceof MLOpsApiError) ||
        error.errorCode !== 'RESOURCE_ALREADY_EXISTS'
      ) {
        throw error;
      }
    }
    const answer = await this.request<{ model_version: IModelVersion }>(
      'mlflow',
      'model-versions/create',
      {
        method: 'POST',
        body: { name, source: `runs:/${runId}/${path}`, run_id: runId }
      }
    );
    return answer.model_version;
  }

  /** A version's lineage: its run and source notebook. */
  getModelLineage(name: string, version: string): Promise<IModelLineage> {
    return this.request('v1', 'registry/lineage', {
      query: { name, version }
    });
  }
}
