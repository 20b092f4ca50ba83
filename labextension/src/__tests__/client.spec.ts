import { ServerConnection } from '@jupyterlab/services';

import { apiUrl, MLOpsApiError, MLOpsClient } from '../api';

describe('apiUrl', () => {
  it('puts MLflow routes under mlops/api/2.0/mlflow', () => {
    expect(
      apiUrl('http://localhost:8888/', 'mlflow', 'experiments/search')
    ).toBe('http://localhost:8888/mlops/api/2.0/mlflow/experiments/search');
  });

  it('puts our routes under mlops/api/v1 and keeps an odd base URL', () => {
    expect(
      apiUrl('http://h/a%40b/', 'v1', 'metrics/series', {
        run_id: 'r 1',
        metric_key: 'loss/train',
        max_points: 500,
        start_step: undefined
      })
    ).toBe(
      'http://h/a%40b/mlops/api/v1/metrics/series?run_id=r%201&metric_key=loss%2Ftrain&max_points=500'
    );
  });

  it('repeats keys for arrays', () => {
    expect(apiUrl('/', 'mlflow', 'x', { run_ids: ['a', 'b'] })).toBe(
      '/mlops/api/2.0/mlflow/x?run_ids=a&run_ids=b'
    );
  });
});

/** A recorded request and the canned answer the network gives it. */
interface IExchange {
  url: string;
  method: string;
  body: string | null;
}

/**
 * A client whose network is a function of the request: stands in for the
 * browser's fetch only (the client code under test is real).
 */
function clientWith(
  answer: (exchange: IExchange) => { status: number; body: string }
): { client: MLOpsClient; exchanges: IExchange[] } {
  const exchanges: IExchange[] = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input as Request;
    const exchange = {
      url: typeof input === 'string' ? input : request.url,
      method: init?.method ?? request.method ?? 'GET',
      body:
        (init?.body as string | undefined) ??
        (request.text ? await request.text() : null) ??
        null
    };
    // ServerConnection adds a cache-busting `?<time>`; the tests ignore it.
    exchange.url = exchange.url.replace(/[?&]\d{10,}$/, '');
    exchanges.push(exchange);
    const { status, body } = answer(exchange);
    return new Response(body, { status });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    fetch: fetchFn as any,
    token: 'secret'
  });
  return { client: new MLOpsClient(settings), exchanges };
}

describe('MLOpsClient', () => {
  it('POSTs experiment searches and follows page tokens', async () => {
    const { client, exchanges } = clientWith(({ body }) => {
      const request = JSON.parse(body || '{}');
      return request.page_token
        ? {
            status: 200,
            body: JSON.stringify({
              experiments: [{ experiment_id: '2', name: 'b' }]
            })
          }
        : {
            status: 200,
            body: JSON.stringify({
              experiments: [{ experiment_id: '1', name: 'a' }],
              next_page_token: 'tok'
            })
          };
    });
    const experiments = await client.listExperiments({
      view_type: 'ACTIVE_ONLY'
    });
    expect(experiments.map(e => e.name)).toEqual(['a', 'b']);
    expect(exchanges).toHaveLength(2);
    expect(exchanges[0].method).toBe('POST');
    expect(exchanges[0].url).toBe(
      'http://localhost:8888/lab-base/mlops/api/2.0/mlflow/experiments/search'
    );
    expect(JSON.parse(exchanges[1].body!)).toEqual({
      max_results: 1000,
      view_type: 'ACTIVE_ONLY',
      page_token: 'tok'
    });
  });

  it('sends GET fields in the query string and unwraps the run', async () => {
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: JSON.stringify({
        run: { info: { run_id: 'abc', experiment_id: '1' } }
      })
    }));
    const run = await client.getRun('abc');
    expect(run.info.run_id).toBe('abc');
    expect(exchanges[0].method).toBe('GET');
    expect(exchanges[0].url).toBe(
      'http://localhost:8888/lab-base/mlops/api/2.0/mlflow/runs/get?run_id=abc'
    );
  });

  it('asks v1 for down-sampled series', async () => {
    const points = [
      { step: 0, timestamp: 1, value: 2, min: 1, max: 3, count: 4 }
    ];
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: JSON.stringify({ points })
    }));
    const series = await client.getMetricSeries({
      run_id: 'r',
      metric_key: 'loss',
      max_points: 100,
      x_axis: 'step'
    });
    expect(series.points).toEqual(points);
    expect(exchanges[0].url).toBe(
      'http://localhost:8888/lab-base/mlops/api/v1/metrics/series?run_id=r&metric_key=loss&max_points=100&x_axis=step'
    );
  });

  it("asks v1 for many runs' series in one request", async () => {
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: JSON.stringify({ series: [{ run_id: 'a', points: [] }] })
    }));
    const answer = await client.getMetricSeriesBulk({
      run_ids: ['a', 'b c'],
      metric_key: 'loss',
      max_points: 10
    });
    expect(answer.series[0].run_id).toBe('a');
    expect(exchanges[0].url).toBe(
      'http://localhost:8888/lab-base/mlops/api/v1/metrics/series-bulk?metric_key=loss&max_points=10&run_ids=a&run_ids=b%20c'
    );
  });

  it("builds artifact proxy URLs from the run's artifact URI", () => {
    const { client } = clientWith(() => ({ status: 200, body: '{}' }));
    expect(
      client.artifactUrl(
        {
          run_id: 'r1',
          experiment_id: '3',
          artifact_uri: 'mlflow-artifacts:/3/r1/artifacts'
        },
        'plots/a b.png'
      )
    ).toBe(
      'http://localhost:8888/lab-base/mlops/api/2.0/mlflow-artifacts/artifacts/3/r1/artifacts/plots/a%20b.png'
    );
    expect(
      client.artifactUrl({ run_id: 'r2', experiment_id: '4' }, 'x.txt')
    ).toBe(
      'http://localhost:8888/lab-base/mlops/api/2.0/mlflow-artifacts/artifacts/4/r2/artifacts/x.txt'
    );
  });

  it('turns an MLflow error answer into a typed error', async () => {
    const { client } = clientWith(() => ({
      status: 400,
      body: JSON.stringify({
        error_code: 'RESOURCE_ALREADY_EXISTS',
        message: "Experiment 'a' already exists."
      })
    }));
    const failure = client.createExperiment({ name: 'a' });
    await expect(failure).rejects.toBeInstanceOf(MLOpsApiError);
    await expect(failure).rejects.toMatchObject({
      errorCode: 'RESOURCE_ALREADY_EXISTS',
      status: 400
    });
  });

  it('treats an empty 200 body as an empty object', async () => {
    const { client, exchanges } = clientWith(() => ({ status: 200, body: '' }));
    await expect(client.deleteExperiment('7')).resolves.toBeUndefined();
    expect(JSON.parse(exchanges[0].body!)).toEqual({ experiment_id: '7' });
  });

  it('reports a failed connection as NETWORK_ERROR', async () => {
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: (() => Promise.reject(new TypeError('Failed to fetch'))) as any
    });
    const client = new MLOpsClient(settings);
    await expect(
      client.searchRuns({ experiment_ids: ['1'] })
    ).rejects.toMatchObject({
      errorCode: 'NETWORK_ERROR',
      status: 0
    });
  });
});
