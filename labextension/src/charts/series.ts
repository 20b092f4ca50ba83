/**
 * Shaping down-sampled metric series for charts: uPlot wants column arrays
 * (`[xs, ys1, ys2, …]`) sharing one ascending x column.
 */
import { ISeriesPoint } from '../api/types';

/** What the x-axis shows: step, wall-clock time, or time since the first point. */
export type XAxisMode = 'step' | 'wall' | 'relative';

/** The x-axis modes, in menu order. */
export const X_AXIS_MODES: readonly XAxisMode[] = ['step', 'wall', 'relative'];

/** Column data for one series: x values and value / min / max per point. */
export interface ISeriesColumns {
  x: number[];
  value: number[];
  min: number[];
  max: number[];
}

/**
 * Columns of a series, ordered by x, with non-finite values dropped.
 *
 * @param points - the server's `points`
 * @param xAxis - `step`; `timestamp` or `wall` (seconds, uPlot's time unit);
 *   `relative` (seconds since the series' first point)
 */
export function seriesToColumns(
  points: readonly ISeriesPoint[],
  xAxis: 'step' | 'timestamp' | XAxisMode = 'step'
): ISeriesColumns {
  const byStep = xAxis === 'step';
  const sorted = points
    .filter(p => Number.isFinite(Number(p.value)))
    .map(p => ({
      x: byStep ? p.step : p.timestamp / 1000,
      value: Number(p.value),
      min: Number.isFinite(Number(p.min)) ? Number(p.min) : Number(p.value),
      max: Number.isFinite(Number(p.max)) ? Number(p.max) : Number(p.value)
    }))
    .sort((a, b) => a.x - b.x);
  const origin = xAxis === 'relative' && sorted.length ? sorted[0].x : 0;
  return {
    x: sorted.map(p => p.x - origin),
    value: sorted.map(p => p.value),
    min: sorted.map(p => p.min),
    max: sorted.map(p => p.max)
  };
}

/**
 * The x-scale range of a chart: the data's, but at least one step (step
 * axis) or two seconds (time axes) wide, centred on the data. A metric
 * logged once, or within milliseconds, otherwise gets a made-up range (a
 * millisecond-wide wall-time span drew years 2027-2029 on the axis).
 */
export function paddedRange(
  min: number | null,
  max: number | null,
  xAxis: XAxisMode
): [number, number] {
  const least = 2;
  if (min === null || max === null || !Number.isFinite(min + max)) {
    return [0, least];
  }
  if (max - min >= least) {
    return [min, max];
  }
  const mid = (min + max) / 2;
  const lo = xAxis === 'step' ? Math.floor(mid - least / 2) : mid - least / 2;
  return [lo, lo + least];
}

/**
 * Exponential moving average with TensorBoard-style debiasing, so the first
 * points are not pulled toward zero. `weight` in [0, 1): 0 returns a copy.
 */
export function smooth(values: readonly number[], weight: number): number[] {
  const w = Math.min(Math.max(weight, 0), 0.999);
  if (w === 0) {
    return values.slice();
  }
  const out: number[] = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - Math.pow(w, n));
  }
  return out;
}

/** uPlot's aligned data: one shared x column, then one y column per series. */
export type AlignedData = [number[], ...(number | null)[][]];

/**
 * Merge several series onto their union of x values (uPlot needs one x
 * column); a series has `null` where it has no point, which uPlot bridges
 * with `spanGaps`. Linear in the total number of points (k-way merge of
 * already-sorted inputs).
 */
export function alignSeries(
  series: readonly { x: readonly number[]; y: readonly number[] }[]
): AlignedData {
  const xs: number[] = [];
  const cursors = series.map(() => 0);
  const columns: (number | null)[][] = series.map(() => []);
  for (;;) {
    let next = Infinity;
    for (let s = 0; s < series.length; s++) {
      const i = cursors[s];
      if (i < series[s].x.length && series[s].x[i] < next) {
        next = series[s].x[i];
      }
    }
    if (next === Infinity) {
      break;
    }
    xs.push(next);
    for (let s = 0; s < series.length; s++) {
      const i = cursors[s];
      if (i < series[s].x.length && series[s].x[i] === next) {
        columns[s].push(series[s].y[i]);
        cursors[s] = i + 1;
      } else {
        columns[s].push(null);
      }
    }
  }
  return [xs, ...columns];
}

/**
 * Values for a log-scale axis: non-positive values cannot be drawn, so they
 * become `null` (a gap) rather than breaking the scale.
 */
export function forLogScale(
  values: readonly (number | null)[]
): (number | null)[] {
  return values.map(v => (v !== null && v > 0 ? v : null));
}
