/**
 * Pure logic of the deployments UI: request rate and latency percentiles
 * from two consecutive scrapes of cumulative counters and histograms, the
 * series the sparklines draw, the traffic split, a deployment name for a
 * model, and the Try it box's first request (from the model's serving input
 * example or its signature).
 */
import {
  IDeployment,
  IDeploymentMetrics,
  ILatencyHistogram,
  ITrafficSplit
} from '../api';

/** A histogram's buckets as numbers, sorted by upper bound (`+Inf` last). */
export function normalizeBuckets(
  buckets: ILatencyHistogram['buckets']
): [number, number][] {
  return buckets
    .map(
      ([le, n]) =>
        [
          typeof le === 'number'
            ? le
            : /^\+?inf$/i.test(String(le))
              ? Infinity
              : Number(le),
          Number(n)
        ] as [number, number]
    )
    .filter(([le, n]) => !Number.isNaN(le) && Number.isFinite(n))
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The `q` quantile (0..1) of a cumulative histogram, interpolating linearly
 * inside the bucket it falls in, as Prometheus' `histogram_quantile` does: the
 * first bucket starts at 0; a quantile in the `+Inf` bucket is the highest
 * finite bound. `null` without observations.
 */
export function histogramQuantile(
  q: number,
  buckets: [number, number][]
): number | null {
  if (!buckets.length) {
    return null;
  }
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) {
    return null;
  }
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) {
        return prevLe;
      }
      const inBucket = count - prevCount;
      if (inBucket <= 0) {
        return le;
      }
      return prevLe + (le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = le === Infinity ? prevLe : le;
    prevCount = count;
  }
  return prevLe;
}

/**
 * Per-bucket growth between two cumulative histograms of the same bounds
 * (`prev` may be null: everything is new). A counter that went down (the
 * process restarted) counts from zero, as Prometheus' `increase` does.
 */
export function bucketDelta(
  prev: [number, number][] | null,
  cur: [number, number][]
): [number, number][] {
  const before = new Map(prev ?? []);
  const reset = cur.some(([le, n]) => n < (before.get(le) ?? 0));
  return cur.map(([le, n]) => [le, reset ? n : n - (before.get(le) ?? 0)]);
}

/** Sum histograms of several versions bound by bound. */
export function sumBuckets(all: [number, number][][]): [number, number][] {
  const sums = new Map<number, number>();
  for (const buckets of all) {
    for (const [le, n] of buckets) {
      sums.set(le, (sums.get(le) ?? 0) + n);
    }
  }
  return [...sums.entries()].sort((a, b) => a[0] - b[0]);
}

/** What two consecutive scrapes say of the time between them. */
export interface IMetricsPoint {
  /** End of the interval (ms since the epoch). */
  t: number;
  /** Requests per second. */
  rate: number;
  /** Errors per second. */
  errorRate: number;
  /** Latency percentiles over the interval, seconds (null: no request). */
  p50: number | null;
  p99: number | null;
}

/**
 * Rate and latency percentiles between two scrapes, over every version (a
 * version absent from `prev` counts from zero). `null` when the scrapes are
 * not in time order.
 */
export function pointBetween(
  prev: IDeploymentMetrics,
  cur: IDeploymentMetrics
): IMetricsPoint | null {
  const seconds = (cur.scraped_at - prev.scraped_at) / 1000;
  if (!(seconds > 0)) {
    return null;
  }
  const before = new Map(prev.versions.map(v => [v.version, v]));
  let requests = 0;
  let errors = 0;
  const deltas: [number, number][][] = [];
  for (const v of cur.versions) {
    const p = before.get(v.version);
    const dr = v.requests_total - (p?.requests_total ?? 0);
    const de = v.errors_total - (p?.errors_total ?? 0);
    // a counter that went down restarted: all it counts is new
    requests += dr < 0 ? v.requests_total : dr;
    errors += de < 0 ? v.errors_total : de;
    deltas.push(
      bucketDelta(
        p ? normalizeBuckets(p.latency_seconds.buckets) : null,
        normalizeBuckets(v.latency_seconds.buckets)
      )
    );
  }
  const merged = sumBuckets(deltas);
  return {
    t: cur.scraped_at,
    rate: requests / seconds,
    errorRate: errors / seconds,
    p50: histogramQuantile(0.5, merged),
    p99: histogramQuantile(0.99, merged)
  };
}

/** The last scrapes of each deployment, and the points between them. */
export class MetricsHistory {
  constructor(readonly maxPoints = 60) {}

  /**
   * Whether the server has the metrics route: a server without it (an older
   * one) is not asked again, so its 404s do not pile up.
   */
  available = true;

  /** Add a scrape (an older or repeated one is ignored). */
  record(name: string, scrape: IDeploymentMetrics): void {
    const entry = this._by.get(name) ?? { last: null, points: [] };
    if (entry.last && scrape.scraped_at <= entry.last.scraped_at) {
      return;
    }
    if (entry.last) {
      const point = pointBetween(entry.last, scrape);
      if (point) {
        entry.points.push(point);
        entry.points.splice(
          0,
          Math.max(0, entry.points.length - this.maxPoints)
        );
      }
    }
    entry.last = scrape;
    this._by.set(name, entry);
  }

  /** The points of a deployment, oldest first. */
  points(name: string): IMetricsPoint[] {
    return this._by.get(name)?.points ?? [];
  }

  /** The last scrape of a deployment. */
  last(name: string): IDeploymentMetrics | null {
    return this._by.get(name)?.last ?? null;
  }

  forget(name: string): void {
    this._by.delete(name);
  }

  private _by = new Map<
    string,
    { last: IDeploymentMetrics | null; points: IMetricsPoint[] }
  >();
}

/**
 * An SVG path through `values` (nulls leave gaps) scaled into
 * `width` × `height`, from 0 to the largest value; '' with no value.
 */
export function sparklinePath(
  values: (number | null)[],
  width: number,
  height: number
): string {
  const finite = values.filter(
    (v): v is number => v !== null && Number.isFinite(v)
  );
  if (!finite.length) {
    return '';
  }
  const top = Math.max(...finite) || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    const x = (i * step).toFixed(1);
    const y = (height - (v / top) * height).toFixed(1);
    d += `${pen ? 'L' : 'M'}${x},${y}`;
    pen = true;
  });
  return d;
}

/** A version and its share of the requests, for display. */
export interface ISplitRow {
  version: string;
  percent: number;
}

/**
 * Which versions serve and with what share: the metrics' `traffic_percent`
 * when it has them, else the deployment's `traffic`, else all of it on the
 * version it serves.
 */
export function trafficSplit(
  dep: IDeployment,
  metrics: IDeploymentMetrics | null
): ISplitRow[] {
  const fromMetrics = (metrics?.versions ?? []).filter(
    v => typeof v.traffic_percent === 'number'
  );
  if (fromMetrics.length) {
    return fromMetrics
      .map(v => ({ version: v.version, percent: v.traffic_percent as number }))
      .filter(r => r.percent > 0)
      .sort((a, b) => b.percent - a.percent);
  }
  const traffic: ITrafficSplit[] = dep.traffic ?? [];
  if (traffic.length) {
    return traffic
      .map(t => ({
        version: String(t.version ?? t.model_uri ?? '?'),
        percent: t.percent
      }))
      .sort((a, b) => b.percent - a.percent);
  }
  return dep.model_version
    ? [{ version: String(dep.model_version), percent: 100 }]
    : [];
}

/** "v3 80% · v4 20%" */
export function describeSplit(rows: ISplitRow[]): string {
  return rows.map(r => `v${r.version} ${Math.round(r.percent)}%`).join(' · ');
}

/** Deployment names are DNS labels: a-z, 0-9 and -, starting with a letter, ≤ 63. */
export function deploymentNameProblem(name: string): string {
  if (!name) {
    return 'A name is required.';
  }
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) {
    return 'Use lower-case letters, digits and -, starting with a letter and not ending with -, at most 63 characters.';
  }
  return '';
}

/** A deployment name suggested for a model: its name as a DNS label. */
export function suggestDeploymentName(model: string): string {
  const label = model
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+/g, '-')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || 'model';
}

/** The model URI of a version or an alias. */
export function modelUri(
  name: string,
  ref: { version: string } | { alias: string }
): string {
  return 'alias' in ref
    ? `models:/${name}@${ref.alias}`
    : `models:/${name}/${ref.version}`;
}

/** A sample value for a signature column type. */
function sampleFor(type: string): unknown {
  switch (type) {
    case 'double':
    case 'float':
      return 0.0;
    case 'integer':
    case 'long':
      return 0;
    case 'boolean':
      return false;
    case 'datetime':
      return '2024-01-01T00:00:00';
    default:
      return '';
  }
}

/**
 * The column signature of an `MLmodel` file (its `signature: inputs:` JSON),
 * or null when it has none that names columns.
 */
export function signatureColumns(
  mlmodel: string
): { name: string; type: string }[] | null {
  const match = /^\s+inputs:\s*'(.*)'\s*$/m.exec(mlmodel);
  if (!match) {
    return null;
  }
  try {
    const inputs = JSON.parse(match[1].replace(/''/g, "'"));
    if (!Array.isArray(inputs)) {
      return null;
    }
    const cols = inputs
      .filter(c => c && typeof c.name === 'string')
      .map(c => ({ name: c.name as string, type: String(c.type ?? 'string') }));
    return cols.length ? cols : null;
  } catch {
    return null;
  }
}

/**
 * The Try it box's first request: the model's serving input example as it
 * is (MLflow writes it in `/invocations` form), else one record of its
 * signature's columns with sample values, else an empty record list.
 */
export function tryItExample(
  servingExample: string | null,
  mlmodel: string | null
): string {
  if (servingExample) {
    try {
      return JSON.stringify(JSON.parse(servingExample), null, 2);
    } catch {
      // not JSON: fall through to the signature
    }
  }
  const cols = mlmodel ? signatureColumns(mlmodel) : null;
  if (cols) {
    const record: Record<string, unknown> = {};
    for (const c of cols) {
      record[c.name] = sampleFor(c.type);
    }
    return JSON.stringify({ dataframe_records: [record] }, null, 2);
  }
  return JSON.stringify({ dataframe_records: [{}] }, null, 2);
}

/** Seconds as `12 ms` / `1.3 s`. */
export function formatSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) {
    return '–';
  }
  return s < 1
    ? `${Number((s * 1000).toPrecision(3))} ms`
    : `${s.toFixed(2)} s`;
}

/** A request rate as `4.2/s`. */
export function formatRate(r: number | null): string {
  if (r === null || !Number.isFinite(r)) {
    return '–';
  }
  return `${r < 10 ? r.toFixed(1) : Math.round(r)}/s`;
}
