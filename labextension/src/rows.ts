/**
 * Shaping REST entities into what the panels display: table rows for runs,
 * ordering and default choice for experiments.
 */
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
  note: 'mlflow.note.content'
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
