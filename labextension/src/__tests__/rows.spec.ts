import { IExperiment, IRun } from '../api/types';
import { seriesToColumns } from '../charts';
import {
  baseName,
  compareIds,
  pickDefaultExperiment,
  runName,
  runsToRows,
  runToRow,
  sortExperiments,
  tagValue
} from '../rows';

// A run as MLflow's runs/create answers it (mlflow-rest-api.md §5.3).
const mlflowRun: IRun = {
  info: {
    run_uuid: 'f2ec1f1c3d1e4d2a9c1b0a9f8e7d6c5b',
    experiment_id: '2',
    run_name: 'r1',
    user_id: '',
    status: 'FINISHED',
    start_time: 1700000000000,
    end_time: 1700000125000,
    artifact_uri: 'mlflow-artifacts:/2/f2ec/artifacts',
    lifecycle_stage: 'active',
    run_id: 'f2ec1f1c3d1e4d2a9c1b0a9f8e7d6c5b'
  },
  data: {
    tags: [
      { key: 'mlflow.user', value: 'alice' },
      { key: 'mlflow.runName', value: 'r1' },
      { key: 'mlflow.source.name', value: '/home/alice/work/train.ipynb' }
    ]
  },
  inputs: {}
};

function run(
  id: string,
  start: number | undefined,
  extra: Partial<IRun['info']> = {},
  tags: { key: string; value: string }[] = []
): IRun {
  return {
    info: {
      run_id: id,
      experiment_id: '1',
      status: 'FINISHED',
      start_time: start,
      end_time: start ? start + 1000 : undefined,
      lifecycle_stage: 'active',
      ...extra
    },
    data: { tags }
  };
}

describe('runToRow', () => {
  it('shapes an MLflow run into a row', () => {
    const row = runToRow(mlflowRun, 1700000200000);
    expect(row).toMatchObject({
      runId: 'f2ec1f1c3d1e4d2a9c1b0a9f8e7d6c5b',
      name: 'r1',
      status: 'FINISHED',
      statusLabel: 'Finished',
      active: false,
      startTime: 1700000000000,
      duration: '2m 05s',
      user: 'alice',
      source: 'train.ipynb',
      parentRunId: null
    });
    expect(row.started).not.toBe('—');
    expect(row.startedTitle).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('counts a running run up to now and ignores a stale end time', () => {
    const row = runToRow(
      run('a', 1000, { status: 'RUNNING', end_time: 2000 }),
      61_000
    );
    expect(row.active).toBe(true);
    expect(row.duration).toBe('1m 00s');
  });

  it('marks nested runs and falls back to user_id', () => {
    const row = runToRow(
      run('b', 1000, { user_id: 'bob' }, [
        { key: 'mlflow.parentRunId', value: 'parent1' }
      ]),
      5000
    );
    expect(row.parentRunId).toBe('parent1');
    expect(row.user).toBe('bob');
  });

  it('treats a missing status as running (runs/create answers)', () => {
    const bare: IRun = { info: { run_id: 'c', experiment_id: '1' } };
    const row = runToRow(bare, 5000);
    expect(row.status).toBe('RUNNING');
    expect(row.started).toBe('—');
    expect(row.duration).toBe('—');
  });
});

describe('runName', () => {
  it('prefers run_name, then the mlflow.runName tag, then a short id', () => {
    expect(runName(mlflowRun)).toBe('r1');
    expect(
      runName(
        run('0123456789abcdef', 1, {}, [
          { key: 'mlflow.runName', value: 'from-tag' }
        ])
      )
    ).toBe('from-tag');
    expect(runName(run('0123456789abcdef', 1))).toBe('01234567');
    expect(
      runName({
        info: { run_id: '', run_uuid: 'uuid5678xx', experiment_id: '1' }
      })
    ).toBe('uuid5678');
  });
});

describe('runsToRows', () => {
  it('orders newest first, unknown start last, ties by id, and drops deleted runs', () => {
    const rows = runsToRows(
      [
        run('old', 1000),
        run('none', undefined),
        run('new-b', 5000),
        run('gone', 9000, { lifecycle_stage: 'deleted' }),
        run('new-a', 5000)
      ],
      10_000
    );
    expect(rows.map(r => r.runId)).toEqual(['new-a', 'new-b', 'old', 'none']);
  });

  it('gives no rows for no runs', () => {
    expect(runsToRows([], 0)).toEqual([]);
  });
});

describe('tags and names', () => {
  it('reads tag values', () => {
    expect(tagValue(mlflowRun.data?.tags, 'mlflow.user')).toBe('alice');
    expect(tagValue(mlflowRun.data?.tags, 'nope')).toBeUndefined();
    expect(tagValue(undefined, 'x')).toBeUndefined();
  });
  it('takes base names of paths and URLs', () => {
    expect(baseName('/a/b/c.ipynb')).toBe('c.ipynb');
    expect(baseName('C:\\x\\train.py')).toBe('train.py');
    expect(baseName('s3://bucket/dir/')).toBe('dir');
    expect(baseName('plain')).toBe('plain');
  });
});

describe('experiments', () => {
  const exps: IExperiment[] = [
    { experiment_id: '0', name: 'Default', last_update_time: 100 },
    { experiment_id: '10', name: 'exp-10', last_update_time: 300 },
    { experiment_id: '2', name: 'exp-2', last_update_time: 300 },
    {
      experiment_id: '3',
      name: 'Alpha',
      lifecycle_stage: 'deleted',
      last_update_time: 900
    },
    { experiment_id: '4', name: 'beta', creation_time: 200 }
  ];

  it('sorts active experiments by name, numbers naturally', () => {
    expect(sortExperiments([...exps]).map(e => e.name)).toEqual([
      'beta',
      'Default',
      'exp-2',
      'exp-10'
    ]);
  });

  it('picks the most recently updated active experiment, newest id on ties', () => {
    expect(pickDefaultExperiment(exps)?.experiment_id).toBe('10');
    expect(pickDefaultExperiment([])).toBeNull();
    expect(
      pickDefaultExperiment([
        { experiment_id: '1', name: 'x', lifecycle_stage: 'deleted' }
      ])
    ).toBeNull();
  });

  it('compares ids numerically when it can', () => {
    expect(compareIds('10', '9')).toBeGreaterThan(0);
    expect(compareIds('a', 'b')).toBeLessThan(0);
    expect(compareIds('5', '5')).toBe(0);
  });
});

describe('seriesToColumns', () => {
  it('orders by x, drops non-finite values and fills missing min/max', () => {
    const cols = seriesToColumns([
      { step: 2, timestamp: 3000, value: 0.5, min: 0.4, max: 0.6, count: 3 },
      { step: 1, timestamp: 2000, value: 0.9, min: NaN, max: NaN, count: 1 },
      { step: 3, timestamp: 4000, value: NaN, min: NaN, max: NaN, count: 1 }
    ]);
    expect(cols).toEqual({
      x: [1, 2],
      value: [0.9, 0.5],
      min: [0.9, 0.4],
      max: [0.9, 0.6]
    });
  });

  it('uses seconds for a timestamp axis', () => {
    const cols = seriesToColumns(
      [{ step: 1, timestamp: 2500, value: 1, min: 1, max: 1, count: 1 }],
      'timestamp'
    );
    expect(cols.x).toEqual([2.5]);
  });
});
