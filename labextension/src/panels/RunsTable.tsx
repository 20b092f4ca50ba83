/** The runs table of the MLOps sidebar: the selected experiment's runs. */
import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { formatDateTime } from '../format';
import { RunsModel } from '../model';
import { runsToRows } from '../rows';
import { Placeholder, StaleBanner } from './states';

/** Props of `RunsTable`. */
export interface IRunsTableProps {
  model: RunsModel;
  trans: TranslationBundle;
  /** Clock for durations of running runs; defaults to `Date.now()`. */
  now?: number;
}

/** Table of runs (name, status, start time, duration). */
export function RunsTable(props: IRunsTableProps): JSX.Element {
  const { model, trans } = props;
  const experiment = model.selectedExperiment;
  const state = model.runsState;
  const retry = () => void model.refresh();

  if (!experiment) {
    return model.experiments.length ? (
      <Placeholder
        kind="empty"
        title={trans.__('Select an experiment to see its runs')}
      />
    ) : (
      <Placeholder kind="empty" title={trans.__('No runs yet')} />
    );
  }

  const rows = runsToRows([...model.runs], props.now ?? Date.now());
  let body: JSX.Element;
  if (rows.length === 0 && state === 'error') {
    body = (
      <Placeholder
        kind="error"
        title={trans.__('Could not load runs')}
        onRetry={retry}
        retryLabel={trans.__('Retry')}
      >
        {model.runsError}
      </Placeholder>
    );
  } else if (rows.length === 0 && state !== 'ready') {
    body = <Placeholder kind="loading" title={trans.__('Loading runs…')} />;
  } else if (rows.length === 0) {
    body = (
      <Placeholder
        kind="empty"
        title={trans.__('No runs in this experiment yet')}
      >
        {trans.__('Start one from a notebook:')}
        <pre className="jp-mlops-Snippet">
          {'import jupyter_mlops as mlops\n' +
            `mlops.set_experiment(${JSON.stringify(experiment.name)})\n` +
            'with mlops.start_run():\n' +
            '    mlops.log_metric("loss", 0.5)'}
        </pre>
      </Placeholder>
    );
  } else {
    const selected = model.selectedRunId;
    body = (
      <table className="jp-mlops-RunsTable" aria-label={trans.__('Runs')}>
        <thead>
          <tr>
            <th scope="col">{trans.__('Name')}</th>
            <th scope="col">{trans.__('Status')}</th>
            <th scope="col">{trans.__('Started')}</th>
            <th scope="col">{trans.__('Duration')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(row => (
            <tr
              key={row.runId}
              className={
                'jp-mlops-RunRow' +
                (row.runId === selected ? ' jp-mod-selected' : '')
              }
              data-run-id={row.runId}
              data-status={row.status}
              aria-selected={row.runId === selected}
              tabIndex={0}
              onClick={() => model.selectRun(row.runId)}
              onKeyDown={event => {
                if (event.key === 'Enter' || event.key === ' ') {
                  event.preventDefault();
                  model.selectRun(row.runId);
                }
              }}
            >
              <td
                className="jp-mlops-RunRow-name"
                title={
                  row.source
                    ? trans.__(
                        '%1\nid %2\nsource %3',
                        row.name,
                        row.runId,
                        row.source
                      )
                    : trans.__('%1\nid %2', row.name, row.runId)
                }
              >
                {row.parentRunId ? (
                  <span className="jp-mlops-RunRow-child" aria-hidden="true">
                    ↳{' '}
                  </span>
                ) : null}
                {row.name}
              </td>
              <td>
                <span
                  className={`jp-mlops-Status jp-mlops-Status-${row.status.toLowerCase()}`}
                  title={trans.__(row.statusLabel)}
                >
                  {trans.__(row.statusLabel)}
                </span>
              </td>
              <td className="jp-mlops-RunRow-time" title={row.startedTitle}>
                {row.started}
              </td>
              <td className="jp-mlops-RunRow-duration">{row.duration}</td>
            </tr>
          ))}
        </tbody>
      </table>
    );
  }

  const count = model.runs.length;
  return (
    <div className="jp-mlops-RunsView">
      <div className="jp-mlops-RunsView-header">
        <span className="jp-mlops-RunsView-experiment" title={experiment.name}>
          {experiment.name}
        </span>
        <span className="jp-mlops-RunsView-count">
          {model.runsTruncated
            ? trans.__('latest %1 runs', count)
            : trans._n('%1 run', '%1 runs', count)}
        </span>
      </div>
      {rows.length > 0 && state === 'error' && model.runsError ? (
        <StaleBanner
          message={trans.__('Could not refresh: %1', model.runsError)}
        />
      ) : null}
      <div className="jp-mlops-RunsView-body">{body}</div>
      {model.lastUpdated ? (
        <div className="jp-mlops-RunsView-footer">
          {trans.__('Updated %1', formatDateTime(model.lastUpdated).slice(11))}
        </div>
      ) : null}
    </div>
  );
}
