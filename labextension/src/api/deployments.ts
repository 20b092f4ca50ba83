/**
 * Deployments over REST (`mlops/api/v1/deployments/...`,
 * docs/deployments.md), on top of `MLOpsClient`: list, create, get, update,
 * rollback, delete, logs, metrics scrapes, and one request sent to a
 * deployment through the server (`invoke`: the browser may not reach it).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { API_ROOT, apiUrl, MLOpsClient } from './client';
import {
  ENDPOINT_NOT_FOUND,
  errorFromResponse,
  MLOpsApiError,
  networkError
} from './errors';
import {
  ICreateDeploymentRequest,
  IDeployment,
  IDeploymentMetrics,
  IDeploymentTarget,
  IInvokeResponse,
  IUpdateDeploymentRequest
} from './deploymentTypes';

const enc = encodeURIComponent;

/** The deployment routes. */
export class DeploymentsApi {
  constructor(readonly client: MLOpsClient) {}

  /** Deployments and the targets they can go to. */
  async list(): Promise<{
    deployments: IDeployment[];
    targets: IDeploymentTarget[];
  }> {
    const answer = await this.client.request<{
      deployments?: IDeployment[];
      targets?: IDeploymentTarget[];
    }>('v1', 'deployments');
    return {
      deployments: answer.deployments ?? [],
      targets: answer.targets ?? []
    };
  }

  /** A deployment with its history. */
  async get(name: string): Promise<IDeployment> {
    const answer = await this.client.request<{ deployment: IDeployment }>(
      'v1',
      `deployments/${enc(name)}`
    );
    return answer.deployment;
  }

  /** Create a deployment (answers at once, `STARTING`). */
  async create(request: ICreateDeploymentRequest): Promise<IDeployment> {
    const answer = await this.client.request<{ deployment: IDeployment }>(
      'v1',
      'deployments',
      { method: 'POST', body: request }
    );
    return answer.deployment;
  }

  /** Roll to another model or change replicas (409 while a rollout runs). */
  async update(
    name: string,
    change: IUpdateDeploymentRequest
  ): Promise<IDeployment> {
    const answer = await this.client.request<{ deployment: IDeployment }>(
      'v1',
      `deployments/${enc(name)}`,
      { method: 'PATCH', body: change }
    );
    return answer.deployment;
  }

  /** Serve the previously served version again. */
  async rollback(name: string): Promise<IDeployment> {
    const answer = await this.client.request<{ deployment: IDeployment }>(
      'v1',
      `deployments/${enc(name)}/rollback`,
      { method: 'POST', body: {} }
    );
    return answer.deployment;
  }

  /** Give a canary all the traffic. */
  async promote(name: string): Promise<IDeployment> {
    const answer = await this.client.request<{ deployment: IDeployment }>(
      'v1',
      `deployments/${enc(name)}/promote`,
      { method: 'POST', body: {} }
    );
    return answer.deployment;
  }

  /** Stop and delete a deployment. */
  async remove(name: string): Promise<void> {
    await this.client.request('v1', `deployments/${enc(name)}`, {
      method: 'DELETE'
    });
  }

  /** One scrape of the deployment's counters and latency histograms. */
  metrics(name: string): Promise<IDeploymentMetrics> {
    return this.client.request('v1', `deployments/${enc(name)}/metrics`);
  }

  /**
   * A scrape, or null when there is none: the deployment is gone or does
   * not serve yet, or the server has no metrics route (`history.available`
   * is then cleared, so it is not asked again).
   */
  async scrape(
    name: string,
    history: { available: boolean }
  ): Promise<IDeploymentMetrics | null> {
    if (!history.available) {
      return null;
    }
    try {
      return await this.metrics(name);
    } catch (error) {
      if (
        error instanceof MLOpsApiError &&
        error.errorCode === ENDPOINT_NOT_FOUND
      ) {
        history.available = false;
        return null;
      }
      throw error;
    }
  }

  /**
   * Send `body` to the deployment (MLflow's `/invocations`, or V2's infer);
   * resolves to its answer whatever its status (the server relays it).
   */
  async invoke(
    name: string,
    body: unknown,
    protocol: 'mlflow' | 'v2' = 'mlflow'
  ): Promise<IInvokeResponse> {
    const answer = await this.client.request<{
      status_code: number;
      content_type?: string;
      body?: string;
    }>('v1', `deployments/${enc(name)}/invoke`, {
      method: 'POST',
      body: { protocol, body }
    });
    return {
      status: answer.status_code,
      contentType: answer.content_type ?? '',
      body: answer.body ?? ''
    };
  }

  /** The tail of the deployment's processes' logs. */
  async logs(name: string, tail = 65536): Promise<string> {
    const settings = this.client.serverSettings;
    const url = apiUrl(
      settings.baseUrl,
      'v1',
      `deployments/${enc(name)}/logs`,
      {
        tail
      }
    );
    let response: Response;
    let text: string;
    try {
      response = await ServerConnection.makeRequest(
        url,
        { method: 'GET' },
        settings
      );
      text = await response.text();
    } catch (error) {
      throw networkError(error, url);
    }
    if (!response.ok) {
      throw errorFromResponse(response.status, text, url);
    }
    return text;
  }

  /**
   * A file of a registered model version (`serving_input_example.json`,
   * `MLmodel`) as text, or null when the version has no such file.
   */
  async modelFile(
    name: string,
    version: string,
    path: string
  ): Promise<string | null> {
    const settings = this.client.serverSettings;
    const url =
      URLExt.join(settings.baseUrl, API_ROOT, 'model-versions/get-artifact') +
      `?name=${enc(name)}&version=${enc(version)}&path=${enc(path)}`;
    let response: Response;
    let text: string;
    try {
      response = await ServerConnection.makeRequest(
        url,
        { method: 'GET' },
        settings
      );
      text = await response.text();
    } catch (error) {
      throw networkError(error, url);
    }
    if (response.status === 404) {
      return null;
    }
    if (!response.ok) {
      throw errorFromResponse(response.status, text, url);
    }
    return text;
  }
}
