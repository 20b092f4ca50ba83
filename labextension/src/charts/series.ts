/**
 * Shaping down-sampled metric series for charts (issue #3 draws them with
 * uPlot, which wants column arrays: `[xs, ys, mins, maxs]`).
 */
import { ISeriesPoint } from '../api/types';

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
 * @param xAxis - `step`, or `timestamp` (converted to seconds, uPlot's unit)
 */
export function seriesToColumns(
  points: readonly ISeriesPoint[],
  xAxis: 'step' | 'timestamp' = 'step'
): ISeriesColumns {
  const sorted = points
    .filter(p => Number.isFinite(Number(p.value)))
    .map(p => ({
      x: xAxis === 'step' ? p.step : p.timestamp / 1000,
      value: Number(p.value),
      min: Number.isFinite(Number(p.min)) ? Number(p.min) : Number(p.value),
      max: Number.isFinite(Number(p.max)) ? Number(p.max) : Number(p.value)
    }))
    .sort((a, b) => a.x - b.x);
  return {
    x: sorted.map(p => p.x),
    value: sorted.map(p => p.value),
    min: sorted.map(p => p.min),
    max: sorted.map(p => p.max)
  };
}
