/**
 * The links MLflow's client prints ("View run at <uri>/#/experiments/3/runs/<id>")
 * and MLflow UI's model links: the server redirects `{base_url}mlops/` to
 * JupyterLab keeping the `#/...` fragment, and the front end opens that view.
 */

/** What a link's fragment asks to open. */
export type MlflowLink =
  | { kind: 'run'; experimentId: string; runId: string }
  | { kind: 'experiment'; experimentId: string }
  | { kind: 'model'; name: string; version: string | null }
  | { kind: 'pipeline-run'; runId: string }
  | { kind: 'job'; jobId: string }
  | { kind: 'deployment'; name: string };

/** The view a `#/...` fragment of MLflow's UI names, or null. */
export function parseMlflowLink(hash: string): MlflowLink | null {
  const path = hash.replace(/^#/, '').split('?')[0];
  const parts = path
    .split('/')
    .filter(p => p !== '')
    .map(p => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  if (parts[0] === 'experiments' && parts[1]) {
    if (parts[2] === 'runs' && parts[3]) {
      return { kind: 'run', experimentId: parts[1], runId: parts[3] };
    }
    return { kind: 'experiment', experimentId: parts[1] };
  }
  if (parts[0] === 'pipelines' && parts[1] === 'runs' && parts[2]) {
    return { kind: 'pipeline-run', runId: parts[2] };
  }
  if (parts[0] === 'jobs' && parts[1]) {
    return { kind: 'job', jobId: parts[1] };
  }
  if (parts[0] === 'deployments' && parts[1]) {
    return { kind: 'deployment', name: parts[1] };
  }
  if (parts[0] === 'models' && parts[1]) {
    const version = parts[2] === 'versions' && parts[3] ? parts[3] : null;
    return { kind: 'model', name: parts[1], version };
  }
  return null;
}

/** The `#/...` fragment of a link (what `parseMlflowLink` reads back). */
export function linkFragment(link: MlflowLink): string {
  const e = encodeURIComponent;
  switch (link.kind) {
    case 'run':
      return `#/experiments/${e(link.experimentId)}/runs/${e(link.runId)}`;
    case 'experiment':
      return `#/experiments/${e(link.experimentId)}`;
    case 'model':
      return link.version
        ? `#/models/${e(link.name)}/versions/${e(link.version)}`
        : `#/models/${e(link.name)}`;
    case 'pipeline-run':
      return `#/pipelines/runs/${e(link.runId)}`;
    case 'job':
      return `#/jobs/${e(link.jobId)}`;
    case 'deployment':
      return `#/deployments/${e(link.name)}`;
  }
}

/**
 * The shareable URL of a view: the server's `mlops/` (which redirects to
 * JupyterLab keeping the fragment, as for MLflow's printed links).
 */
export function linkUrl(baseUrl: string, link: MlflowLink): string {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return `${base}mlops/${linkFragment(link)}`;
}

/** The view a main-area widget id of the extension shows, when it has a link. */
export function linkOfWidgetId(
  id: string
):
  | { kind: 'run'; runId: string }
  | { kind: 'pipeline-run'; runId: string }
  | { kind: 'model'; name: string }
  | { kind: 'experiment'; experimentId: string }
  | null {
  const take = (prefix: string) =>
    id.startsWith(prefix) ? id.slice(prefix.length) : null;
  const table = take('jupyter-mlops-runs-table-');
  if (table) {
    return { kind: 'experiment', experimentId: table };
  }
  const pipeline = take('jupyter-mlops-pipeline-run-');
  if (pipeline) {
    return { kind: 'pipeline-run', runId: pipeline };
  }
  const model = take('jupyter-mlops-model-');
  if (model) {
    try {
      return { kind: 'model', name: decodeURIComponent(model) };
    } catch {
      return null;
    }
  }
  const run = take('jupyter-mlops-run-');
  return run ? { kind: 'run', runId: run } : null;
}
