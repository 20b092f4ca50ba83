import { IDeployment, IDeploymentMetrics, IVersionMetrics } from '../api';
import {
  bucketDelta,
  deploymentNameProblem,
  describeSplit,
  formatRate,
  formatSeconds,
  histogramQuantile,
  MetricsHistory,
  modelUri,
  normalizeBuckets,
  pointBetween,
  signatureColumns,
  sparklinePath,
  suggestDeploymentName,
  trafficSplit,
  tryItExample
} from '../deployments/serving';

function version(
  v: string,
  requests: number,
  buckets: [number | string, number][],
  extra: Partial<IVersionMetrics> = {}
): IVersionMetrics {
  return {
    version: v,
    requests_total: requests,
    errors_total: 0,
    latency_seconds: { buckets, sum: 0, count: requests },
    ...extra
  };
}

function scrape(
  at: number,
  ...versions: IVersionMetrics[]
): IDeploymentMetrics {
  return { scraped_at: at, versions };
}

describe('histogramQuantile', () => {
  const b = normalizeBuckets([
    ['+Inf', 100],
    [0.01, 50],
    [0.1, 90],
    [1, 100]
  ]);

  it('sorts bounds and reads +Inf', () => {
    expect(b).toEqual([
      [0.01, 50],
      [0.1, 90],
      [1, 100],
      [Infinity, 100]
    ]);
  });

  it('interpolates inside the bucket, the first starting at 0', () => {
    expect(histogramQuantile(0.5, b)).toBeCloseTo(0.01);
    expect(histogramQuantile(0.25, b)).toBeCloseTo(0.005);
    expect(histogramQuantile(0.7, b)).toBeCloseTo(0.01 + 0.09 * 0.5);
    expect(histogramQuantile(0.99, b)).toBeCloseTo(0.1 + 0.9 * 0.9);
  });

  it('answers the highest finite bound in +Inf, null with no observation', () => {
    expect(
      histogramQuantile(
        0.99,
        normalizeBuckets([
          [0.5, 1],
          ['+Inf', 10]
        ])
      )
    ).toBe(0.5);
    expect(histogramQuantile(0.5, [[1, 0]])).toBeNull();
    expect(histogramQuantile(0.5, [])).toBeNull();
  });
});

describe('rate and percentiles between scrapes', () => {
  it('uses only what happened between the two scrapes', () => {
    const prev = scrape(
      1000,
      version('1', 100, [
        [0.1, 100],
        [1, 100],
        ['+Inf', 100]
      ])
    );
    // 20 new requests in 2 s, all of them slower than 0.1 s
    const cur = scrape(
      3000,
      version('1', 120, [
        [0.1, 100],
        [1, 120],
        ['+Inf', 120]
      ])
    );
    const point = pointBetween(prev, cur)!;
    expect(point.rate).toBeCloseTo(10);
    expect(point.p50).toBeGreaterThan(0.1);
    expect(point.p99).toBeLessThanOrEqual(1);
  });

  it('counts a restarted counter from zero and a new version from nothing', () => {
    const prev = scrape(0, version('1', 500, [['+Inf', 500]]));
    const cur = scrape(
      1000,
      version('1', 3, [['+Inf', 3]]),
      version('2', 7, [
        [0.05, 7],
        ['+Inf', 7]
      ])
    );
    const point = pointBetween(prev, cur)!;
    expect(point.rate).toBe(10);
    expect(bucketDelta([[1, 5]], [[1, 2]])).toEqual([[1, 2]]);
  });

  it('refuses scrapes out of order', () => {
    expect(pointBetween(scrape(2000), scrape(1000))).toBeNull();
  });

  it('keeps a bounded history and ignores repeated scrapes', () => {
    const h = new MetricsHistory(2);
    for (let i = 0; i < 5; i++) {
      h.record('d', scrape(i * 1000, version('1', i * 10, [['+Inf', i * 10]])));
    }
    h.record('d', scrape(4000, version('1', 999, [['+Inf', 999]])));
    expect(h.points('d').map(p => p.rate)).toEqual([10, 10]);
    expect(h.last('d')!.scraped_at).toBe(4000);
    expect(h.points('other')).toEqual([]);
  });
});

describe('sparklinePath', () => {
  it('scales to the box and leaves gaps for missing points', () => {
    expect(sparklinePath([0, 2, null, 1], 30, 10)).toBe(
      'M0.0,10.0L10.0,0.0M30.0,5.0'
    );
    expect(sparklinePath([null], 30, 10)).toBe('');
  });
});

describe('traffic split', () => {
  const dep = { name: 'd', model_version: '3' } as IDeployment;

  it('prefers the metrics, then the deployment, then its one version', () => {
    const m = scrape(
      0,
      version('3', 0, [], { traffic_percent: 80 }),
      version('4', 0, [], { traffic_percent: 20 })
    );
    expect(describeSplit(trafficSplit(dep, m))).toBe('v3 80% · v4 20%');
    expect(
      trafficSplit({ ...dep, traffic: [{ version: '5', percent: 100 }] }, null)
    ).toEqual([{ version: '5', percent: 100 }]);
    expect(trafficSplit(dep, null)).toEqual([{ version: '3', percent: 100 }]);
  });
});

describe('names and URIs', () => {
  it('checks DNS labels and suggests one for a model', () => {
    expect(deploymentNameProblem('churn-1')).toBe('');
    expect(deploymentNameProblem('Churn')).not.toBe('');
    expect(deploymentNameProblem('1churn')).not.toBe('');
    expect(deploymentNameProblem('')).toBe('A name is required.');
    expect(suggestDeploymentName('My_Model.v2')).toBe('my-model-v2');
    expect(suggestDeploymentName('42')).toBe('model');
    expect(modelUri('m', { version: '3' })).toBe('models:/m/3');
    expect(modelUri('m', { alias: 'champion' })).toBe('models:/m@champion');
  });
});

describe('the Try it example', () => {
  const mlmodel = [
    'flavors: {}',
    'signature:',
    '  inputs: \'[{"type": "double", "name": "a", "required": true}, {"type": "string", "name": "it\'\'s"}]\'',
    '  outputs: \'[{"type": "long"}]\''
  ].join('\n');

  it('uses the serving input example as it is', () => {
    const body = tryItExample(
      '{"dataframe_split": {"columns": ["a"], "data": [[1]]}}',
      mlmodel
    );
    expect(JSON.parse(body)).toEqual({
      dataframe_split: { columns: ['a'], data: [[1]] }
    });
  });

  it('falls back to a record of the signature’s columns', () => {
    expect(signatureColumns(mlmodel)).toEqual([
      { name: 'a', type: 'double' },
      { name: "it's", type: 'string' }
    ]);
    expect(JSON.parse(tryItExample(null, mlmodel))).toEqual({
      dataframe_records: [{ a: 0, "it's": '' }]
    });
    expect(JSON.parse(tryItExample(null, 'flavors: {}'))).toEqual({
      dataframe_records: [{}]
    });
  });

  it('formats latencies and rates', () => {
    expect(formatSeconds(0.012)).toBe('12 ms');
    expect(formatSeconds(0.12)).toBe('120 ms');
    expect(formatSeconds(1.5)).toBe('1.50 s');
    expect(formatSeconds(null)).toBe('–');
    expect(formatRate(4.25)).toBe('4.3/s');
    expect(formatRate(42.4)).toBe('42/s');
  });
});
