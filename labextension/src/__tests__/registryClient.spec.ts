import { ServerConnection } from '@jupyterlab/services';

import { MLOpsApiError, MLOpsClient, quoteFilterValue } from '../api';

interface IExchange {
  url: string;
  method: string;
  body: string | null;
}

/** A client whose network answers from a function (only fetch is stubbed). */
function clientWith(
  answer: (exchange: IExchange) => {
    status: number;
    body: string;
    headers?: Record<string, string>;
  }
): { client: MLOpsClient; exchanges: IExchange[] } {
  const exchanges: IExchange[] = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input as Request;
    const exchange = {
      url: (typeof input === 'string' ? input : request.url).replace(
        /[?&]\d{10,}$/,
        ''
      ),
      method: init?.method ?? request.method ?? 'GET',
      body:
        (init?.body as string | undefined) ??
        (request.text ? await request.text() : null) ??
        null
    };
    exchanges.push(exchange);
    const { status, body, headers } = answer(exchange);
    return new Response(body, { status, headers });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://h/base/',
    fetch: fetchFn as any,
    token: 't'
  });
  return { client: new MLOpsClient(settings), exchanges };
}

const RUN = {
  run_id: 'r1',
  name: 'p',
  status: 'RUNNING',
  progress: { done: 0, total: 1, counts: {} },
  steps: []
};

describe('pipelines routes', () => {
  it('submits, cancels and retries under mlops/api/v1/pipelines', async () => {
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: JSON.stringify({ run: RUN })
    }));
    await client.submitPipeline({
      path: 'a/b.pipeline.yaml',
      parameters: { C: 0.5 },
      target: 'local'
    });
    await client.cancelPipelineRun('r/1');
    await client.retryPipelineRun('r1', { C: 1 });
    expect(exchanges.map(e => `${e.method} ${e.url}`)).toEqual([
      'POST http://h/base/mlops/api/v1/pipelines/runs',
      'POST http://h/base/mlops/api/v1/pipelines/runs/r%2F1/cancel',
      'POST http://h/base/mlops/api/v1/pipelines/runs/r1/retry'
    ]);
    expect(JSON.parse(exchanges[0].body!)).toEqual({
      path: 'a/b.pipeline.yaml',
      parameters: { C: 0.5 },
      target: 'local'
    });
    expect(JSON.parse(exchanges[2].body!)).toEqual({ parameters: { C: 1 } });
  });

  it('reads a log chunk with its next offset and end flag', async () => {
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: 'line 1\n',
      headers: { 'X-Log-Offset': '107', 'X-Step-Ended': 'true' }
    }));
    const chunk = await client.getStepLog('r1', 'train step', { offset: 100 });
    expect(chunk).toEqual({ text: 'line 1\n', nextOffset: 107, ended: true });
    expect(exchanges[0].url).toBe(
      'http://h/base/mlops/api/v1/pipelines/runs/r1/steps/train%20step/log?offset=100'
    );
  });

  it("reads a step's executed notebook as JSON text", async () => {
    const nb = { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 };
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: JSON.stringify(nb)
    }));
    const text = await client.getStepNotebook('r1', 'train');
    expect(JSON.parse(text)).toEqual(nb);
    expect(exchanges[0].url).toBe(
      'http://h/base/mlops/api/v1/pipelines/runs/r1/steps/train/notebook'
    );
  });

  it('turns a refused log read into MLOpsApiError', async () => {
    const { client } = clientWith(() => ({
      status: 404,
      body: JSON.stringify({
        error_code: 'RESOURCE_DOES_NOT_EXIST',
        message: "Pipeline run 'x' does not exist."
      })
    }));
    await expect(client.getStepLog('x', 's')).rejects.toMatchObject({
      errorCode: 'RESOURCE_DOES_NOT_EXIST',
      status: 404
    });
  });
});

describe('registry routes', () => {
  it('registers into an existing model: the 400 of create is ignored', async () => {
    const { client, exchanges } = clientWith(({ url }) =>
      url.endsWith('registered-models/create')
        ? {
            status: 400,
            body: JSON.stringify({
              error_code: 'RESOURCE_ALREADY_EXISTS',
              message: 'exists'
            })
          }
        : {
            status: 200,
            body: JSON.stringify({
              model_version: { name: 'm', version: '2' }
            })
          }
    );
    const v = await client.registerModel('m', 'run1', 'model');
    expect(v.version).toBe('2');
    expect(JSON.parse(exchanges[1].body!)).toEqual({
      name: 'm',
      source: 'runs:/run1/model',
      run_id: 'run1'
    });
  });

  it('does not hide other errors of create', async () => {
    const { client, exchanges } = clientWith(() => ({
      status: 403,
      body: JSON.stringify({ error_code: 'PERMISSION_DENIED', message: 'no' })
    }));
    const failure = client.registerModel('m', 'run1', 'model');
    await expect(failure).rejects.toBeInstanceOf(MLOpsApiError);
    await expect(failure).rejects.toMatchObject({ status: 403 });
    expect(exchanges).toHaveLength(1);
  });

  it('searches versions of one model with a quoted filter', async () => {
    const { client, exchanges } = clientWith(() => ({
      status: 200,
      body: JSON.stringify({ model_versions: [{ name: "o'k", version: '1' }] })
    }));
    const versions = await client.searchModelVersions("o'k");
    expect(versions).toHaveLength(1);
    const url = new URL(exchanges[0].url);
    expect(url.pathname).toBe(
      '/base/mlops/api/2.0/mlflow/model-versions/search'
    );
    expect(url.searchParams.get('filter')).toBe("name = 'o\\'k'");
  });

  it('removes an alias with DELETE and query fields', async () => {
    const { client, exchanges } = clientWith(() => ({ status: 200, body: '' }));
    await client.deleteModelAlias('m', 'champion');
    expect(exchanges[0].method).toBe('DELETE');
    expect(exchanges[0].url).toBe(
      'http://h/base/mlops/api/2.0/mlflow/registered-models/alias?name=m&alias=champion'
    );
  });

  it('quotes filter values', () => {
    expect(quoteFilterValue('plain')).toBe("'plain'");
    expect(quoteFilterValue("it's")).toBe("'it\\'s'");
    expect(quoteFilterValue('a\\b')).toBe("'a\\\\b'");
  });
});
