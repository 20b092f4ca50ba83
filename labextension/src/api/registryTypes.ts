/**
 * Types of the model registry REST API (MLflow's `registered-models` and
 * `model-versions`, and our `v1/registry/lineage`; see docs/models.md).
 */

/** A registered model's alias. */
export interface IModelAlias {
  alias: string;
  version: string;
}

/** A model version. */
export interface IModelVersion {
  name: string;
  version: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  aliases?: string[];
  tags?: { key: string; value: string }[];
}

/** A registered model. */
export interface IRegisteredModel {
  name: string;
  creation_timestamp?: number;
  last_updated_timestamp?: number;
  description?: string;
  latest_versions?: IModelVersion[];
  aliases?: IModelAlias[];
  tags?: { key: string; value: string }[];
}

/** Answer of `v1/registry/lineage`. */
export interface IModelLineage {
  model_version: IModelVersion;
  run?: {
    run_id: string;
    experiment_id?: string;
    run_name?: string;
    status?: string;
    lifecycle_stage?: string;
  } | null;
  source?: {
    name?: string | null;
    type?: string | null;
    git_commit?: string | null;
    git_branch?: string | null;
    git_repo_url?: string | null;
    notebook?: string | null;
  } | null;
}
