import { ServerConnection } from '@jupyterlab/services';

import { IPipelineRun, IRun, MLOpsClient } from '../api';
import { RunDetailModel } from '../panels/runDetailModel';
import { PipelineRunModel } from '../pipelines/runModel';

type Handler = (
  query: URLSearchParams,
  body: any,
  method: string
) => Response | Promise<Response>;

/**
 * An in-memory stand-in for the server's answers (the network only: the
 * client and the models under test are the real ones).
 */
class FakeServer {
  routes = new Map<string, Handler>();
  requests: string[] = [];

  settings(): ServerConnection.ISettings {
    return ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: (async (input: RequestInfo, init?: RequestInit) => {
        const request = typeof input === 'string' ? null : input;
        const url = request ? request.url : (input as string);
        const method = init?.method ?? request?.method ?? 'GET';
        const text = init?.body
          ? String(init.body)
          : request
            ? await request.text()
            : '';
        const path = url.replace(/^http:\/\/localhost:8888\/mlops\/api\//, '');
        const [endpoint, query] = path.split('?');
        this.requests.push(endpoint);
        const handler = this.routes.get(endpoint);
        if (!handler) {
          return new Response('<html>404</html>', { status: 404 });
        }
        return handler(
          new URLSearchParams(query ?? ''),
          text ? JSON.parse(text) : {},
          method
        );
      }) as any
    });
  }

  count(endpoint: string): number {
    return this.requests.filter(r => r === endpoint).length;
  }
}

/** Resolve once `predicate` holds after a `changed` emission (60 s deadline). */
function until(
  model: { changed: { connect: any; disconnect: any } },
  predicate: () => boolean
): Promise<void> {
  if (predicate()) {
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('deadline')), 60_000);
    const check = () => {
      if (predicate()) {
        clearTimeout(timer);
        model.changed.disconnect(check);
        resolve();
      }
    };
    model.changed.connect(check);
  });
}

function trackedRun(status: string, metricStep: number): IRun {
  return {
    info: {
      run_id: 'r1',
      experiment_id: '1',
      status: status as any,
      start_time: 1000,
      run_name: 'first'
    },
    data: {
      metrics: [{ key: 'loss', value: 0.5, step: metricStep, timestamp: 5 }]
    }
  };
}

describe('RunDetailModel', () => {
  let server: FakeServer;
  let current: IRun;
  let model: RunDetailModel;
  let refreshMs: number;

  beforeEach(() => {
    server = new FakeServer();
    current = trackedRun('RUNNING', 1);
    refreshMs = 500;
    server.routes.set('2.0/mlflow/runs/get', () =>
      Response.json({ run: current })
    );
    server.routes.set('2.0/mlflow/runs/search', (_q, body) =>
      Response.json({
        runs: body.filter.includes("'r1'")
          ? [
              {
                info: { run_id: 'c1', experiment_id: '1', run_name: 'child' }
              }
            ]
          : []
      })
    );
    server.routes.set('v1/metrics/series', q =>
      Response.json({
        points: [
          { step: 0, timestamp: 1, value: 1 },
          { step: 1, timestamp: 2, value: Number(q.get('max_points')) }
        ]
      })
    );
    model = new RunDetailModel({
      client: new MLOpsClient(server.settings()),
      runId: 'r1',
      refreshMs: () => refreshMs
    });
  });

  afterEach(() => model.dispose());

  it('reads the run, its children and its series', async () => {
    await model.start();
    await until(
      model,
      () => model.series('loss') !== undefined && model.children.length > 0
    );
    expect(model.run?.info.run_name).toBe('first');
    expect(model.error).toBeNull();
    expect(model.active).toBe(true);
    expect(model.children.map(c => c.info.run_id)).toEqual(['c1']);
    const series = model.series('loss')!;
    expect(series.x).toEqual([0, 1]);
    expect(series.y).toEqual([1, 1000]);
  });

  it('polls while the run is active and stands by once it ended', async () => {
    await model.start();
    await until(model, () => model.series('loss') !== undefined);
    current = trackedRun('FINISHED', 2);
    await until(model, () => model.run?.info.status === 'FINISHED');
    expect(model.active).toBe(false);
    // New points re-read the series.
    await until(model, () => server.count('v1/metrics/series') >= 2);
  });

  it('reads the series again for another x-axis only', async () => {
    refreshMs = 0;
    await model.start();
    await until(model, () => model.series('loss') !== undefined);
    const reads = server.count('v1/metrics/series');
    await model.refresh();
    expect(server.count('v1/metrics/series')).toBe(reads);
    model.xAxis = 'wall';
    await until(model, () => server.count('v1/metrics/series') > reads);
  });

  it('tells a failed read and keeps the run', async () => {
    refreshMs = 0;
    await model.start();
    await until(model, () => model.run !== null);
    server.routes.set('2.0/mlflow/runs/get', () =>
      Response.json(
        { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Run r1 not found' },
        { status: 404 }
      )
    );
    await model.refresh();
    expect(model.error).toContain('Run r1 not found');
    expect(model.run).not.toBeNull();
  });
});

function pipelineRun(status: string, stepStatus: string): IPipelineRun {
  return {
    run_id: 'p1',
    name: 'nightly',
    status: status as any,
    progress: { done: 0, total: 2, counts: {} },
    steps: [
      {
        name: 'prep',
        status: 'SUCCEEDED',
        attempt: 1,
        kind: 'script',
        depends_on: []
      },
      {
        name: 'train',
        status: stepStatus as any,
        attempt: 1,
        kind: 'script',
        depends_on: ['prep']
      }
    ]
  };
}

describe('PipelineRunModel', () => {
  let server: FakeServer;
  let current: IPipelineRun;
  let logs: Record<string, string>;
  let ended: boolean;
  let model: PipelineRunModel;

  beforeEach(() => {
    server = new FakeServer();
    current = pipelineRun('RUNNING', 'RUNNING');
    logs = { prep: 'prep done\n', train: 'epoch 1\n' };
    ended = false;
    server.routes.set('v1/pipelines/runs/p1', () =>
      Response.json({ run: current })
    );
    for (const step of ['prep', 'train']) {
      server.routes.set(`v1/pipelines/runs/p1/steps/${step}/log`, q => {
        const offset = Number(q.get('offset') ?? 0);
        const text = logs[step].slice(offset);
        return new Response(text, {
          headers: {
            'X-Log-Offset': String(logs[step].length),
            'X-Step-Ended': String(step === 'prep' || ended)
          }
        });
      });
    }
    server.routes.set('v1/pipelines/runs/p1/cancel', () => {
      current = { ...current, status: 'CANCELING' };
      return Response.json({ run: current });
    });
    server.routes.set('v1/pipelines/runs/p1/retry', () =>
      Response.json({
        run: { ...pipelineRun('QUEUED', 'PENDING'), run_id: 'p2' }
      })
    );
    model = new PipelineRunModel({
      client: new MLOpsClient(server.settings()),
      runId: 'p1',
      pollMs: 20
    });
  });

  afterEach(() => model.dispose());

  it('follows the running step and its log until the run ends', async () => {
    await model.start();
    await until(model, () => model.log === 'epoch 1\n');
    expect(model.step).toBe('train');
    expect(model.active).toBe(true);
    expect(model.ended).toBe(false);
    logs.train += 'epoch 2\n';
    await until(model, () => model.log === 'epoch 1\nepoch 2\n');
    current = pipelineRun('SUCCEEDED', 'SUCCEEDED');
    ended = true;
    await until(model, () => model.ended);
    expect(model.active).toBe(false);
    expect(model.logEnded).toBe(true);
  });

  it('shows another step from its start', async () => {
    await model.start();
    await until(model, () => model.step === 'train');
    model.selectStep('prep');
    expect(model.log).toBe('');
    await until(model, () => model.log === 'prep done\n');
    expect(model.logEnded).toBe(true);
  });

  it('cancels and retries through the server', async () => {
    await model.start();
    await until(model, () => model.run !== null);
    const busy: boolean[] = [];
    model.changed.connect(() => busy.push(model.busy));
    await model.cancel();
    expect(busy).toContain(true);
    expect(model.busy).toBe(false);
    expect(server.count('v1/pipelines/runs/p1/cancel')).toBe(1);
    const next = await model.retry();
    expect(next.run_id).toBe('p2');
  });

  it('tells a failed read of the run', async () => {
    server.routes.set('v1/pipelines/runs/p1', () =>
      Response.json(
        { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'No run p1' },
        { status: 404 }
      )
    );
    await model.start();
    await until(model, () => model.error !== '');
    expect(model.error).toContain('No run p1');
    expect(model.run).toBeNull();
  });
});
