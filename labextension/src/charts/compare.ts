/**
 * Shaping several runs for the compare view: side-by-side tables with a
 * "differences only" filter, and axes for parallel coordinates and scatter.
 */
import { IRun } from '../api/types';

/** One row of a side-by-side table: a key and its value in each run. */
export interface ICompareRow {
  key: string;
  /** One entry per run, in run order; `undefined` when the run lacks it. */
  values: (string | number | undefined)[];
  /** Whether the runs disagree (a missing value counts as a difference). */
  differs: boolean;
}

/** Params of each run, as a key -> value map. */
export function paramMap(run: IRun): Map<string, string> {
  return new Map((run.data?.params ?? []).map(p => [p.key, p.value]));
}

/** Latest metric values of each run, as a key -> number map. */
export function metricMap(run: IRun): Map<string, number> {
  return new Map((run.data?.metrics ?? []).map(m => [m.key, Number(m.value)]));
}

/** Whether two cell values are the same (NaN equals NaN). */
function same(
  a: string | number | undefined,
  b: string | number | undefined
): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/**
 * Rows for the keys of every run, sorted by key (natural order).
 *
 * @param maps - one key -> value map per run
 */
export function compareRows<V extends string | number>(
  maps: readonly Map<string, V>[]
): ICompareRow[] {
  const keys = new Set<string>();
  for (const m of maps) {
    for (const k of m.keys()) {
      keys.add(k);
    }
  }
  return [...keys]
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
    .map(key => {
      const values = maps.map(m => m.get(key));
      return {
        key,
        values,
        differs: values.some(v => !same(v, values[0]))
      };
    });
}

/** An axis of a parallel-coordinates or scatter plot. */
export interface IAxis {
  /** `params.lr` or `metrics.acc`. */
  id: string;
  /** The key without its prefix. */
  label: string;
  /** `numeric` when every present value parses as a number. */
  kind: 'numeric' | 'category';
  /** How a numeric axis maps values to positions (categories: `linear`). */
  scale: AxisScale;
  /** Numeric: data range (min < max even for a constant axis). */
  min: number;
  max: number;
  /** Category: distinct values, sorted. */
  categories: string[];
  /** Position in [0, 1] for each run (NaN when the run lacks the value). */
  positions: number[];
  /** The raw values, per run. */
  raw: (string | number | undefined)[];
}

/** Linear or logarithmic (base 10) placement of a numeric axis' values. */
export type AxisScale = 'linear' | 'log';

/** The present values of an axis (missing and empty ones left out). */
function presentValues(
  raw: readonly (string | number | undefined)[]
): (string | number)[] {
  return raw.filter(v => v !== undefined && v !== '') as (string | number)[];
}

/**
 * Whether an axis can be drawn on a log scale: numeric, with every present
 * value above zero (a log axis cannot place zero or negatives).
 */
export function canLog(raw: readonly (string | number | undefined)[]): boolean {
  const present = presentValues(raw);
  return (
    present.length > 0 &&
    present.every(v => Number.isFinite(Number(v)) && Number(v) > 0)
  );
}

/**
 * Build a plot axis from one value per run: numeric axes scale linearly onto
 * [0, 1] (a constant axis sits in the middle), or by their logarithm when
 * `scale` is `log` and `canLog` holds (else linear); categorical axes spread
 * their sorted distinct values evenly.
 */
export function buildAxis(
  id: string,
  raw: readonly (string | number | undefined)[],
  scale: AxisScale = 'linear'
): IAxis {
  const label = id.replace(/^(params|metrics)\./, '');
  const present = presentValues(raw);
  const numbers = present.map(Number);
  const numeric = present.length > 0 && numbers.every(n => Number.isFinite(n));
  if (numeric) {
    const log = scale === 'log' && canLog(raw);
    const f = log ? Math.log10 : (v: number) => v;
    let min = Math.min(...numbers);
    let max = Math.max(...numbers);
    if (min === max) {
      // a constant axis: a decade (log) or ±1 (linear) either side
      [min, max] = log ? [min / 10, max * 10] : [min - 1, max + 1];
    }
    const [lo, hi] = [f(min), f(max)];
    const positions = raw.map(v =>
      v === undefined || v === '' || !Number.isFinite(Number(v))
        ? NaN
        : (f(Number(v)) - lo) / (hi - lo)
    );
    return {
      id,
      label,
      kind: 'numeric',
      scale: log ? 'log' : 'linear',
      min,
      max,
      categories: [],
      positions,
      raw: [...raw]
    };
  }
  const categories = [...new Set(present.map(String))].sort((a, b) =>
    a.localeCompare(b, undefined, { numeric: true })
  );
  const index = new Map(categories.map((c, i) => [c, i]));
  const span = Math.max(categories.length - 1, 1);
  const positions = raw.map(v => {
    if (v === undefined || v === '') {
      return NaN;
    }
    const i = index.get(String(v)) ?? 0;
    return categories.length === 1 ? 0.5 : i / span;
  });
  return {
    id,
    label,
    kind: 'category',
    scale: 'linear',
    min: 0,
    max: span,
    categories,
    positions,
    raw: [...raw]
  };
}

/** The value of `params.x` / `metrics.y` for a run, or `undefined`. */
export function runValue(run: IRun, id: string): string | number | undefined {
  if (id.startsWith('params.')) {
    return paramMap(run).get(id.slice(7));
  }
  if (id.startsWith('metrics.')) {
    return metricMap(run).get(id.slice(8));
  }
  return undefined;
}

/** Every `params.*` and `metrics.*` axis id present in the runs. */
export function axisIds(runs: readonly IRun[]): string[] {
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const run of runs) {
    run.data?.params?.forEach(p => params.add(p.key));
    run.data?.metrics?.forEach(m => metrics.add(m.key));
  }
  const sorted = (s: Set<string>) =>
    [...s].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return [
    ...sorted(params).map(k => `params.${k}`),
    ...sorted(metrics).map(k => `metrics.${k}`)
  ];
}

/** Label of an axis value at a tick: category names or a compact number. */
export function axisTickLabel(axis: IAxis, t: number): string {
  if (axis.kind === 'category') {
    return axis.categories[Math.round(t * (axis.categories.length - 1))] ?? '';
  }
  const v =
    axis.scale === 'log'
      ? 10 **
        (Math.log10(axis.min) +
          t * (Math.log10(axis.max) - Math.log10(axis.min)))
      : axis.min + t * (axis.max - axis.min);
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0)
    ? v.toExponential(2)
    : String(Number(v.toPrecision(4)));
}

/** A distinct, theme-independent colour per run index (golden-angle hues). */
export function runColor(index: number): string {
  const hue = Math.round((index * 137.508 + 210) % 360);
  return `hsl(${hue}, 65%, 50%)`;
}

/**
 * A run's colour, the same in every view (runs table, compare charts, run
 * detail): `runColor` of a hash of its id.
 */
export function runColorOf(runId: string): string {
  // FNV-1a: cheap and well spread over short ids.
  let hash = 0x811c9dc5;
  for (let i = 0; i < runId.length; i++) {
    hash ^= runId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return runColor(hash % 997);
}

/** Keys offered at once by the axis and scatter choosers (type to narrow). */
export const COMPARE_CHOICES = 200;

/** Whether a key matches the compare view's key search (case-insensitive). */
export function keyMatches(key: string, search: string): boolean {
  return !search || key.toLowerCase().includes(search.toLowerCase());
}

/**
 * The choices of a chooser: the chosen ones first, then the ids matching the
 * search, at most `limit` in all beyond the chosen ones.
 */
export function boundedChoices(
  ids: readonly string[],
  chosen: readonly string[],
  search: string,
  limit: number = COMPARE_CHOICES
): { ids: string[]; more: number } {
  const picked = chosen.filter(id => ids.includes(id));
  const rest = ids.filter(id => !picked.includes(id) && keyMatches(id, search));
  return {
    ids: [...picked, ...rest.slice(0, limit)],
    more: Math.max(0, rest.length - limit)
  };
}
