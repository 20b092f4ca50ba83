/**
 * A run's GenAI evaluation results, for the run detail view: the traces
 * `mlflow.genai.evaluate` linked to the run, one row each (inputs, outputs,
 * each scorer's value, expectations), and the scorers' aggregates (mean,
 * pass rate, errors). Each row opens its trace. Renders nothing for a run
 * without traces.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import {
  describeError,
  IRunInfo,
  MLOpsClient,
  runTracesFilter,
  TracesApi
} from '../api';
import {
  evaluationResults,
  formatLatency,
  IEvalResults,
  valueText
} from './data';
import { StateBadge } from './TraceDetail';

/** Most traces of a run read for its results. */
export const EVAL_MAX_ROWS = 1000;

function percent(value: number | null): string {
  return value === null ? '' : `${(value * 100).toFixed(1)} %`;
}

export function RunEvaluation(props: {
  client: MLOpsClient;
  run: IRunInfo;
  trans: TranslationBundle;
  openTrace?: (traceId: string) => void;
}): JSX.Element | null {
  const { client, run, trans, openTrace } = props;
  const [results, setResults] = useState<IEvalResults | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    new TracesApi(client)
      .searchAll(
        {
          experimentIds: [run.experiment_id],
          filter: runTracesFilter(run.run_id),
          orderBy: ['timestamp_ms ASC']
        },
        EVAL_MAX_ROWS
      )
      .then(traces => live && setResults(evaluationResults(traces)))
      .catch(e => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [client, run.run_id, run.experiment_id]);
  if (error) {
    return (
      <section className="jp-mlops-Section jp-mlops-RunEvaluation">
        <h3 className="jp-mlops-Section-title">{trans.__('Traces')}</h3>
        <div className="jp-mlops-Error">{error}</div>
      </section>
    );
  }
  if (!results || !results.rows.length) {
    return null;
  }
  const evaluated = results.scorers.length > 0;
  return (
    <section className="jp-mlops-Section jp-mlops-RunEvaluation">
      <h3 className="jp-mlops-Section-title">
        {evaluated
          ? trans.__('Evaluation results (%1 rows)', results.rows.length)
          : trans.__('Traces (%1)', results.rows.length)}
      </h3>
      {evaluated ? (
        <table className="jp-mlops-KV jp-mlops-EvalSummary">
          <thead>
            <tr>
              <th>{trans.__('Scorer')}</th>
              <th>{trans.__('Mean')}</th>
              <th>{trans.__('Pass rate')}</th>
              <th>{trans.__('Rows scored')}</th>
              <th>{trans.__('Errors')}</th>
            </tr>
          </thead>
          <tbody>
            {results.summaries.map(s => (
              <tr key={s.name} data-scorer={s.name}>
                <th>{s.name}</th>
                <td className="jp-mlops-TraceNum jp-mlops-EvalMean">
                  {s.mean === null ? '' : s.mean.toFixed(3)}
                </td>
                <td className="jp-mlops-TraceNum">{percent(s.passRate)}</td>
                <td className="jp-mlops-TraceNum">{s.count}</td>
                <td className="jp-mlops-TraceNum">{s.errors || ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="jp-mlops-EvalRows-scroll">
        <table className="jp-mlops-TracesTable jp-mlops-EvalRows">
          <thead>
            <tr>
              <th>#</th>
              <th>{trans.__('Inputs')}</th>
              <th>{trans.__('Outputs')}</th>
              {results.expectations.map(n => (
                <th key={`e-${n}`} className="jp-mlops-EvalExpectation">
                  {n}
                </th>
              ))}
              {results.scorers.map(n => (
                <th key={`s-${n}`}>{n}</th>
              ))}
              <th>{trans.__('Status')}</th>
              <th>{trans.__('Latency')}</th>
            </tr>
          </thead>
          <tbody>
            {results.rows.map((r, i) => (
              <tr
                key={r.traceId}
                className="jp-mlops-EvalRow"
                data-trace-id={r.traceId}
                onClick={() => openTrace?.(r.traceId)}
                title={trans.__('Open trace %1', r.traceId)}
              >
                <td className="jp-mlops-TraceNum">{i + 1}</td>
                <td className="jp-mlops-TracePreview">{r.request}</td>
                <td className="jp-mlops-TracePreview">{r.response}</td>
                {results.expectations.map(n => (
                  <td key={`e-${n}`}>{valueText(r.expectations[n])}</td>
                ))}
                {results.scorers.map(n => (
                  <td
                    key={`s-${n}`}
                    className="jp-mlops-EvalScore"
                    data-scorer={n}
                    data-value={valueText(r.scores[n])}
                  >
                    {valueText(r.scores[n])}
                  </td>
                ))}
                <td>
                  <StateBadge state={r.state} />
                </td>
                <td className="jp-mlops-TraceNum">
                  {formatLatency(r.latencyMs)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
