/**
 * The links MLflow's client prints ("View run at <uri>/#/experiments/3/runs/<id>")
 * and MLflow UI's model links: the server redirects `{base_url}mlops/` to
 * JupyterLab keeping the `#/...` fragment, and the front end opens that view.
 */

/** What a link's fragment asks to open. */
export type MlflowLink =
  | { kind: 'run'; experimentId: string; runId: string }
  | { kind: 'experiment'; experimentId: string }
  | { kind: 'model'; name: string; version: string | null };

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
  if (parts[0] === 'models' && parts[1]) {
    const version = parts[2] === 'versions' && parts[3] ? parts[3] : null;
    return { kind: 'model', name: parts[1], version };
  }
  return null;
}
