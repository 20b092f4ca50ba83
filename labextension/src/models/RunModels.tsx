/**
 * The MLflow 3 logged models a run produced (`mlops.log_model`,
 * `mlflow.<flavor>.log_model`), for the run detail view: their files live
 * under the experiment, not among the run's artifacts, so the artifact tree
 * does not show them. Each can be registered (`runs:/<run>/<name>` resolves
 * to it on the server).
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import { describeError, IRunInfo, MLOpsClient } from '../api';
import {
  ILoggedModel,
  ILoggedModelRow,
  loggedModelRows,
  runModelsFilter
} from './data';

/** Renders nothing for a run without logged models. */
export function RunLoggedModels(props: {
  client: MLOpsClient;
  run: IRunInfo;
  trans: TranslationBundle;
  registerModel?: (runId: string, path: string) => void;
}): JSX.Element | null {
  const { client, run, trans, registerModel } = props;
  const [rows, setRows] = useState<ILoggedModelRow[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    client
      .request<{ models?: ILoggedModel[] }>('mlflow', 'logged-models/search', {
        method: 'POST',
        body: {
          experiment_ids: [run.experiment_id],
          filter: runModelsFilter(run.run_id),
          max_results: 100
        }
      })
      .then(answer => live && setRows(loggedModelRows(answer.models ?? [])))
      .catch(e => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [client, run.run_id, run.experiment_id]);
  if (!rows.length && !error) {
    return null;
  }
  return (
    <section className="jp-mlops-Section jp-mlops-RunModels">
      <h3 className="jp-mlops-Section-title">{trans.__('Logged models')}</h3>
      {error ? <div className="jp-mlops-Error">{error}</div> : null}
      <table className="jp-mlops-KV">
        <tbody>
          {rows.map(r => (
            <tr
              key={r.modelId}
              className="jp-mlops-LoggedModel"
              data-model-id={r.modelId}
              data-status={r.status}
            >
              <th title={r.modelId}>{r.name}</th>
              <td>
                <span className="jp-mlops-Muted">{r.modelId}</span>{' '}
                {r.status === 'READY' ? null : <strong>{r.status}</strong>}
                {r.registrations.length ? (
                  <span className="jp-mlops-Muted">
                    {' '}
                    {trans.__('registered as %1', r.registrations.join(', '))}
                  </span>
                ) : null}
              </td>
              <td>
                {registerModel && r.status === 'READY' ? (
                  <button
                    className="jp-mlops-Button jp-mod-styled jp-mlops-RegisterModel"
                    data-path={r.name}
                    title={trans.__(
                      'Register logged model %1 as a version of a model in the registry',
                      r.name
                    )}
                    onClick={() => registerModel(run.run_id, r.name)}
                  >
                    {trans.__('Register model…')}
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
