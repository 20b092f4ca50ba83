import { ServerConnection } from '@jupyterlab/services';
import { StateDB } from '@jupyterlab/statedb';

import { MLOpsClient } from '../api';
import { IExperiment, IRun } from '../api/types';
import { RunsModel } from '../model';
import { keepRunsView, parseRunsView, runsViewKey } from '../panels/runsView';

/**
 * An in-memory stand-in for the server's answers (the network only: the
 * client and model under test are the real ones).
 */
class FakeServer {
  experiments: IExperiment[] = [];
  runs: IRun[] = [];
  failExperiments: { status: number; body: string } | null = null;
  requests: string[] = [];
  /** Bodies of runs/search requests. */
  searches: any[] = [];
  /** When set, runs/search answers wait for it (a slow server). */
  gate: Promise<void> | null = null;
  /** When set, v1/runs/changes answers `changed` at this server time. */
  clock: number | null = null;
  changed: IRun[] = [];

  settings(): ServerConnection.ISettings {
    return ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: (async (input: RequestInfo, init?: RequestInit) => {
        const request = typeof input === 'string' ? null : input;
        const body = init?.body
          ? String(init.body)
          : request
            ? await request.text()
            : '';
        return this.answer(request ? request.url : (input as string), body);
      }) as any
    });
  }

  private async answer(url: string, text: string): Promise<Response> {
    const path = url.replace(/^http:\/\/localhost:8888\/mlops\/api\//, '');
    const endpoint = path.split('?')[0];
    this.requests.push(endpoint);
    const body = text ? JSON.parse(text) : {};
    if (endpoint === '2.0/mlflow/experiments/search') {
      if (this.failExperiments) {
        return new Response(this.failExperiments.body, {
          status: this.failExperiments.status
        });
      }
      return Response.json({ experiments: this.experiments });
    }
    if (endpoint === '2.0/mlflow/runs/search') {
      if (this.gate) {
        await this.gate;
      }
      if (body.filter && body.filter.includes('>>')) {
        return Response.json(
          {
            error_code: 'INVALID_PARAMETER_VALUE',
            message: `Invalid filter '${body.filter}'`
          },
          { status: 400 }
        );
      }
      this.searches.push(body);
      const matching = this.search(body);
      const offset = Number(body.page_token ?? 0);
      const end = offset + body.max_results;
      return Response.json({
        runs: matching.slice(offset, end).map(r => narrow(r, body.data_keys)),
        next_page_token: end < matching.length ? String(end) : undefined
      });
    }
    if (endpoint === 'v1/runs/changes' && this.clock !== null) {
      const runs =
        body.since >= 2 ** 52
          ? []
          : this.changed.filter(r =>
              body.experiment_ids.includes(r.info.experiment_id)
            );
      return Response.json({ runs, now: this.clock, truncated: false });
    }
    if (endpoint === 'v1/runs/count') {
      return Response.json({ count: this.search(body).length });
    }
    if (endpoint === '2.0/mlflow/experiments/create') {
      const id = String(this.experiments.length + 100);
      this.experiments.push({ experiment_id: id, name: body.name });
      return Response.json({ experiment_id: id });
    }
    return new Response('<html>404</html>', { status: 404 });
  }

  /** The runs a search finds, in its order (the few filters the model sends). */
  private search(body: any): IRun[] {
    const ids: string[] = body.experiment_ids;
    const parentOf = (r: IRun) =>
      r.data?.tags?.find(t => t.key === 'mlflow.parentRunId')?.value;
    let found = this.runs.filter(r => ids.includes(r.info.experiment_id));
    const filter: string = body.filter ?? '';
    if (filter.includes('IS NULL')) {
      found = found.filter(r => !parentOf(r));
    }
    const within = /IN \((.*)\)/.exec(filter);
    if (within) {
      const parents = within[1].split(', ').map(x => x.slice(1, -1));
      found = found.filter(r => parents.includes(parentOf(r) ?? ''));
    }
    const metric = /^metrics\.`(.+)` (ASC|DESC)$/.exec(
      body.order_by?.[0] ?? ''
    );
    const value = (r: IRun) =>
      Number(
        r.data?.metrics?.find(m => m.key === metric?.[1])?.value ?? -Infinity
      );
    return found.sort((a, b) =>
      metric
        ? (value(a) - value(b)) * (metric[2] === 'DESC' ? -1 : 1)
        : (b.info.start_time ?? 0) - (a.info.start_time ?? 0)
    );
  }
}

/** A run with only the `data_keys` asked for, as the server answers. */
function narrow(r: IRun, keys?: Record<string, string[]>): IRun {
  if (!keys) {
    return r;
  }
  const pick = (kind: 'params' | 'metrics' | 'tags') =>
    (r.data?.[kind] as { key: string }[] | undefined)?.filter(
      x => !keys[kind] || keys[kind].includes(x.key)
    );
  return {
    info: r.info,
    data: {
      params: pick('params') as any,
      metrics: pick('metrics') as any,
      tags: pick('tags') as any
    }
  };
}

function run(id: string, experimentId: string, start: number): IRun {
  return {
    info: {
      run_id: id,
      experiment_id: experimentId,
      status: 'RUNNING',
      start_time: start
    }
  };
}

describe('RunsModel', () => {
  let server: FakeServer;
  let model: RunsModel;

  beforeEach(() => {
    server = new FakeServer();
    server.experiments = [
      { experiment_id: '0', name: 'Default', last_update_time: 10 },
      { experiment_id: '1', name: 'zeta', last_update_time: 30 },
      { experiment_id: '2', name: 'alpha', last_update_time: 20 }
    ];
    server.runs = [
      run('r1', '1', 100),
      run('r2', '1', 200),
      run('r3', '2', 50)
    ];
    model = new RunsModel({ client: new MLOpsClient(server.settings()) });
  });

  afterEach(() => {
    model.dispose();
  });

  it('starts empty and idle', () => {
    expect(model.experiments).toEqual([]);
    expect(model.experimentsState).toBe('idle');
    expect(model.selectedExperimentId).toBeNull();
    expect(model.refreshInterval).toBe(5000);
  });

  it('lists experiments by name and shows the latest-updated one', async () => {
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(model.experiments.map(e => e.name)).toEqual([
      'alpha',
      'Default',
      'zeta'
    ]);
    expect(model.experimentsState).toBe('ready');
    expect(model.selectedExperimentId).toBe('1');
    expect(model.runs.map(r => r.info.run_id).sort()).toEqual(['r1', 'r2']);
    expect(model.runsState).toBe('ready');
    expect(model.lastUpdated).not.toBeNull();
    expect(changes).toBeGreaterThan(0);
  });

  it('keeps a chosen experiment across refreshes', async () => {
    await model.refresh();
    model.selectExperiment('2');
    expect(model.runsState).toBe('loading');
    await model.refresh();
    server.experiments.push({
      experiment_id: '9',
      name: 'newest',
      last_update_time: 999
    });
    await model.refresh();
    expect(model.selectedExperimentId).toBe('2');
    expect(model.runs.map(r => r.info.run_id)).toEqual(['r3']);
  });

  it('falls back to the latest experiment when the shown one is deleted', async () => {
    await model.refresh();
    model.selectExperiment('2');
    await model.refresh();
    server.experiments = server.experiments.filter(
      e => e.experiment_id !== '2'
    );
    await model.refresh();
    expect(model.selectedExperimentId).toBe('1');
  });

  it('picks up new runs on the next refresh', async () => {
    await model.refresh();
    server.runs.push(run('r4', '1', 300));
    await model.refresh();
    expect(model.runs.map(r => r.info.run_id)).toContain('r4');
  });

  it('polls only the runs changed since the last poll', async () => {
    server.clock = 10_000;
    await model.refresh();
    expect(model.runs.map(r => r.info.run_id)).toEqual(['r2', 'r1']);
    // Nothing changed: no page, no count is read.
    server.requests = [];
    await model.refresh();
    expect(server.requests).toContain('v1/runs/changes');
    expect(server.requests).not.toContain('2.0/mlflow/runs/search');
    expect(server.requests).not.toContain('v1/runs/count');
    // A shown run changed: replaced in place.
    server.changed = [
      {
        ...run('r1', '1', 100),
        data: { metrics: [{ key: 'acc', value: 0.9, timestamp: 1, step: 1 }] }
      }
    ];
    server.requests = [];
    await model.refresh();
    expect(server.requests).not.toContain('2.0/mlflow/runs/search');
    const r1 = model.runs.find(r => r.info.run_id === 'r1');
    expect(r1?.data?.metrics?.[0].value).toBe(0.9);
    // A new run: the pages in view are read again.
    const fresh = run('r9', '1', 20_000);
    server.runs.push(fresh);
    server.changed = [fresh];
    server.requests = [];
    await model.refresh();
    expect(server.requests).toContain('2.0/mlflow/runs/search');
    expect(model.runs.map(r => r.info.run_id)).toEqual(['r9', 'r2', 'r1']);
    expect(model.runCount).toBe(3);
  });

  it('reads pages as rows scroll into view, in the server order, with the true count', async () => {
    server.runs = [];
    for (let i = 0; i < 250; i++) {
      const r = run(`m${i}`, '1', 1000 + i);
      r.data = {
        metrics: [{ key: 'acc', value: (i * 37) % 250, timestamp: 1 }]
      };
      server.runs.push(r);
    }
    model.pageSize = 100;
    await model.refresh();
    expect(model.runCount).toBe(250);
    expect(model.rowCount).toBe(250);
    expect(model.rowAt(0)?.run.info.run_id).toBe('m249');
    expect(model.rowAt(150)).toBeNull();
    const read = new Promise<void>(resolve => {
      const done = () => {
        if (model.rowAt(249)) {
          model.changed.disconnect(done);
          resolve();
        }
      };
      model.changed.connect(done);
    });
    model.setViewport(240, 250);
    await read;
    expect(model.rowAt(249)?.run.info.run_id).toBe('m0');
    // Sorting is the server's, over all runs: the best run comes first.
    await model.setSort({ column: 'metrics.acc', descending: true });
    const best = server.runs.find(r => r.data?.metrics?.[0].value === 249)!;
    expect(model.rowAt(0)?.run.info.run_id).toBe(best.info.run_id);
    // A refresh reads the count, the first page and the rows in view only
    // (a page: its runs, then their child runs).
    await model.setViewport(0, 20);
    server.requests = [];
    await model.refresh();
    expect(
      server.requests.filter(r => r === '2.0/mlflow/runs/search').length
    ).toBeLessThanOrEqual(2);
  });

  it('reads only the columns shown (lazyData), again for a new column, and no count for a sort', async () => {
    for (const [i, r] of server.runs.entries()) {
      r.data = {
        params: [{ key: 'p', value: `p${i}` }],
        metrics: [
          { key: 'acc', value: i, timestamp: 1 },
          { key: 'loss', value: 9 - i, timestamp: 1 }
        ],
        tags: [
          { key: 'mlflow.user', value: 'ann' },
          { key: 'note', value: 'x' }
        ]
      };
    }
    const tab = new RunsModel({
      client: new MLOpsClient(server.settings()),
      experimentId: '1',
      lazyData: true
    });
    try {
      tab.columns = ['metrics.acc'];
      await tab.refresh();
      expect(tab.runs.map(r => r.info.run_id)).toEqual(['r2', 'r1']);
      expect(server.searches[0].data_keys).toEqual({
        params: [],
        metrics: ['acc'],
        tags: [
          'mlflow.runName',
          'mlflow.user',
          'mlflow.source.name',
          'mlflow.parentRunId'
        ]
      });
      expect(tab.runs[0].data).toEqual({
        params: [],
        metrics: [{ key: 'acc', value: 1, timestamp: 1 }],
        tags: [{ key: 'mlflow.user', value: 'ann' }]
      });
      // A new column's keys are read (the rows stay meanwhile).
      const read = new Promise<void>(resolve => {
        const done = () => {
          if (tab.runs[0]?.data?.params?.length) {
            tab.changed.disconnect(done);
            resolve();
          }
        };
        tab.changed.connect(done);
      });
      server.searches = [];
      tab.columns = ['metrics.acc', 'params.p'];
      expect(tab.runs.map(r => r.info.run_id)).toEqual(['r2', 'r1']);
      await read;
      expect(server.searches[0].data_keys.params).toEqual(['p']);
      expect(tab.runs[0].data?.params).toEqual([{ key: 'p', value: 'p1' }]);
      // Fewer columns: nothing to read.
      server.searches = [];
      tab.columns = ['params.p'];
      await tab.refresh();
      expect(
        server.searches.filter(b => b.data_keys.params.length === 0)
      ).toEqual([]);
      // Another order of the same runs: read, but not counted again.
      server.requests = [];
      await tab.setSort({ column: 'metrics.acc', descending: false });
      expect(tab.runs.map(r => r.info.run_id)).toEqual(['r1', 'r2']);
      expect(server.requests).not.toContain('v1/runs/count');
      expect(tab.runCount).toBe(2);
      // The sidebar's model reads every key (its chooser lists the loaded keys).
      server.searches = [];
      await model.refresh();
      expect(server.searches[0].data_keys).toBeUndefined();
    } finally {
      tab.dispose();
    }
  });

  it("reads a runs tab's new filter at once, without the experiment list", async () => {
    const tab = new RunsModel({
      client: new MLOpsClient(server.settings()),
      experimentId: '1'
    });
    try {
      await tab.refresh();
      expect(server.requests).toContain('2.0/mlflow/experiments/search');
      server.requests = [];
      await tab.setFilter("attributes.run_name = 'r2'");
      expect(server.requests).toContain('2.0/mlflow/runs/search');
      expect(server.requests).not.toContain('2.0/mlflow/experiments/search');
      // A refresh (the poll's) still reads the list.
      server.requests = [];
      await tab.refresh();
      expect(server.requests).toContain('2.0/mlflow/experiments/search');
      // The sidebar's model reads the list for a filter (its selection may go).
      await model.refresh();
      server.requests = [];
      await model.setFilter("attributes.run_name = 'r2'");
      expect(server.requests).toContain('2.0/mlflow/experiments/search');
    } finally {
      tab.dispose();
    }
  });

  it('puts child runs under their parent whatever the sort', async () => {
    const child = (id: string, parent: string, start: number) => {
      const r = run(id, '1', start);
      r.data = { tags: [{ key: 'mlflow.parentRunId', value: parent }] };
      return r;
    };
    server.runs.push(child('c1', 'r1', 900), child('c2', 'r1', 800));
    await model.refresh();
    const order = () =>
      Array.from({ length: model.rowCount }, (_, i) => {
        const ref = model.rowAt(i)!;
        return `${ref.run.info.run_id}:${ref.depth}`;
      });
    expect(order()).toEqual(['r2:0', 'r1:0', 'c1:1', 'c2:1']);
    expect(model.runCount).toBe(4);
    model.toggleChildren('r1');
    expect(order()).toEqual(['r2:0', 'r1:0']);
    model.toggleChildren('r1');
    expect(model.rowAt(0)?.children).toBe(0);
    expect(model.rowAt(1)?.children).toBe(2);
  });

  it('reports errors, keeps the last data, and recovers', async () => {
    await model.refresh();
    server.failExperiments = {
      status: 400,
      body: JSON.stringify({ error_code: 'BAD_REQUEST', message: 'nope' })
    };
    await model.refresh();
    expect(model.experimentsState).toBe('error');
    expect(model.experimentsError).toBe('nope (BAD_REQUEST)');
    expect(model.experiments).toHaveLength(3);

    server.failExperiments = null;
    await model.refresh();
    expect(model.experimentsState).toBe('ready');
    expect(model.experimentsError).toBeNull();
  });

  it('explains a missing server extension', async () => {
    server.failExperiments = { status: 404, body: '<html>Not Found</html>' };
    await model.refresh();
    expect(model.experimentsState).toBe('error');
    expect(model.experimentsError).toMatch(/server extension/);
  });

  it('creates an experiment and selects it', async () => {
    await model.refresh();
    const id = await model.createExperiment('fresh');
    await model.refresh();
    expect(model.selectedExperimentId).toBe(id);
    expect(model.selectedExperiment?.name).toBe('fresh');
    expect(model.runs).toEqual([]);
  });

  it('signals run selection and clears it with the experiment', async () => {
    const selected: (string | null)[] = [];
    model.runSelected.connect((_, id) => selected.push(id));
    await model.refresh();
    model.selectRun('r2');
    expect(model.selectedRunId).toBe('r2');
    model.selectExperiment('2');
    expect(model.selectedRunId).toBeNull();
    expect(selected).toEqual(['r2', null]);
  });

  it('turns automatic refresh off with 0', () => {
    model.refreshInterval = 0;
    expect(model.refreshInterval).toBe(0);
    model.refreshInterval = 2000;
    expect(model.refreshInterval).toBe(2000);
  });

  it('loads a newly chosen experiment even while a poll tick is in flight', async () => {
    model.refreshInterval = 0;
    let open!: () => void;
    server.gate = new Promise<void>(resolve => (open = resolve));
    model.visible = true;
    // Wait until the first tick is waiting for experiment 1's runs.
    while (!server.requests.includes('2.0/mlflow/runs/search')) {
      await new Promise(r => setTimeout(r, 5));
    }
    model.selectExperiment('2');
    open();
    server.gate = null;
    for (let i = 0; i < 100 && model.runsState !== 'ready'; i++) {
      await new Promise(r => setTimeout(r, 5));
    }
    expect(model.selectedExperimentId).toBe('2');
    expect(model.runsState).toBe('ready');
    expect(model.runs.map(r => r.info.run_id)).toEqual(['r3']);
  });

  it("shows a malformed filter's error and no stale rows", async () => {
    await model.refresh();
    expect(model.runs.length).toBe(2);
    await model.setFilter('metrics.acc >> 1');
    expect(model.filterError).toContain('metrics.acc >> 1');
    expect(model.runs.length).toBe(0);
    expect(model.rowCount).toBe(0);
    expect(model.runCount).toBeNull();
    await model.setFilter('');
    expect(model.filterError).toBeNull();
    expect(model.runs.length).toBe(2);
  });

  it('keeps ticked runs in order and clears them with the experiment', async () => {
    await model.refresh();
    model.toggleChecked('r2');
    model.toggleChecked('r1');
    model.toggleChecked('r2', true);
    expect(model.checkedRunIds).toEqual(['r2', 'r1']);
    model.toggleChecked('r2');
    expect(model.checkedRunIds).toEqual(['r1']);
    model.selectExperiment('2');
    expect(model.checkedRunIds).toEqual([]);
  });
});

describe('runs tab view kept per experiment', () => {
  it('reads back only well-formed views', () => {
    const view = {
      columns: ['metrics.acc'],
      widths: { name: 200, bad: -1 },
      sort: { column: 'metrics.acc', descending: false },
      groupBy: 'params.opt'
    };
    expect(parseRunsView(view)).toEqual({ ...view, widths: { name: 200 } });
    expect(parseRunsView(null)).toBeNull();
    expect(parseRunsView({ ...view, columns: 'x' })).toBeNull();
    expect(parseRunsView({ ...view, sort: { column: 1 } })).toBeNull();
    expect(parseRunsView({ ...view, groupBy: 3 })).toBeNull();
  });

  it('restores columns, widths, sort and grouping, and saves changes', async () => {
    const server = new FakeServer();
    server.experiments = [{ experiment_id: '1', name: 'one' }];
    for (let i = 0; i < 5; i++) {
      const r = run(`m${i}`, '1', 1000 + i);
      r.data = { metrics: [{ key: 'acc', value: (i * 3) % 5, timestamp: 1 }] };
      server.runs.push(r);
    }
    const state = new StateDB();
    await state.save(runsViewKey('1'), {
      columns: ['metrics.acc'],
      widths: { 'metrics.acc': 180 },
      sort: { column: 'metrics.acc', descending: true },
      groupBy: null
    });
    const model = new RunsModel({
      client: new MLOpsClient(server.settings()),
      experimentId: '1'
    });
    await keepRunsView(state, model, '1');
    expect(model.columns).toEqual(['metrics.acc']);
    expect(model.columnWidths).toEqual({ 'metrics.acc': 180 });
    await model.refresh();
    // read with the stored sort: the best run first
    expect(model.rowAt(0)?.run.info.run_id).toBe('m3');
    model.setColumnWidth('name', 240);
    await model.setGroupBy('params.opt');
    const saved = parseRunsView(await state.fetch(runsViewKey('1')));
    expect(saved?.widths).toEqual({ 'metrics.acc': 180, name: 240 });
    expect(saved?.groupBy).toBe('params.opt');
    expect(saved?.sort).toEqual({ column: 'metrics.acc', descending: true });
    // another experiment's view is its own
    expect(await state.fetch(runsViewKey('2'))).toBeUndefined();
    model.dispose();
  });
});
