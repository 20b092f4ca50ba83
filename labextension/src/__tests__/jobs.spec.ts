import { IJob, IJobRank } from '../api';
import {
  activeJobsSummary,
  emptyJobForm,
  formToSpec,
  jobNameFor,
  jobProgress,
  parseKeyValueLines,
  rankGrid,
  typedValue
} from '../jobs/grid';

function rank(
  r: number,
  node: number,
  local: number,
  status: string
): IJobRank {
  return { rank: r, node, local_rank: local, status };
}

function job(partial: Partial<IJob>): IJob {
  return {
    job_id: 'j1',
    run_id: 'j1',
    name: 'ddp',
    status: 'RUNNING',
    progress: { counts: {}, total: 0 },
    ranks: [],
    ...partial
  };
}

describe('rankGrid', () => {
  it('lays 2 nodes × 2 processes out by node and local rank', () => {
    const grid = rankGrid({
      nodes: 2,
      procs_per_node: 2,
      ranks: [
        rank(3, 1, 1, 'FAILED'),
        rank(0, 0, 0, 'RUNNING'),
        rank(2, 1, 0, 'SUCCEEDED'),
        rank(1, 0, 1, 'RUNNING')
      ]
    });
    expect(grid.nodes).toBe(2);
    expect(grid.procsPerNode).toBe(2);
    expect(grid.rows.map(row => row.map(c => c.rank))).toEqual([
      [0, 1],
      [2, 3]
    ]);
    expect(grid.rows[1].map(c => c.status)).toEqual(['SUCCEEDED', 'FAILED']);
  });

  it('fills ranks not reported yet with PENDING placeholders', () => {
    const grid = rankGrid({
      nodes: 1,
      procs_per_node: 3,
      ranks: [rank(1, 0, 1, 'RUNNING')]
    });
    expect(grid.rows[0].map(c => [c.rank, c.status, c.info === null])).toEqual([
      [0, 'PENDING', true],
      [1, 'RUNNING', false],
      [2, 'PENDING', true]
    ]);
  });

  it('grows to hold a rank outside the declared shape', () => {
    const grid = rankGrid({
      nodes: 1,
      procs_per_node: 1,
      ranks: [rank(3, 1, 1, 'RUNNING')]
    });
    expect([grid.nodes, grid.procsPerNode]).toEqual([2, 2]);
    expect(grid.rows[1][1].status).toBe('RUNNING');
  });
});

describe('jobProgress and activeJobsSummary', () => {
  it('counts ended ranks (succeeded, failed, cancelled) and running ones', () => {
    const p = jobProgress(
      job({
        progress: {
          counts: { SUCCEEDED: 1, FAILED: 1, RUNNING: 1, PENDING: 1 },
          total: 4
        }
      })
    );
    expect(p).toEqual({ ended: 2, running: 1, total: 4, percent: 50 });
  });

  it('summarises only jobs that have not ended', () => {
    expect(activeJobsSummary([job({ status: 'SUCCEEDED' })])).toBe('');
    expect(
      activeJobsSummary([
        job({ name: 'a', progress: { counts: { RUNNING: 2 }, total: 4 } })
      ])
    ).toBe('job a: 2/4 ranks running');
    expect(
      activeJobsSummary([
        job({ progress: { counts: { RUNNING: 1 }, total: 2 } }),
        job({
          status: 'QUEUED',
          progress: { counts: { PENDING: 2 }, total: 2 }
        }),
        job({
          status: 'FAILED',
          progress: { counts: { RUNNING: 9 }, total: 9 }
        })
      ])
    ).toBe('2 jobs: 1/4 ranks running');
  });
});

describe('the submit form', () => {
  it('reads NAME=value lines, naming the bad line', () => {
    expect(parseKeyValueLines('A=1\n\n# note\nB = two=2\n')).toEqual({
      values: { A: '1', B: 'two=2' },
      errors: []
    });
    expect(parseKeyValueLines('A=1\nnot a pair').errors).toEqual([
      "line 2: expected NAME=value, got 'not a pair'"
    ]);
  });

  it('types parameter values like YAML scalars', () => {
    expect([
      typedValue('0.01'),
      typedValue('3'),
      typedValue('true'),
      typedValue('x1')
    ]).toEqual([0.01, 3, true, 'x1']);
  });

  it('builds a spec relative to the entry file’s folder', () => {
    const out = formToSpec({
      ...emptyJobForm('work/train.py'),
      framework: 'pytorch',
      nodes: '2',
      procsPerNode: '2',
      gpu: '1',
      memory: '16Gi',
      params: 'lr=0.01\nepochs=3',
      env: 'OMP_NUM_THREADS=1',
      image: 'reg/train:1'
    });
    expect(out.errors).toEqual({});
    expect(out.baseDir).toBe('work');
    expect(out.spec).toEqual({
      name: 'train',
      script: 'train.py',
      framework: 'pytorch',
      nodes: 2,
      procs_per_node: 2,
      resources: { gpu: 1, memory: '16Gi' },
      params: { lr: 0.01, epochs: 3 },
      env: { OMP_NUM_THREADS: '1' },
      image: 'reg/train:1'
    });
  });

  it('runs a notebook as a notebook and reports each bad field', () => {
    expect(formToSpec(emptyJobForm('nb.ipynb')).spec.notebook).toBe('nb.ipynb');
    const out = formToSpec({
      ...emptyJobForm(''),
      nodes: '0',
      procsPerNode: 'two',
      gpu: '-1',
      env: 'oops'
    });
    expect(Object.keys(out.errors).sort()).toEqual([
      'entry',
      'env',
      'gpu',
      'nodes',
      'procsPerNode'
    ]);
  });

  it('names a job after its entry file', () => {
    expect(jobNameFor('dir/My Train.py')).toBe('My-Train');
    expect(jobNameFor('')).toBe('job');
  });
});
