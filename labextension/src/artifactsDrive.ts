/**
 * `ArtifactsDrive`: run artifacts and executed pipeline notebooks as a
 * read-only JupyterLab drive (`mlops-artifacts:`), so they open as documents
 * straight from the store, with nothing written into the user's workspace;
 * "Save a copy…" is the only way a copy lands there.
 *
 * Paths (local to the drive):
 * - `runs/<run id>/<artifact path>`: a run's artifact;
 * - `pipelines/<pipeline run id>/<step>/<file name>`: a step's executed notebook.
 */
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { MLOpsClient } from './api';

/** The drive's name: paths read `mlops-artifacts:runs/<id>/<path>`. */
export const ARTIFACTS_DRIVE = 'mlops-artifacts';

/** What a drive path names, or null. */
export type ArtifactSource =
  | { kind: 'run'; runId: string; path: string }
  | { kind: 'pipeline'; runId: string; step: string; name: string };

/** Parse a drive-local path. */
export function parseArtifactPath(localPath: string): ArtifactSource | null {
  const parts = localPath.replace(/^\/+/, '').split('/');
  if (parts[0] === 'runs' && parts[1] && parts.length > 2) {
    return { kind: 'run', runId: parts[1], path: parts.slice(2).join('/') };
  }
  if (parts[0] === 'pipelines' && parts[1] && parts[2] && parts[3]) {
    return {
      kind: 'pipeline',
      runId: parts[1],
      step: parts[2],
      name: parts.slice(3).join('/')
    };
  }
  return null;
}

/** The drive-local path of a source. */
export function artifactPath(source: ArtifactSource): string {
  return source.kind === 'run'
    ? `runs/${source.runId}/${source.path}`
    : `pipelines/${source.runId}/${source.step}/${source.name}`;
}

/** The contents model of a file's text (a notebook when named `.ipynb`). */
export function artifactModel(
  localPath: string,
  text: string
): Contents.IModel {
  const name = localPath.split('/').pop() ?? localPath;
  const notebook = name.endsWith('.ipynb');
  return {
    name,
    path: localPath,
    type: notebook ? 'notebook' : 'file',
    writable: false,
    // A record that does not change: when it was read.
    created: new Date().toISOString(),
    last_modified: new Date().toISOString(),
    mimetype: notebook ? 'application/x-ipynb+json' : 'text/plain',
    content: notebook ? JSON.parse(text) : text,
    format: notebook ? 'json' : 'text',
    size: text.length
  };
}

/** Artifact texts kept in memory. */
const MAX_KEPT = 20;

/** The error every write gets. */
function readOnly(): Promise<never> {
  return Promise.reject(
    new Error(
      'MLOps artifacts are read-only: use "Save a copy…" to keep an editable copy.'
    )
  );
}

/** A read-only drive over the store's artifacts. */
export class ArtifactsDrive implements Contents.IDrive {
  constructor(options: { client: MLOpsClient }) {
    this._client = options.client;
    this.serverSettings = options.client.serverSettings;
  }

  readonly name = ARTIFACTS_DRIVE;
  readonly serverSettings: ServerConnection.ISettings;

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    this._isDisposed = true;
    this._known.clear();
    Signal.clearData(this);
  }

  /** Keep text already read (a preview) so its first open reads nothing. */
  remember(localPath: string, text: string): void {
    this._known.delete(localPath);
    this._known.set(localPath, text);
    // Bounded: the oldest texts go (read again if reopened).
    for (const key of this._known.keys()) {
      if (this._known.size <= MAX_KEPT) {
        break;
      }
      this._known.delete(key);
    }
  }

  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const source = parseArtifactPath(localPath);
    if (!source) {
      throw new Error(`No MLOps artifact at ${localPath}`);
    }
    let text = this._known.get(localPath);
    if (text === undefined) {
      if (source.kind === 'run') {
        const run = await this._client.getRun(source.runId);
        const answer = await this._client.fetchArtifact(run.info, source.path);
        text = await answer.text();
      } else {
        text = await this._client.getStepNotebook(source.runId, source.step);
      }
      this.remember(localPath, text);
    }
    const model = artifactModel(localPath, text);
    return options?.content === false ? { ...model, content: null } : model;
  }

  async getDownloadUrl(localPath: string): Promise<string> {
    const source = parseArtifactPath(localPath);
    if (source?.kind !== 'run') {
      throw new Error(`No download for ${localPath}`);
    }
    const run = await this._client.getRun(source.runId);
    return this._client.artifactUrl(run.info, source.path);
  }

  newUntitled(): Promise<Contents.IModel> {
    return readOnly();
  }

  delete(): Promise<void> {
    return readOnly();
  }

  rename(): Promise<Contents.IModel> {
    return readOnly();
  }

  save(): Promise<Contents.IModel> {
    return readOnly();
  }

  copy(): Promise<Contents.IModel> {
    return readOnly();
  }

  createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return readOnly();
  }

  listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return Promise.resolve([]);
  }

  restoreCheckpoint(): Promise<void> {
    return readOnly();
  }

  deleteCheckpoint(): Promise<void> {
    return readOnly();
  }

  private _client: MLOpsClient;
  private _known = new Map<string, string>();
  private _isDisposed = false;
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
}
