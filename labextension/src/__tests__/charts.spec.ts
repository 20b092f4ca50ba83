import { IRun, ISeriesPoint } from '../api/types';
import {
  axisIds,
  axisTickLabel,
  buildAxis,
  canLog,
  compareRows,
  metricMap,
  paramMap,
  runColor,
  runValue
} from '../charts/compare';
import {
  alignSeries,
  forLogScale,
  paddedRange,
  seriesToColumns,
  smooth
} from '../charts/series';
import { formatBytes, parseDelimited, previewKind } from '../preview';
import { mapLimit } from '../util';
import { columnValue, runToRow, sortRows, visibleRange } from '../rows';

function point(
  step: number,
  value: number,
  timestamp = 1000 * step
): ISeriesPoint {
  return { step, timestamp, value, min: value, max: value, count: 1 };
}

function run(
  id: string,
  params: Record<string, string>,
  metrics: Record<string, number>,
  start = 1000
): IRun {
  return {
    info: {
      run_id: id,
      experiment_id: '1',
      run_name: id,
      status: 'FINISHED',
      start_time: start,
      end_time: start + 10
    },
    data: {
      params: Object.entries(params).map(([key, value]) => ({ key, value })),
      metrics: Object.entries(metrics).map(([key, value]) => ({
        key,
        value,
        timestamp: 0,
        step: 0
      }))
    }
  };
}

describe('seriesToColumns x-axis modes', () => {
  const points = [
    point(2, 0.5, 12_000),
    point(1, 1, 10_000),
    point(3, 0.25, 15_500)
  ];

  it('orders by step', () => {
    expect(seriesToColumns(points, 'step')).toEqual({
      x: [1, 2, 3],
      value: [1, 0.5, 0.25],
      min: [1, 0.5, 0.25],
      max: [1, 0.5, 0.25]
    });
  });

  it('gives wall time in seconds', () => {
    expect(seriesToColumns(points, 'wall').x).toEqual([10, 12, 15.5]);
  });

  it('gives relative time from the first point', () => {
    expect(seriesToColumns(points, 'relative').x).toEqual([0, 2, 5.5]);
  });

  it('drops non-finite values', () => {
    const cols = seriesToColumns([point(0, NaN), point(1, 2)], 'step');
    expect(cols.x).toEqual([1]);
  });
});

describe('smooth', () => {
  it('is the identity at weight 0', () => {
    expect(smooth([1, 5, 2], 0)).toEqual([1, 5, 2]);
  });

  it('debiases so a constant series stays constant', () => {
    const out = smooth([3, 3, 3, 3], 0.9);
    out.forEach(v => expect(v).toBeCloseTo(3, 10));
  });

  it('follows an exponential moving average', () => {
    // w = 0.5: raw EMA 0.5, 1.25 -> debiased by (1 - 0.5^n): 1, 1.666…
    const out = smooth([1, 2], 0.5);
    expect(out[0]).toBeCloseTo(1);
    expect(out[1]).toBeCloseTo(1.25 / 0.75);
  });

  it('damps a spike', () => {
    const out = smooth([0, 0, 10, 0, 0], 0.8);
    expect(Math.max(...out)).toBeLessThan(10);
    expect(out[3]).toBeGreaterThan(0);
  });

  it('passes non-finite values through without poisoning the rest', () => {
    const out = smooth([1, NaN, 1], 0.5);
    expect(Number.isNaN(out[1])).toBe(true);
    expect(out[2]).toBeCloseTo(1);
  });
});

describe('alignSeries', () => {
  it('merges x values and leaves gaps as null', () => {
    const aligned = alignSeries([
      { x: [0, 2, 4], y: [1, 2, 3] },
      { x: [1, 2, 5], y: [10, 20, 30] }
    ]);
    expect(aligned).toEqual([
      [0, 1, 2, 4, 5],
      [1, null, 2, 3, null],
      [null, 10, 20, null, 30]
    ]);
  });

  it('handles no series and empty series', () => {
    expect(alignSeries([])).toEqual([[]]);
    expect(
      alignSeries([
        { x: [], y: [] },
        { x: [1], y: [2] }
      ])
    ).toEqual([[1], [null], [2]]);
  });

  it('is linear-time on large inputs (100 k points x 20 series)', () => {
    const x = Array.from({ length: 100_000 }, (_, i) => i);
    const series = Array.from({ length: 20 }, () => ({ x, y: x }));
    const aligned = alignSeries(series);
    expect(aligned[0].length).toBe(100_000);
    expect(aligned.length).toBe(21);
  });
});

describe('forLogScale', () => {
  it('turns non-positive values into gaps', () => {
    expect(forLogScale([1, 0, -2, null, 0.5])).toEqual([
      1,
      null,
      null,
      null,
      0.5
    ]);
  });
});

describe('compareRows', () => {
  const runs = [
    run('a', { lr: '0.1', model: 'mlp' }, { acc: 0.5 }),
    run('b', { lr: '0.01', model: 'mlp', seed: '1' }, { acc: 0.5 })
  ];

  it('lines up params and marks differences (missing counts)', () => {
    const rows = compareRows(runs.map(paramMap));
    expect(rows.map(r => [r.key, r.values, r.differs])).toEqual([
      ['lr', ['0.1', '0.01'], true],
      ['model', ['mlp', 'mlp'], false],
      ['seed', [undefined, '1'], true]
    ]);
  });

  it('compares metrics as numbers, NaN equal to NaN', () => {
    expect(compareRows(runs.map(metricMap))[0].differs).toBe(false);
    const nan = compareRows([new Map([['x', NaN]]), new Map([['x', NaN]])]);
    expect(nan[0].differs).toBe(false);
  });

  it('sorts keys naturally', () => {
    const rows = compareRows([
      new Map([
        ['k10', 1],
        ['k2', 1],
        ['k1', 1]
      ])
    ]);
    expect(rows.map(r => r.key)).toEqual(['k1', 'k2', 'k10']);
  });
});

describe('parallel coordinates axes', () => {
  it('scales numbers onto [0, 1]', () => {
    const axis = buildAxis('params.lr', ['0.1', '0.3', undefined, '0.2']);
    expect(axis.kind).toBe('numeric');
    expect(axis.label).toBe('lr');
    expect(axis.positions[0]).toBeCloseTo(0);
    expect(axis.positions[1]).toBeCloseTo(1);
    expect(Number.isNaN(axis.positions[2])).toBe(true);
    expect(axis.positions[3]).toBeCloseTo(0.5);
  });

  it('puts a constant axis in the middle', () => {
    const axis = buildAxis('metrics.acc', [0.7, 0.7]);
    expect(axis.positions).toEqual([0.5, 0.5]);
  });

  it('spreads categories evenly in sorted order', () => {
    const axis = buildAxis('params.opt', ['sgd', 'adam', 'sgd', 'rmsprop']);
    expect(axis.kind).toBe('category');
    expect(axis.categories).toEqual(['adam', 'rmsprop', 'sgd']);
    expect(axis.positions).toEqual([1, 0, 1, 0.5]);
    expect(axisTickLabel(axis, 0.5)).toBe('rmsprop');
  });

  it('labels numeric ticks compactly', () => {
    const axis = buildAxis('metrics.loss', [0, 100000]);
    expect(axisTickLabel(axis, 1)).toBe('1.00e+5');
    expect(axisTickLabel(buildAxis('m', [0, 1]), 0.5)).toBe('0.5');
  });

  it('places values by their logarithm on a log axis', () => {
    const axis = buildAxis('params.lr', ['0.001', '0.01', '0.1'], 'log');
    expect(axis.scale).toBe('log');
    expect(axis.positions[0]).toBeCloseTo(0);
    expect(axis.positions[1]).toBeCloseTo(0.5);
    expect(axis.positions[2]).toBeCloseTo(1);
    expect(axisTickLabel(axis, 0.5)).toBe('0.01');
    // linear puts 0.01 near the bottom, not half-way
    expect(
      buildAxis('params.lr', ['0.001', '0.01', '0.1']).positions[1]
    ).toBeCloseTo(0.0909, 3);
    // a constant log axis sits in the middle, a decade either side
    expect(buildAxis('m', [5, 5], 'log').positions).toEqual([0.5, 0.5]);
  });

  it('refuses log for zero, negatives and categories (linear then)', () => {
    expect(canLog([0.1, undefined, 3])).toBe(true);
    expect(canLog([0, 1])).toBe(false);
    expect(canLog([-1, 1])).toBe(false);
    expect(canLog(['sgd'])).toBe(false);
    expect(canLog([undefined])).toBe(false);
    expect(buildAxis('m', [0, 10], 'log').scale).toBe('linear');
    expect(buildAxis('p', ['a', 'b'], 'log').scale).toBe('linear');
  });

  it('lists the axis ids of runs and reads values', () => {
    const runs = [
      run('a', { lr: '0.1' }, { acc: 1 }),
      run('b', { bs: '8' }, {})
    ];
    expect(axisIds(runs)).toEqual(['params.bs', 'params.lr', 'metrics.acc']);
    expect(runValue(runs[0], 'metrics.acc')).toBe(1);
    expect(runValue(runs[1], 'params.lr')).toBeUndefined();
  });

  it('gives distinct colours', () => {
    const colors = new Set(Array.from({ length: 20 }, (_, i) => runColor(i)));
    expect(colors.size).toBe(20);
  });
});

describe('runs table sorting and windowing', () => {
  const runs = [
    run('a', { lr: '0.1' }, { acc: 0.9 }, 3000),
    run('b', { lr: '0.01' }, {}, 1000),
    run('c', { lr: 'auto' }, { acc: 0.5 }, 2000)
  ];
  const items = runs.map(r => ({ run: r, row: runToRow(r, 5000) }));

  it('sorts by a metric, missing values last in both directions', () => {
    const asc = sortRows(items, 'metrics.acc', false, 5000).map(
      i => i.row.runId
    );
    const desc = sortRows(items, 'metrics.acc', true, 5000).map(
      i => i.row.runId
    );
    expect(asc).toEqual(['c', 'a', 'b']);
    expect(desc).toEqual(['a', 'c', 'b']);
  });

  it('sorts params numerically before text', () => {
    expect(
      sortRows(items, 'params.lr', false, 5000).map(i => i.row.runId)
    ).toEqual(['b', 'a', 'c']);
  });

  it('sorts by start time and name', () => {
    expect(
      sortRows(items, 'started', false, 5000).map(i => i.row.runId)
    ).toEqual(['b', 'c', 'a']);
    expect(columnValue(items[0].row, runs[0], 'name', 0)).toBe('a');
  });

  it('windows the rows in view', () => {
    expect(visibleRange(0, 260, 26, 10_000, 5)).toEqual([0, 15]);
    expect(visibleRange(26_000, 260, 26, 10_000, 5)).toEqual([995, 1015]);
    expect(visibleRange(259_000, 2600, 26, 10_000, 5)).toEqual([9956, 10_000]);
    expect(visibleRange(0, 260, 26, 0, 5)).toEqual([0, 0]);
  });
});

describe('artifact previews', () => {
  it('chooses a preview by extension', () => {
    expect(previewKind('plots/roc.PNG')).toBe('image');
    expect(previewKind('data/table.csv')).toBe('csv');
    expect(previewKind('report.html')).toBe('html');
    expect(previewKind('analysis.ipynb')).toBe('notebook');
    expect(previewKind('model/MLmodel')).toBe('text');
    expect(previewKind('conf.yaml')).toBe('text');
    expect(previewKind('weights.bin')).toBe('binary');
  });

  it('parses CSV with quotes, CRLF and embedded delimiters', () => {
    expect(parseDelimited('a,b\r\n"x, y","say ""hi"""\n1,2')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['1', '2']
    ]);
    expect(parseDelimited('a\tb\n1\t2\n', '\t')).toEqual([
      ['a', 'b'],
      ['1', '2']
    ]);
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(NaN)).toBe('');
  });
});

describe('mapLimit', () => {
  it('keeps order and bounds concurrency', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async n => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise(r => setTimeout(r, 5));
      inFlight--;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(peak).toBe(3);
  });
});

describe('paddedRange', () => {
  it('keeps a range wide enough', () => {
    expect(paddedRange(0, 100, 'step')).toEqual([0, 100]);
    expect(paddedRange(1_700_000_000, 1_700_000_060, 'wall')).toEqual([
      1_700_000_000, 1_700_000_060
    ]);
  });

  it('widens a single step to whole steps around it', () => {
    expect(paddedRange(5, 5, 'step')).toEqual([4, 6]);
  });

  it('widens a millisecond span of wall time to two seconds around it', () => {
    const [lo, hi] = paddedRange(1_700_000_000.001, 1_700_000_000.004, 'wall');
    expect(hi - lo).toBe(2);
    expect(lo).toBeLessThan(1_700_000_000.001);
    expect(hi).toBeGreaterThan(1_700_000_000.004);
  });

  it('gives a range with no data', () => {
    expect(paddedRange(null, null, 'relative')).toEqual([0, 2]);
  });
});
