/** Ids and tokens shared by the plugins of the extension. */
import { Token } from '@lumino/coreutils';

import type { MLOpsClient } from './api';
import type { ArtifactSource } from './artifactsDrive';
import type { RunsModel } from './model';

/** Id of the main plugin; also the settings schema id (`schema/plugin.json`). */
export const PLUGIN_ID = 'jupyter-mlops:plugin';

/** Id of the sidebar widget (used by the layout restorer and tests). */
export const RUNS_PANEL_ID = 'jupyter-mlops-runs';

/** Command ids. */
export namespace CommandIDs {
  export const openRuns = 'jupyter-mlops:open-runs';
  export const refresh = 'jupyter-mlops:refresh';
  export const createExperiment = 'jupyter-mlops:create-experiment';
  export const renameExperiment = 'jupyter-mlops:rename-experiment';
  export const deleteExperiment = 'jupyter-mlops:delete-experiment';
  export const restoreExperiment = 'jupyter-mlops:restore-experiment';
  export const openRun = 'jupyter-mlops:open-run';
  export const compareRuns = 'jupyter-mlops:compare-runs';
  export const deleteRuns = 'jupyter-mlops:delete-runs';
  export const tagRuns = 'jupyter-mlops:tag-runs';
  export const notebookRuns = 'jupyter-mlops:notebook-runs';
  export const openRunsTable = 'jupyter-mlops:open-runs-table';
}

/** What the main plugin provides to other plugins (issue #3's panels). */
export interface IMLOps {
  /** The REST client. */
  readonly client: MLOpsClient;
  /** The runs model behind the sidebar. */
  readonly runsModel: RunsModel;
  /**
   * Open notebook JSON (an artifact, a step's executed notebook) read-only
   * from the store; `source` says where it lives (reopened after a reload).
   */
  readonly openNotebookContent?: (
    name: string,
    content: string,
    source?: ArtifactSource
  ) => void;
}

/** Token of `IMLOps`. */
export const IMLOps = new Token<IMLOps>(
  'jupyter-mlops:IMLOps',
  'The MLOps REST client and runs model.'
);
