/**
 * Datasets a run used (`mlops.log_input`, `mlflow.log_input`, autologging): the run
 * detail's **Datasets** section (name, context, digest, source, schema, profile) and the
 * compare view's table of which runs used which data.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IDatasetInput, IRun } from '../api';

/** What the views show of one input. */
export interface IDatasetRow {
  /** `name@digest`: one dataset across runs. */
  id: string;
  name: string;
  digest: string;
  context: string;
  sourceType: string;
  /** The source's location (`uri`, `url`, `path`, ...) or its JSON as it is. */
  source: string;
  /** Schema columns as `name: type`. */
  columns: string[];
  /** Profile figures (`num_rows`, `num_elements`, ...) as `[key, value]`. */
  profile: [string, string][];
}

const CONTEXT_TAG = 'mlflow.data.context';

function parseJson(text: string | undefined): unknown {
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The location of a dataset source (MLflow's source JSON), or the text as it is. */
export function sourceLocation(source: string | undefined): string {
  const parsed = parseJson(source);
  if (parsed && typeof parsed === 'object') {
    const o = parsed as Record<string, unknown>;
    for (const key of ['uri', 'url', 'path', 'table_name', 'dataset_name']) {
      if (typeof o[key] === 'string') {
        return o[key] as string;
      }
    }
  }
  return source ?? '';
}

/** Column names and types of an MLflow schema (`mlflow_colspec` / `mlflow_tensorspec`). */
export function schemaColumns(schema: string | undefined): string[] {
  const parsed = parseJson(schema) as Record<string, unknown> | undefined;
  const specs = (parsed?.mlflow_colspec ?? parsed?.mlflow_tensorspec) as
    unknown[] | string | undefined;
  const list = typeof specs === 'string' ? parseJson(specs) : specs;
  if (!Array.isArray(list)) {
    return [];
  }
  return list.map(c => {
    const col = (c ?? {}) as Record<string, unknown>;
    const type =
      typeof col.type === 'string' ? col.type : JSON.stringify(col.type ?? '');
    return col.name !== undefined ? `${String(col.name)}: ${type}` : type;
  });
}

/** The rows of a run's dataset inputs, in logging order. */
export function datasetRows(
  inputs: readonly IDatasetInput[] | undefined
): IDatasetRow[] {
  return (inputs ?? []).map(input => {
    const d = input.dataset ?? {};
    const profile = parseJson(d.profile);
    return {
      id: `${d.name ?? ''}@${d.digest ?? ''}`,
      name: d.name ?? '',
      digest: d.digest ?? '',
      context: input.tags?.find(t => t.key === CONTEXT_TAG)?.value ?? '',
      sourceType: d.source_type ?? '',
      source: sourceLocation(d.source),
      columns: schemaColumns(d.schema),
      profile:
        profile && typeof profile === 'object' && !Array.isArray(profile)
          ? Object.entries(profile as Record<string, unknown>).map(([k, v]) => [
              k,
              typeof v === 'string' ? v : JSON.stringify(v)
            ])
          : []
    };
  });
}

/** The run detail's Datasets section; nothing for a run without dataset inputs. */
export function RunDatasets(props: {
  run: IRun;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { trans } = props;
  const rows = datasetRows(props.run.inputs?.dataset_inputs);
  if (!rows.length) {
    return null;
  }
  return (
    <section className="jp-mlops-Section jp-mlops-Datasets">
      <h3 className="jp-mlops-Section-title">{trans.__('Datasets')}</h3>
      {rows.map(r => (
        <div
          key={r.id}
          className="jp-mlops-Dataset"
          data-name={r.name}
          data-context={r.context}
        >
          <div className="jp-mlops-Dataset-head">
            <strong className="jp-mlops-Dataset-name">{r.name}</strong>
            {r.context ? (
              <span className="jp-mlops-Dataset-context">{r.context}</span>
            ) : null}
            <span className="jp-mlops-Muted" title={trans.__('Digest')}>
              {r.digest}
            </span>
          </div>
          <table className="jp-mlops-KV">
            <tbody>
              <tr>
                <th>{trans.__('Source')}</th>
                <td className="jp-mlops-Dataset-source">
                  {r.sourceType ? `${r.sourceType}: ` : ''}
                  {r.source}
                </td>
              </tr>
              {r.profile.map(([k, v]) => (
                <tr key={k} className="jp-mlops-Dataset-profile" data-key={k}>
                  <th>{k}</th>
                  <td>{v}</td>
                </tr>
              ))}
              {r.columns.length ? (
                <tr>
                  <th>{trans.__('Schema')}</th>
                  <td className="jp-mlops-Dataset-schema">
                    {r.columns.join(', ')}
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </div>
      ))}
    </section>
  );
}

/** One row per dataset, one column per run: the context each run used it in. */
export function datasetMatrix(
  runs: readonly IRun[]
): { id: string; label: string; cells: (string | undefined)[] }[] {
  const order: string[] = [];
  const labels = new Map<string, string>();
  const perRun = runs.map(run => {
    const used = new Map<string, string>();
    for (const row of datasetRows(run.inputs?.dataset_inputs)) {
      if (!labels.has(row.id)) {
        order.push(row.id);
        labels.set(
          row.id,
          row.digest ? `${row.name} (${row.digest})` : row.name
        );
      }
      used.set(row.id, row.context);
    }
    return used;
  });
  return order.map(id => ({
    id,
    label: labels.get(id) ?? id,
    cells: perRun.map(used => (used.has(id) ? used.get(id) || '✓' : undefined))
  }));
}

/** The compare view's Datasets table; nothing when no run logged a dataset. */
export function CompareDatasets(props: {
  runs: readonly IRun[];
  runLabel: (run: IRun, index: number) => React.ReactNode;
  trans: TranslationBundle;
}): JSX.Element | null {
  const rows = datasetMatrix(props.runs);
  if (!rows.length) {
    return null;
  }
  return (
    <section className="jp-mlops-Section jp-mlops-CompareDatasets">
      <h3 className="jp-mlops-Section-title">{props.trans.__('Datasets')}</h3>
      <div className="jp-mlops-TableScroll">
        <table className="jp-mlops-KV jp-mlops-CompareTable">
          <thead>
            <tr>
              <th />
              {props.runs.map((r, i) => (
                <th key={r.info.run_id} scope="col">
                  {props.runLabel(r, i)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(row => (
              <tr key={row.id} data-dataset={row.id}>
                <th scope="row">{row.label}</th>
                {row.cells.map((c, i) => (
                  <td key={i} data-used={c !== undefined ? 'true' : 'false'}>
                    {c ?? '—'}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
