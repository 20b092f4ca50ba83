/**
 * `RunsTabWidget`: an experiment's full runs table in the main area (as
 * MLflow's runs page), beside the sidebar's compact list. It has its own
 * `RunsModel` pinned to the experiment (its own sort, filter, columns and
 * grouping; the same server-side paging), polling while the tab is visible.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { IStateDB } from '@jupyterlab/statedb';
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { MLOpsClient } from '../api';
import { mlopsIcon } from '../icons';
import { RunsModel } from '../model';
import { IRunsActions, RunsTable } from './RunsTable';
import { keepRunsView } from './runsView';

/** Id of the runs tab of an experiment. */
export function runsTabId(experimentId: string): string {
  return `jupyter-mlops-runs-table-${experimentId}`;
}

/** The main-area runs table of one experiment. */
export class RunsTabWidget extends MainAreaWidget<ReactWidget> {
  constructor(options: RunsTabWidget.IOptions) {
    const { trans } = options;
    const model = new RunsModel({
      client: options.client,
      experimentId: options.experimentId,
      refreshInterval: options.refreshMs,
      pageSize: options.pageSize,
      // The tab's key picker lists the server's keys: read only the columns shown.
      lazyData: true
    });
    model.columns = options.columns ?? [];
    const actions: IRunsActions = {
      ...options.actions,
      setColumns: columns => {
        model.columns = columns;
      }
    };
    const content = ReactWidget.create(
      <UseSignal signal={model.changed}>
        {() => (
          <RunsTable
            model={model}
            trans={trans}
            actions={actions}
            columns={model.columns}
            wide={true}
          />
        )}
      </UseSignal>
    );
    content.addClass('jp-mlops-RunsTabContent');
    super({ content });
    this.model = model;
    this.experimentId = options.experimentId;
    this.id = runsTabId(options.experimentId);
    this.addClass('jp-mlops-RunsTab');
    this.title.icon = mlopsIcon;
    this.title.closable = true;
    this.title.label = trans.__('Runs');
    this.title.caption = trans.__(
      'Runs of experiment %1',
      options.experimentId
    );
    if (options.state) {
      // columns, widths, sort and grouping as this experiment's tab was left
      void keepRunsView(options.state, model, options.experimentId);
    }
    model.changed.connect(() => {
      const experiment = model.selectedExperiment;
      if (experiment) {
        this.title.label = trans.__('Runs: %1', experiment.name);
        this.title.caption = trans.__('Runs of experiment %1', experiment.name);
      }
    });
  }

  /** The experiment the tab shows. */
  readonly experimentId: string;
  /** The tab's runs model. */
  readonly model: RunsModel;

  dispose(): void {
    if (!this.isDisposed) {
      this.model.dispose();
    }
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.model.visible = true;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.visible = true;
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.visible = false;
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.visible = false;
    super.onBeforeDetach(msg);
  }
}

/** Types of `RunsTabWidget`. */
export namespace RunsTabWidget {
  /** Constructor options. */
  export interface IOptions {
    client: MLOpsClient;
    trans: TranslationBundle;
    experimentId: string;
    /** What the table's buttons do (open, compare, delete, tag). */
    actions: Omit<IRunsActions, 'setColumns' | 'openTable'>;
    /** Where the tab's view choices are kept per experiment (none: not kept). */
    state?: IStateDB | null;
    /** Columns shown first (the sidebar's choice). */
    columns?: readonly string[];
    /** Refresh period, ms. */
    refreshMs?: number;
    /** Runs per page. */
    pageSize?: number;
  }
}
