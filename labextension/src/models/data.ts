/**
 * Shaping registry answers for the Models panel: the version table's rows,
 * a model's summary line, stage names, and whether an artifact folder is a
 * model (holds an `MLmodel` file).
 */
import { IFileInfo, IModelVersion, IRegisteredModel } from '../api';

/** MLflow's stages, in the order the stage menu offers them. */
export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type Stage = (typeof STAGES)[number];

/** A stage name in canonical case (`production` -> `Production`); unknown -> `None`. */
export function normalizeStage(stage: string | undefined | null): Stage {
  const s = (stage ?? '').toLowerCase();
  return STAGES.find(x => x.toLowerCase() === s) ?? 'None';
}

/** One row of the version table. */
export interface IVersionRow {
  version: string;
  stage: Stage;
  aliases: string[];
  runId: string;
  source: string;
  created?: number;
  description: string;
  status: string;
  /** The image built for it (`mlops.image` tag, set by `models build-image`), ''. */
  image: string;
  /** Deployments serving it (`mlops.deployment.<name>` tags). */
  deployments: string[];
}

/** Tag of a version's built image (`deployments/image.py`). */
export const IMAGE_TAG = 'mlops.image';
/** Prefix of the tags naming the deployments serving a version. */
export const DEPLOYMENT_TAG_PREFIX = 'mlops.deployment.';

/** Compare version numbers numerically (newest first). */
function byVersionDesc(a: { version: string }, b: { version: string }): number {
  const na = Number(a.version);
  const nb = Number(b.version);
  if (Number.isFinite(na) && Number.isFinite(nb)) {
    return nb - na;
  }
  return b.version.localeCompare(a.version);
}

/**
 * The rows of a model's version table, newest first. A version's aliases come
 * from the version itself and from the model's alias list (servers fill one
 * or the other), without duplicates.
 */
export function versionRows(
  versions: IModelVersion[],
  model?: IRegisteredModel | null
): IVersionRow[] {
  const fromModel = new Map<string, string[]>();
  for (const a of model?.aliases ?? []) {
    const list = fromModel.get(String(a.version)) ?? [];
    list.push(a.alias);
    fromModel.set(String(a.version), list);
  }
  return [...versions].sort(byVersionDesc).map(v => {
    const aliases = Array.from(
      new Set([
        ...(v.aliases ?? []),
        ...(fromModel.get(String(v.version)) ?? [])
      ])
    ).sort();
    return {
      version: String(v.version),
      stage: normalizeStage(v.current_stage),
      aliases,
      runId: v.run_id ?? '',
      source: v.source ?? '',
      created: v.creation_timestamp,
      description: v.description ?? '',
      status: v.status ?? 'READY',
      image: (v.tags ?? []).find(t => t.key === IMAGE_TAG)?.value ?? '',
      deployments: (v.tags ?? [])
        .filter(t => t.key.startsWith(DEPLOYMENT_TAG_PREFIX))
        .map(t => t.key.slice(DEPLOYMENT_TAG_PREFIX.length))
        .sort()
    };
  });
}

/** What the sidebar shows of a model. */
export interface IModelSummary {
  name: string;
  /** Highest version number among the latest versions, '' when none. */
  latest: string;
  /** Stage -> version, for stages other than `None`. */
  stages: { stage: Stage; version: string }[];
  /** `alias@version` labels. */
  aliases: string[];
  updated?: number;
}

/** Summarise a registered model for the list. */
export function modelSummary(model: IRegisteredModel): IModelSummary {
  const latest = [...(model.latest_versions ?? [])].sort(byVersionDesc);
  const stages = latest
    .map(v => ({ stage: normalizeStage(v.current_stage), version: v.version }))
    .filter(s => s.stage !== 'None')
    .sort((a, b) => STAGES.indexOf(a.stage) - STAGES.indexOf(b.stage));
  return {
    name: model.name,
    latest: latest[0]?.version ?? '',
    stages,
    aliases: (model.aliases ?? []).map(a => `${a.alias}@v${a.version}`).sort(),
    updated: model.last_updated_timestamp
  };
}

/** Whether a folder listing is a model directory (holds an `MLmodel` file). */
export function isModelFolder(files: IFileInfo[]): boolean {
  return files.some(
    f => !f.is_dir && (f.path.split('/').pop() ?? '') === 'MLmodel'
  );
}

/** Models sorted by most recently updated, then by name. */
export function sortModels(models: IRegisteredModel[]): IRegisteredModel[] {
  return [...models].sort(
    (a, b) =>
      (b.last_updated_timestamp ?? 0) - (a.last_updated_timestamp ?? 0) ||
      a.name.localeCompare(b.name)
  );
}

/**
 * Check an alias as the registry does: letters, digits, `_` and `-`, at most
 * 255 characters, not `latest` nor `v<number>`. Returns the problem, or ''.
 */
export function aliasProblem(alias: string): string {
  if (!alias) {
    return 'An alias cannot be empty.';
  }
  if (alias.length > 255) {
    return 'An alias has at most 255 characters.';
  }
  if (!/^[A-Za-z0-9_-]+$/.test(alias)) {
    return 'An alias may hold only letters, digits, _ and -.';
  }
  if (/^latest$/i.test(alias) || /^v\d+$/i.test(alias)) {
    return `'${alias}' is reserved.`;
  }
  return '';
}

/** A model name suggested for a run's model folder: the folder's name. */
export function suggestModelName(path: string): string {
  return path.split('/').filter(Boolean).pop() ?? 'model';
}

/** An MLflow 3 logged model as `logged-models/search` answers it (the fields used here). */
export interface ILoggedModel {
  info: {
    model_id: string;
    name: string;
    status?: string;
    creation_timestamp_ms?: number;
    source_run_id?: string;
    registrations?: { name: string; version: string }[];
  };
}

/** One row of a run's logged-model list. */
export interface ILoggedModelRow {
  modelId: string;
  name: string;
  /** `READY`, `PENDING`, `UPLOAD_FAILED` (the `LOGGED_MODEL_` prefix dropped). */
  status: string;
  created?: number;
  /** Registered versions of it, as `name v<version>`. */
  registrations: string[];
}

/** The rows of a run's logged models, newest first. */
export function loggedModelRows(models: ILoggedModel[]): ILoggedModelRow[] {
  return models
    .map(m => ({
      modelId: m.info.model_id,
      name: m.info.name,
      status: (m.info.status ?? '').replace(/^LOGGED_MODEL_/, '') || 'UNKNOWN',
      created: m.info.creation_timestamp_ms,
      registrations: (m.info.registrations ?? []).map(
        r => `${r.name} v${r.version}`
      )
    }))
    .sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
}

/** The logged-models/search filter for the models a run logged (quotes escaped). */
export function runModelsFilter(runId: string): string {
  return `source_run_id = '${runId.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
