/**
 * A runs tab's view choices (columns, their widths, sort, grouping) kept per
 * experiment in JupyterLab's state database, so a reload or a tab opened
 * again shows the table as it was left.
 */
import type { IStateDB } from '@jupyterlab/statedb';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import type { IRunsView, RunsModel } from '../model';

/** Key of an experiment's runs-tab view in the state database. */
export function runsViewKey(experimentId: string): string {
  return `jupyter-mlops:runs-view:${experimentId}`;
}

/** A stored view read back, or null when it is not one (another version, edited). */
export function parseRunsView(value: unknown): IRunsView | null {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return null;
  }
  const v = value as Record<string, unknown>;
  const sort = v.sort as Record<string, unknown> | undefined;
  if (
    !Array.isArray(v.columns) ||
    !v.columns.every(c => typeof c === 'string') ||
    !sort ||
    typeof sort.column !== 'string' ||
    typeof sort.descending !== 'boolean' ||
    !(v.groupBy === null || typeof v.groupBy === 'string')
  ) {
    return null;
  }
  const widths: Record<string, number> = {};
  if (v.widths && typeof v.widths === 'object' && !Array.isArray(v.widths)) {
    for (const [k, w] of Object.entries(v.widths as Record<string, unknown>)) {
      if (typeof w === 'number' && Number.isFinite(w) && w > 0) {
        widths[k] = w;
      }
    }
  }
  return {
    columns: v.columns as string[],
    widths,
    sort: { column: sort.column, descending: sort.descending },
    groupBy: v.groupBy as string | null
  };
}

/**
 * Give `model` the view stored for `experimentId` (if any), then store its
 * view whenever it changes. Resolves once the stored view is applied.
 */
export async function keepRunsView(
  state: IStateDB,
  model: RunsModel,
  experimentId: string
): Promise<void> {
  const key = runsViewKey(experimentId);
  let saved = '';
  try {
    const view = parseRunsView(await state.fetch(key));
    if (view && !model.isDisposed) {
      saved = JSON.stringify(view);
      await model.applyView(view);
    }
  } catch (reason) {
    console.warn('jupyter-mlops: could not read the runs view', reason);
  }
  if (model.isDisposed) {
    return;
  }
  model.changed.connect(() => {
    const view = model.view;
    const text = JSON.stringify(view);
    if (text !== saved) {
      saved = text;
      state
        .save(key, view as unknown as ReadonlyPartialJSONObject)
        .catch(reason =>
          console.warn('jupyter-mlops: could not save the runs view', reason)
        );
    }
  });
}
