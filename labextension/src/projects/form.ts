/**
 * An MLflow entry point as the pipeline form's input: its parameters become
 * the form's typed fields (float → a decimal number, int → a whole number,
 * string/path/uri → text; no default → required), so "Run MLflow project…"
 * reuses `pipelines/formDialog.ts`.
 */
import {
  IPipelineParam,
  IPipelineTarget,
  IProject,
  IProjectEntryPoint,
  IValidateResponse,
  PipelineParamType
} from '../api';

/** Whether a path names an MLproject file (matched case-insensitively, as MLflow does). */
export function isMLprojectFile(path: string): boolean {
  return /(^|\/)mlproject$/i.test(path);
}

/** The project directory of an MLproject file's path ('' for the root). */
export function projectDir(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

const TYPES: Record<string, PipelineParamType> = {
  float: 'float',
  int: 'integer',
  string: 'string',
  path: 'string',
  uri: 'string'
};

/** The form's description of one entry point. */
export function entryPointForm(
  project: IProject,
  entry: IProjectEntryPoint
): IValidateResponse {
  const parameters: Record<string, IPipelineParam> = {};
  for (const p of entry.parameters) {
    const param: IPipelineParam = {
      type: TYPES[p.type] ?? 'string',
      description: `${p.type}${p.line ? ` (MLproject line ${p.line})` : ''}`
    };
    if (p.default !== null && p.default !== undefined) {
      param.default = p.default;
    }
    parameters[p.name] = param;
  }
  return {
    valid: true,
    issues: [],
    pipeline: {
      name: `${project.name ?? 'project'}:${entry.name}`,
      parameters,
      steps: {}
    }
  };
}

/** The only place project runs go from the form: this server. */
export const LOCAL_TARGET: IPipelineTarget[] = [
  { name: 'local', display_name: 'This server', kind: 'local', default: true }
];
