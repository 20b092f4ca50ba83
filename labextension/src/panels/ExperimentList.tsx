/** The experiments list of the MLOps sidebar. */
import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { RunsModel } from '../model';
import { pendingList, Placeholder, StaleBanner } from './states';

/** Props of `ExperimentList`. */
export interface IExperimentListProps {
  model: RunsModel;
  trans: TranslationBundle;
}

/** Selectable list of the active experiments. */
export function ExperimentList(props: IExperimentListProps): JSX.Element {
  const { model, trans } = props;
  const experiments = model.experiments;
  const state = model.experimentsState;
  const retry = () => void model.refresh();

  if (experiments.length === 0) {
    const pending = pendingList({
      state,
      error: model.experimentsError,
      errorTitle: trans.__('Could not load experiments'),
      loadingTitle: trans.__('Loading experiments…'),
      onRetry: retry,
      trans
    });
    if (pending) {
      return pending;
    }
    return (
      <Placeholder kind="empty" title={trans.__('No experiments yet')}>
        {trans.__('Runs logged from a notebook appear here. Try:')}
        <pre className="jp-mlops-Snippet">
          {'import jupyter_mlops as mlops\n' +
            'with mlops.start_run():\n' +
            '    mlops.log_metric("loss", 0.5)'}
        </pre>
      </Placeholder>
    );
  }

  const selected = model.selectedExperimentId;
  const onKeyDown = (event: React.KeyboardEvent<HTMLUListElement>) => {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') {
      return;
    }
    event.preventDefault();
    const index = experiments.findIndex(e => e.experiment_id === selected);
    const next =
      event.key === 'ArrowDown'
        ? Math.min(index + 1, experiments.length - 1)
        : Math.max(index - 1, 0);
    model.selectExperiment(experiments[next].experiment_id);
  };

  return (
    <div className="jp-mlops-ExperimentList-container">
      {state === 'error' && model.experimentsError ? (
        <StaleBanner
          message={trans.__('Could not refresh: %1', model.experimentsError)}
        />
      ) : null}
      <ul
        className="jp-mlops-ExperimentList"
        role="listbox"
        aria-label={trans.__('Experiments')}
        tabIndex={0}
        onKeyDown={onKeyDown}
      >
        {experiments.map(exp => {
          const isSelected = exp.experiment_id === selected;
          return (
            <li
              key={exp.experiment_id}
              className={
                'jp-mlops-ExperimentItem' +
                (isSelected ? ' jp-mod-selected' : '')
              }
              role="option"
              aria-selected={isSelected}
              data-experiment-id={exp.experiment_id}
              title={trans.__('%1 (id %2)', exp.name, exp.experiment_id)}
              onClick={() => model.selectExperiment(exp.experiment_id)}
              onContextMenu={() => model.selectExperiment(exp.experiment_id)}
            >
              <span className="jp-mlops-ExperimentItem-name">{exp.name}</span>
              <span className="jp-mlops-ExperimentItem-id">
                #{exp.experiment_id}
              </span>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
