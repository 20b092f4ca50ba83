/**
 * Pure logic of the Jobs view: the nodes × ranks grid, a job's progress and
 * the status-bar summary, and the submit form's values turned into a job
 * spec (`KEY=value` lines for parameters and environment).
 */
import { IJob, IJobRank, IJobSpec } from '../api';

/** Job states after which nothing changes. */
export const JOB_TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

/** One cell of the grid: a rank, or a placeholder where none is reported yet. */
export interface IGridCell {
  node: number;
  localRank: number;
  /** The global rank (`node * procsPerNode + localRank` before it is reported). */
  rank: number;
  status: string;
  info: IJobRank | null;
}

/** The grid: one row per node, one column per process of a node. */
export interface IRankGrid {
  nodes: number;
  procsPerNode: number;
  rows: IGridCell[][];
}

/**
 * Lay a job's ranks out as nodes × local ranks. The shape comes from the job
 * (`nodes`, `procs_per_node`), grown to hold any rank reported outside it;
 * missing ranks are `PENDING` placeholders.
 */
export function rankGrid(
  job: Pick<IJob, 'nodes' | 'procs_per_node' | 'ranks'>
): IRankGrid {
  const ranks = job.ranks ?? [];
  let nodes = Math.max(1, job.nodes ?? 1);
  let procs = Math.max(1, job.procs_per_node ?? 1);
  for (const r of ranks) {
    nodes = Math.max(nodes, r.node + 1);
    procs = Math.max(procs, r.local_rank + 1);
  }
  const byPlace = new Map<string, IJobRank>();
  for (const r of ranks) {
    byPlace.set(`${r.node}:${r.local_rank}`, r);
  }
  const rows: IGridCell[][] = [];
  for (let node = 0; node < nodes; node++) {
    const row: IGridCell[] = [];
    for (let local = 0; local < procs; local++) {
      const info = byPlace.get(`${node}:${local}`) ?? null;
      row.push({
        node,
        localRank: local,
        rank: info ? info.rank : node * procs + local,
        status: info ? String(info.status) : 'PENDING',
        info
      });
    }
    rows.push(row);
  }
  return { nodes, procsPerNode: procs, rows };
}

/** How far a job is: ranks ended, running, all; a percentage of ended ranks. */
export interface IJobProgress {
  ended: number;
  running: number;
  total: number;
  percent: number;
}

/** A job's progress from its rank counts. */
export function jobProgress(
  job: Pick<IJob, 'progress' | 'ranks'>
): IJobProgress {
  const counts = job.progress?.counts ?? {};
  const total = job.progress?.total ?? job.ranks?.length ?? 0;
  const ended =
    (counts['SUCCEEDED'] ?? 0) +
    (counts['FAILED'] ?? 0) +
    (counts['CANCELED'] ?? 0);
  const running = counts['RUNNING'] ?? 0;
  return {
    ended,
    running,
    total,
    percent: total ? Math.round((100 * ended) / total) : 0
  };
}

/** The status bar's text for the jobs that have not ended ('' when none). */
export function activeJobsSummary(jobs: IJob[]): string {
  const active = jobs.filter(j => !JOB_TERMINAL.has(String(j.status)));
  if (!active.length) {
    return '';
  }
  let running = 0;
  let total = 0;
  for (const j of active) {
    running += j.progress?.counts?.['RUNNING'] ?? 0;
    total += j.progress?.total ?? 0;
  }
  const what =
    active.length === 1 ? `job ${active[0].name}` : `${active.length} jobs`;
  return `${what}: ${running}/${total} ranks running`;
}

/** Values or one message per bad line. */
export interface IParsedLines {
  values: Record<string, string>;
  errors: string[];
}

/**
 * `KEY=value` lines (blank lines and `#` comments skipped); a line without
 * `=` or with an empty key is an error naming its line.
 */
export function parseKeyValueLines(text: string): IParsedLines {
  const values: Record<string, string> = {};
  const errors: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) {
      return;
    }
    const at = line.indexOf('=');
    const key = at > 0 ? line.slice(0, at).trim() : '';
    if (!key) {
      errors.push(`line ${i + 1}: expected NAME=value, got '${line}'`);
      return;
    }
    values[key] = line.slice(at + 1).trim();
  });
  return { values, errors };
}

/** A parameter's text as a typed default: JSON numbers and booleans, else text. */
export function typedValue(text: string): unknown {
  if (/^(true|false)$/.test(text)) {
    return text === 'true';
  }
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    return Number(text);
  }
  return text;
}

/** What the Jobs panel's submit form holds (texts as typed). */
export interface IJobFormValues {
  /** Entry point, relative to the server root (`.py`, `.sh` or `.ipynb`). */
  entry: string;
  name: string;
  framework: string;
  nodes: string;
  procsPerNode: string;
  gpu: string;
  cpu: string;
  memory: string;
  params: string;
  env: string;
  /** Container image (Kubernetes targets). */
  image: string;
  target: string;
}

/** A form's values to start with. */
export function emptyJobForm(entry = '', target = 'local'): IJobFormValues {
  return {
    entry,
    name: '',
    framework: 'generic',
    nodes: '1',
    procsPerNode: '1',
    gpu: '',
    cpu: '',
    memory: '',
    params: '',
    env: '',
    image: '',
    target
  };
}

/** A job name from an entry file: its base name, letters, digits, `.`, `_`, `-`. */
export function jobNameFor(entry: string): string {
  const base = (entry.split('/').pop() ?? '').replace(/\.(py|sh|ipynb)$/i, '');
  const name = base.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[-.]+/, '');
  return (name || 'job').slice(0, 63);
}

/** The `POST jobs` body of a form, or its errors by field. */
export interface IFormSpec {
  spec: IJobSpec;
  baseDir: string;
  errors: Record<string, string>;
}

function positiveInt(
  text: string,
  field: string,
  errors: Record<string, string>
): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < 1) {
    errors[field] = `'${t}' is not a whole number of at least 1`;
    return 1;
  }
  return Number(t);
}

/**
 * Turn the form into a job spec whose paths are relative to the entry file's
 * folder (`baseDir`, relative to the server root); what is wrong is reported
 * per field (`entry`, `nodes`, `gpu`, `params`, ...). The server validates the
 * rest.
 */
export function formToSpec(v: IJobFormValues): IFormSpec {
  const errors: Record<string, string> = {};
  const entry = v.entry.trim().replace(/^\/+/, '');
  const parts = entry.split('/');
  const file = parts.pop() ?? '';
  const baseDir = parts.join('/');
  const spec: IJobSpec = { name: v.name.trim() || jobNameFor(entry) };
  if (!file) {
    errors['entry'] = 'choose the script or notebook to run';
  } else if (/\.ipynb$/i.test(file)) {
    spec.notebook = file;
  } else {
    spec.script = file;
  }
  spec.framework = v.framework || 'generic';
  spec.nodes = positiveInt(v.nodes, 'nodes', errors);
  spec.procs_per_node = positiveInt(v.procsPerNode, 'procsPerNode', errors);
  const resources: IJobSpec['resources'] = {};
  if (v.gpu.trim()) {
    if (!/^\d+$/.test(v.gpu.trim())) {
      errors['gpu'] = `'${v.gpu.trim()}' is not a whole number`;
    } else if (Number(v.gpu) > 0) {
      resources.gpu = Number(v.gpu);
    }
  }
  if (v.cpu.trim()) {
    resources.cpu = typedValue(v.cpu.trim()) as number | string;
  }
  if (v.memory.trim()) {
    resources.memory = v.memory.trim();
  }
  if (Object.keys(resources).length) {
    spec.resources = resources;
  }
  const params = parseKeyValueLines(v.params);
  if (params.errors.length) {
    errors['params'] = params.errors.join('; ');
  } else if (Object.keys(params.values).length) {
    const typed: Record<string, unknown> = {};
    for (const [k, t] of Object.entries(params.values)) {
      typed[k] = typedValue(t);
    }
    spec.params = typed;
  }
  const env = parseKeyValueLines(v.env);
  if (env.errors.length) {
    errors['env'] = env.errors.join('; ');
  } else if (Object.keys(env.values).length) {
    spec.env = env.values;
  }
  if (v.image.trim()) {
    spec.image = v.image.trim();
  }
  return { spec, baseDir, errors };
}

/** Whether a path names a training job file. */
export function isJobFile(path: string): boolean {
  return /\.job\.ya?ml$/i.test(path);
}
