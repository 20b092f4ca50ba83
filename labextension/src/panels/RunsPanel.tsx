/**
 * `RunsPanel`: the MLOps left sidebar. A `SidePanel` with two accordion
 * sections (experiments, runs), each a React view of the shared `RunsModel`.
 *
 * Issue #3's run detail, comparison and chart views are added as more
 * sections (or main-area widgets) reading the same model.
 */
import {
  CommandToolbarButton,
  PanelWithToolbar,
  ReactWidget,
  SidePanel,
  UseSignal
} from '@jupyterlab/ui-components';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { AccordionPanel, Widget } from '@lumino/widgets';
import React from 'react';

import { mlopsIcon } from '../icons';
import { RunsModel } from '../model';
import { ExperimentList } from './ExperimentList';
import { IRunsActions, RunsTable } from './RunsTable';

/** A React view re-rendered on every `model.changed`. */
function modelView(
  model: RunsModel,
  render: (model: RunsModel) => JSX.Element
): ReactWidget {
  return ReactWidget.create(
    <UseSignal signal={model.changed}>{() => render(model)}</UseSignal>
  );
}

/** The MLOps sidebar. */
export class RunsPanel extends SidePanel {
  constructor(options: RunsPanel.IOptions) {
    const translator = options.translator ?? nullTranslator;
    super({ translator });
    const trans = (this._bundle = translator.load('jupyter_mlops'));
    this._model = options.model;
    this.addClass('jp-mlops-RunsPanel');
    this.title.icon = mlopsIcon;
    this.title.caption = trans.__('MLOps: experiments and runs');

    const heading = new Widget({ node: document.createElement('h2') });
    heading.node.textContent = trans.__('MLOps');
    heading.addClass('jp-mlops-RunsPanel-heading');
    this.header.addWidget(heading);

    const commands = options.commands;
    if (commands) {
      for (const id of options.toolbarCommands ?? []) {
        if (commands.hasCommand(id)) {
          // Icon-only buttons: the sidebar is narrow; the caption is the tooltip.
          this.toolbar.addItem(
            id,
            new CommandToolbarButton({ commands, id, label: '' })
          );
        }
      }
    }

    const experiments = new PanelWithToolbar();
    experiments.addClass('jp-mlops-ExperimentsSection');
    experiments.title.label = trans.__('Experiments');
    experiments.addWidget(
      modelView(this._model, model => (
        <ExperimentList model={model} trans={trans} />
      ))
    );

    const runs = new PanelWithToolbar();
    runs.addClass('jp-mlops-RunsSection');
    runs.title.label = trans.__('Runs');
    const runsView = modelView(this._model, model => (
      <RunsTable
        model={model}
        trans={trans}
        actions={options.actions}
        columns={model.columns}
      />
    ));
    // Fills the section so the table's own scroller (windowing) has a height.
    runsView.addClass('jp-mlops-RunsWidget');
    runs.addWidget(runsView);

    this.addWidget(experiments);
    this.addWidget(runs);
    (this.content as AccordionPanel).setRelativeSizes([1, 2]);
  }

  /** The model the panel shows. */
  get model(): RunsModel {
    return this._model;
  }

  /** The panel's translation bundle. */
  get trans(): TranslationBundle {
    return this._bundle;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.visible = true;
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.visible = false;
  }

  protected onAfterDetach(msg: Message): void {
    this._model.visible = false;
    super.onAfterDetach(msg);
  }

  private _model: RunsModel;
  private _bundle: TranslationBundle;
}

/** Types of `RunsPanel`. */
export namespace RunsPanel {
  /** Constructor options. */
  export interface IOptions {
    /** The shared runs model. */
    model: RunsModel;
    /** Commands, for toolbar buttons. */
    commands?: CommandRegistry;
    /** Ids of commands shown as toolbar buttons, in order. */
    toolbarCommands?: string[];
    /** Translator; defaults to none. */
    translator?: ITranslator;
    /** Actions of the runs table (open, compare, delete, tag, columns). */
    actions?: IRunsActions;
  }
}
