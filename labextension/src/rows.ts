/**
 * Shaping REST entities into what the panels display: table rows for runs,
 * ordering and default choice for experiments.
 */
import { quoteFilterValue } from './api/client';
import { IExperiment, IKeyValue, IRun, RunStatus } from './api/types';
import {
  formatDateTime,
  formatDuration,
  formatTimestamp,
  isActiveStatus,
  runDuration,
  statusLabel
} from './format';

/** MLflow's system tags the panels read. */
export const Tags = {
  runName: 'mlflow.runName',
  user: 'mlflow.user',
  sourceName: 'mlflow.source.name',
  sourceType: 'mlflow.source.type',
  parentRunId: 'mlflow.parentRunId',
  note: 'mlflow.note.content',
  notebookPath: 'mlops.source.notebook_path',
  gitCommit: 'mlflow.source.git.commit',
  gitBranch: 'mlflow.source.git.branch',
  gitDirty: 'mlflow.source.git.dirty'
} as const;

/** One row of the runs table. */
export interface IRunRow {
  /** The run's id (row key). */
  runId: string;
  /** The run name, or a short id when it has none. */
  name: string;
  /** MLflow's status enum name. */
  status: RunStatus | string;
  /** Human label of the status. */
  statusLabel: string;
  /** Whether the run may still change. */
  active: boolean;
  /** Start time, epoch ms, or null. */
  startTime: number | null;
  /** Start time for the cell. */
  started: string;
  /** Full start time for the tooltip. */
  startedTitle: string;
  /** Duration so far (running) or total. */
  duration: string;
  /** Who ran it (`mlflow.user`), or empty. */
  user: string;
  /** Script or notebook file name (`mlflow.source.name`, base name), or empty. */
  source: string;
  /** Parent run id for nested runs, or null. */
  parentRunId: string | null;
}

/** The value of a tag, or `undefined`. */
export function tagValue(
  tags: IKeyValue[] | undefined,
  key: string
): string | undefined {
  return tags?.find(tag => tag.key === key)?.value;
}

/** The last path segment of a file path or URL. */
export function baseName(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, '');
  const cut = Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\'));
  return cut >= 0 ? trimmed.slice(cut + 1) : trimmed;
}

/** A run's display name: `run_name`, the `mlflow.runName` tag, or its short id. */
export function runName(run: IRun): string {
  const info = run.info;
  const fromTag = tagValue(run.data?.tags, Tags.runName);
  const id = info.run_id || info.run_uuid || '';
  return info.run_name || fromTag || id.slice(0, 8) || '(unnamed)';
}

/** Turn a REST run into a table row; `now` is the clock for running runs. */
export function runToRow(run: IRun, now: number): IRunRow {
  const info = run.info;
  const tags = run.data?.tags;
  const status = info.status ?? 'RUNNING';
  const start = info.start_time || null;
  const source = tagValue(tags, Tags.sourceName);
  return {
    runId: info.run_id || info.run_uuid || '',
    name: runName(run),
    status,
    statusLabel: statusLabel(status),
    active: isActiveStatus(status),
    startTime: start,
    started: formatTimestamp(start, now),
    startedTitle: start ? formatDateTime(start) : '',
    duration: formatDuration(
      runDuration(
        info.start_time,
        isActiveStatus(status) ? undefined : info.end_time,
        now
      )
    ),
    user: tagValue(tags, Tags.user) || info.user_id || '',
    source: source ? baseName(source) : '',
    parentRunId: tagValue(tags, Tags.parentRunId) || null
  };
}

/**
 * Table rows for a list of runs: deleted runs dropped, newest first (runs
 * with no start time last), ties broken by id so the order is stable.
 */
export function runsToRows(runs: IRun[], now: number): IRunRow[] {
  return runs
    .filter(run => run.info.lifecycle_stage !== 'deleted')
    .map(run => runToRow(run, now))
    .sort((a, b) => {
      const sa = a.startTime ?? -Infinity;
      const sb = b.startTime ?? -Infinity;
      if (sa !== sb) {
        return sb - sa;
      }
      return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
    });
}

/** Active experiments by name (case-insensitive, numbers in natural order). */
export function sortExperiments(experiments: IExperiment[]): IExperiment[] {
  return experiments
    .filter(exp => exp.lifecycle_stage !== 'deleted')
    .sort((a, b) =>
      a.name.localeCompare(b.name, undefined, {
        numeric: true,
        sensitivity: 'base'
      })
    );
}

/**
 * The experiment to show first: the most recently updated one (ties: the
 * highest id, i.e. the newest), or null when there are none.
 */
export function pickDefaultExperiment(
  experiments: IExperiment[]
): IExperiment | null {
  let best: IExperiment | null = null;
  let bestTime = -Infinity;
  for (const exp of experiments) {
    if (exp.lifecycle_stage === 'deleted') {
      continue;
    }
    const time = exp.last_update_time ?? exp.creation_time ?? 0;
    if (
      best === null ||
      time > bestTime ||
      (time === bestTime &&
        compareIds(exp.experiment_id, best.experiment_id) > 0)
    ) {
      best = exp;
      bestTime = time;
    }
  }
  return best;
}

/** Compare ids numerically when both are numbers, else as strings. */
export function compareIds(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb) && a !== '' && b !== '') {
    return na - nb;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Built-in columns of the runs table; others are `params.<k>` / `metrics.<k>`. */
export const BASE_COLUMNS = [
  'name',
  'status',
  'started',
  'duration',
  'user',
  'source'
] as const;

/** The sortable value of a row in a column (numbers sort numerically). */
export function columnValue(
  row: IRunRow,
  run: IRun,
  column: string,
  now: number
): string | number | undefined {
  switch (column) {
    case 'name':
      return row.name.toLowerCase();
    case 'status':
      return row.status;
    case 'started':
      return row.startTime ?? undefined;
    case 'duration':
      return row.startTime === null
        ? undefined
        : (row.active ? now : (run.info.end_time ?? now)) - row.startTime;
    case 'user':
      return row.user || undefined;
    case 'source':
      return row.source || undefined;
  }
  if (column.startsWith('params.')) {
    const key = column.slice(7);
    const v = runKey(run, 'params', key) as string | undefined;
    return v !== undefined && v !== '' && Number.isFinite(Number(v))
      ? Number(v)
      : v;
  }
  if (column.startsWith('metrics.')) {
    const key = column.slice(8);
    const v = runKey(run, 'metrics', key);
    return v === undefined ? undefined : Number(v);
  }
  return undefined;
}

/**
 * Sort rows by a column; missing values go last whatever the direction,
 * numbers before strings, ties keep the incoming order (stable sort).
 */
export function sortRows<R extends { row: IRunRow; run: IRun }>(
  items: readonly R[],
  column: string,
  descending: boolean,
  now: number
): R[] {
  const keyed = items.map((item, index) => ({
    item,
    index,
    value: columnValue(item.row, item.run, column, now)
  }));
  keyed.sort((a, b) => {
    const va = a.value;
    const vb = b.value;
    const ma = va === undefined || (typeof va === 'number' && Number.isNaN(va));
    const mb = vb === undefined || (typeof vb === 'number' && Number.isNaN(vb));
    if (ma || mb) {
      return ma === mb ? a.index - b.index : ma ? 1 : -1;
    }
    let c: number;
    if (typeof va === 'number' && typeof vb === 'number') {
      c = va - vb;
    } else if (typeof va === 'number') {
      c = -1;
    } else if (typeof vb === 'number') {
      c = 1;
    } else {
      c = String(va).localeCompare(String(vb), undefined, { numeric: true });
    }
    return (descending ? -c : c) || a.index - b.index;
  });
  return keyed.map(k => k.item);
}

/**
 * The rows a window of `viewport` px scrolled to `scrollTop` shows, with
 * `overscan` extra rows each side: `[first, end)`.
 */
export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  count: number,
  overscan = 8
): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const end = Math.min(
    count,
    Math.ceil((scrollTop + viewport) / rowHeight) + overscan
  );
  return [first, Math.max(first, end)];
}

/** Each run's params, metrics and tags by key, made once per run object. */
const keyIndexes = new WeakMap<
  IRun,
  Record<'params' | 'metrics' | 'tags', Map<string, string | number>>
>();

/**
 * A run's `params`, `metrics` or `tags` value of `key`: a map lookup, since a
 * wide run holds thousands of keys and a table asks for each visible cell.
 */
export function runKey(
  run: IRun,
  kind: 'params' | 'metrics' | 'tags',
  key: string
): string | number | undefined {
  let index = keyIndexes.get(run);
  if (!index) {
    const map = (list?: { key: string; value: string | number }[]) =>
      new Map((list ?? []).map(item => [item.key, item.value]));
    index = {
      params: map(run.data?.params),
      metrics: map(run.data?.metrics),
      tags: map(run.data?.tags)
    };
    keyIndexes.set(run, index);
  }
  return index[kind].get(key);
}

/** The value of a `params.x` / `metrics.x` / `tags.x` column of a run, or undefined. */
export function keyValue(
  run: IRun,
  column: string
): string | number | undefined {
  const m = /^(params|metrics|tags)\.(.+)$/.exec(column);
  if (!m) {
    return undefined;
  }
  return runKey(run, m[1] as 'params' | 'metrics' | 'tags', m[2]);
}

/**
 * The filter of one group: runs whose `params.x` / `tags.x` is `value`
 * (undefined: runs without it), within `filter`.
 */
export function groupFilter(
  column: string,
  value: string | undefined,
  filter: string
): string {
  const m = /^(params|tags)\.(.+)$/.exec(column);
  if (!m) {
    return filter;
  }
  const key = `${m[1]}.\`${m[2].replace(/`/g, '')}\``;
  const test =
    value === undefined
      ? `${key} IS NULL`
      : `${key} = ${quoteFilterValue(value)}`;
  return filter ? `${test} AND ${filter}` : test;
}

/**
 * Whether a top-level row starts a group: its group value differs from the
 * previous top-level row's (`previous`: that run, null when none or not
 * loaded yet).
 */
export function startsGroup(
  run: IRun,
  previous: IRun | null,
  groupBy: string
): boolean {
  return (
    previous === null ||
    String(keyValue(run, groupBy) ?? '\u0000') !==
      String(keyValue(previous, groupBy) ?? '\u0000')
  );
}
