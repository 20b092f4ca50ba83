/** Types of the MLflow project routes (`api/v1/projects`). */

/** MLflow's parameter types. */
export type ProjectParamType = 'string' | 'float' | 'int' | 'path' | 'uri';

/** A parameter of an entry point (`default` null: required). */
export interface IProjectParameter {
  name: string;
  type: ProjectParamType;
  default: unknown;
  line?: number | null;
}

/** An entry point of an MLproject file. */
export interface IProjectEntryPoint {
  name: string;
  command: string;
  line?: number | null;
  parameters: IProjectParameter[];
}

/** Answer of `POST projects/inspect`. */
export interface IProject {
  name?: string | null;
  file?: string | null;
  env?: 'python' | 'conda' | 'docker' | null;
  env_file?: string | null;
  docker_image?: string | null;
  entry_points: IProjectEntryPoint[];
}

/** Body of `POST projects/runs`. */
export interface IProjectRunRequest {
  uri: string;
  entry_point?: string;
  parameters?: Record<string, unknown>;
  version?: string;
  env_manager?: 'local' | 'virtualenv' | 'uv' | 'conda';
  experiment_name?: string;
  run_name?: string;
}

/** A project run started by the server. */
export interface IProjectRun {
  run_id: string;
  experiment_id: string;
  status: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';
  entry_point: string;
  command: string;
  env_manager: string;
  error?: string | null;
}

/** A part of a project run's output. */
export interface IProjectLog {
  text: string;
  nextOffset: number;
  ended: boolean;
}
