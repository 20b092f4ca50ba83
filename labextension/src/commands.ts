/**
 * The commands of the MLOps sidebar (open, compare, delete and tag runs;
 * create, rename, delete and restore experiments; the current notebook's
 * runs) and their context-menu items, as jupyterlab-git keeps its commands
 * in `commandsAndMenu.tsx`: `index.ts` only wires the plugin.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStateDB } from '@jupyterlab/statedb';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  addIcon,
  deleteIcon,
  editIcon,
  refreshIcon
} from '@jupyterlab/ui-components';

import { IExperiment, MLOpsClient } from './api';
import { attempt, confirmDanger } from './dialogs';
import { mlopsIcon } from './icons';
import { RunsModel } from './model';
import {
  CompareWidget,
  IViewContext,
  RunsTabWidget,
  runsTabId
} from './panels';
import { MainTabs } from './activation';
import { notebookRunsFilter } from './status';
import { CommandIDs, RUNS_PANEL_ID } from './tokens';

/** What the commands act on. */
export interface ICommandsContext {
  client: MLOpsClient;
  model: RunsModel;
  trans: TranslationBundle;
  /** The run views' context (compare). */
  ctx: IViewContext;
  /** Open a run's detail in the main area (one tab per run). */
  openRun: (runId: string) => void;
  notebooks: INotebookTracker | null;
  /** Reopens the runs and compare tabs after a reload. */
  restorer: ILayoutRestorer | null;
  /** Keeps each experiment's runs-tab view (columns, widths, sort, grouping). */
  state: IStateDB | null;
}

/** The runs a command acts on: its `runIds`, else the ticked, else the selected run. */
function targetRuns(model: RunsModel, args: { runIds?: unknown }): string[] {
  return Array.isArray(args.runIds)
    ? (args.runIds as string[])
    : model.checkedRunIds.length
      ? [...model.checkedRunIds]
      : model.selectedRunId
        ? [model.selectedRunId]
        : [];
}

/** Add the sidebar's commands (ids in `CommandIDs`). */
export function addCommands(
  app: JupyterFrontEnd,
  options: ICommandsContext
): void {
  const { client, model, trans, ctx, openRun, notebooks, state } = options;
  const { commands, shell } = app;
  const runsTabs = new MainTabs<RunsTabWidget>(shell, options.restorer, {
    namespace: 'jupyter-mlops-runs-table',
    command: CommandIDs.openRunsTable,
    args: w => ({ experimentId: w.experimentId })
  });
  const compareTabs = new MainTabs<CompareWidget>(shell, options.restorer, {
    namespace: 'jupyter-mlops-compare',
    command: CommandIDs.compareRuns,
    args: w => ({ runIds: [...w.runIds] })
  });

  commands.addCommand(CommandIDs.openRun, {
    label: trans.__('MLOps: Open run'),
    caption: trans.__('Show the details of a run'),
    isEnabled: args =>
      !!args.runId ||
      model.checkedRunIds.length > 0 ||
      model.selectedRunId !== null,
    execute: args => {
      const ids = args.runId
        ? [String(args.runId)]
        : model.checkedRunIds.length
          ? [...model.checkedRunIds]
          : model.selectedRunId
            ? [model.selectedRunId]
            : [];
      ids.slice(0, 10).forEach(openRun);
    }
  });

  commands.addCommand(CommandIDs.compareRuns, {
    label: trans.__('MLOps: Compare selected runs'),
    caption: trans.__('Compare the runs ticked in the runs table'),
    isEnabled: args =>
      Array.isArray(args.runIds) || model.checkedRunIds.length >= 2,
    execute: args => {
      const ids = Array.isArray(args.runIds)
        ? (args.runIds as string[])
        : [...model.checkedRunIds];
      if (ids.length < 2) {
        return;
      }
      compareTabs.show(
        (w): w is CompareWidget =>
          w instanceof CompareWidget && w.runIds.join() === ids.join(),
        () => new CompareWidget(ids, ctx)
      );
    }
  });

  commands.addCommand(CommandIDs.deleteRuns, {
    label: trans.__('MLOps: Delete selected runs…'),
    caption: trans.__('Delete the selected runs (they can be restored)'),
    execute: async args => {
      const ids = targetRuns(model, args);
      if (!ids.length) {
        return;
      }
      const go = await confirmDanger(
        trans,
        trans.__('Delete runs'),
        trans._n('Delete %1 run?', 'Delete %1 runs?', ids.length),
        trans.__('Delete')
      );
      const deleted =
        go &&
        (await attempt(trans.__('Could not delete the runs'), async () => {
          await Promise.all(ids.map(id => client.deleteRun(id)));
          model.setChecked([]);
          await model.refresh();
        }));
      if (!deleted) {
        return;
      }
      const undo = await showDialog({
        title: trans.__('Runs deleted'),
        body: trans._n('%1 run deleted.', '%1 runs deleted.', ids.length),
        buttons: [
          Dialog.okButton({ label: trans.__('OK') }),
          Dialog.createButton({ label: trans.__('Undo'), accept: false })
        ]
      });
      if (!undo.button.accept) {
        await attempt(trans.__('Could not restore the runs'), () =>
          Promise.all(ids.map(id => client.restoreRun(id)))
        );
        await model.refresh();
      }
    }
  });

  commands.addCommand(CommandIDs.tagRuns, {
    label: trans.__('MLOps: Tag selected runs…'),
    caption: trans.__('Set a tag on the selected runs'),
    execute: async args => {
      const ids = targetRuns(model, args);
      if (!ids.length) {
        return;
      }
      const result = await InputDialog.getText({
        title: trans._n('Tag %1 run', 'Tag %1 runs', ids.length),
        label: trans.__('key=value'),
        placeholder: 'stage=candidate',
        okLabel: trans.__('Set tag')
      });
      const text = result.value?.trim();
      if (!result.button.accept || !text) {
        return;
      }
      const eq = text.indexOf('=');
      const key = (eq >= 0 ? text.slice(0, eq) : text).trim();
      const value = eq >= 0 ? text.slice(eq + 1).trim() : '';
      await attempt(trans.__('Could not tag the runs'), async () => {
        await Promise.all(ids.map(id => client.setTag(id, key, value)));
        await model.refresh();
      });
    }
  });

  commands.addCommand(CommandIDs.restoreExperiment, {
    label: trans.__('MLOps: Restore experiment…'),
    caption: trans.__('Bring back a deleted experiment and its runs'),
    execute: async () => {
      let deleted: IExperiment[] = [];
      const listed = await attempt(
        trans.__('Could not list deleted experiments'),
        async () => {
          deleted = await client.listExperiments({
            view_type: 'DELETED_ONLY'
          });
        }
      );
      if (!listed) {
        return;
      }
      if (!deleted.length) {
        await showDialog({
          title: trans.__('Restore experiment'),
          body: trans.__('There are no deleted experiments.'),
          buttons: [Dialog.okButton()]
        });
        return;
      }
      const labels = deleted.map(e => `${e.name} (${e.experiment_id})`);
      const result = await InputDialog.getItem({
        title: trans.__('Restore experiment'),
        items: labels,
        okLabel: trans.__('Restore')
      });
      const index = labels.indexOf(result.value ?? '');
      if (!result.button.accept || index < 0) {
        return;
      }
      const chosen = deleted[index].experiment_id;
      await attempt(trans.__('Could not restore the experiment'), async () => {
        await client.restoreExperiment(chosen);
        await model.refresh();
      });
    }
  });

  const currentNotebookPath = (): string | null =>
    notebooks?.currentWidget?.context.path ?? null;

  commands.addCommand(CommandIDs.notebookRuns, {
    label: trans.__('MLOps: Show runs of this notebook'),
    caption: trans.__('List the runs logged from the current notebook'),
    icon: args => (args.isPalette ? undefined : mlopsIcon),
    isEnabled: () => currentNotebookPath() !== null,
    execute: async () => {
      const path = currentNotebookPath();
      if (!path) {
        return;
      }
      const filter = notebookRunsFilter(path);
      const title = trans.__('Could not list the runs of this notebook');
      await attempt(title, async () => {
        const experiments = await client.listExperiments({
          view_type: 'ACTIVE_ONLY'
        });
        const runs = experiments.length
          ? await client.listRuns(
              {
                experiment_ids: experiments.map(e => e.experiment_id),
                filter,
                order_by: ['attributes.start_time DESC']
              },
              1
            )
          : [];
        shell.activateById(RUNS_PANEL_ID);
        if (runs.length) {
          model.selectExperiment(runs[0].info.experiment_id);
        }
        await model.setFilter(filter);
      });
    }
  });

  commands.addCommand(CommandIDs.openRunsTable, {
    label: trans.__('MLOps: Open runs table'),
    caption: trans.__(
      "Show an experiment's runs in a main-area table (columns, grouping)"
    ),
    icon: args => (args.isPalette ? undefined : mlopsIcon),
    isEnabled: args =>
      !!args.experimentId || model.selectedExperimentId !== null,
    execute: args => {
      const experimentId = args.experimentId
        ? String(args.experimentId)
        : model.selectedExperimentId;
      if (!experimentId) {
        return;
      }
      return runsTabs.show(
        (w): w is RunsTabWidget =>
          w instanceof RunsTabWidget && w.id === runsTabId(experimentId),
        () => {
          const tab: RunsTabWidget = new RunsTabWidget({
            client,
            trans,
            experimentId,
            columns: model.columns,
            refreshMs: model.refreshInterval,
            pageSize: model.pageSize,
            state,
            actions: {
              open: runIds => runIds.slice(0, 10).forEach(openRun),
              compare: runIds =>
                void commands.execute(CommandIDs.compareRuns, { runIds }),
              remove: runIds =>
                void commands
                  .execute(CommandIDs.deleteRuns, { runIds })
                  .then(() => tab.model.refresh()),
              addTag: runIds =>
                void commands
                  .execute(CommandIDs.tagRuns, { runIds })
                  .then(() => tab.model.refresh())
            }
          });
          return tab;
        }
      );
    }
  });

  commands.addCommand(CommandIDs.openRuns, {
    label: trans.__('MLOps: Open runs panel'),
    caption: trans.__('Show the MLOps experiments and runs sidebar'),
    icon: args => (args.isPalette ? undefined : mlopsIcon),
    execute: () => {
      shell.activateById(RUNS_PANEL_ID);
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: trans.__('MLOps: Refresh'),
    caption: trans.__('Reload experiments and runs now'),
    icon: args => (args.isPalette ? undefined : refreshIcon),
    execute: () => model.refresh()
  });

  commands.addCommand(CommandIDs.createExperiment, {
    label: trans.__('MLOps: New experiment…'),
    caption: trans.__('Create an experiment'),
    icon: args => (args.isPalette ? undefined : addIcon),
    execute: async () => {
      const result = await InputDialog.getText({
        title: trans.__('New experiment'),
        label: trans.__('Name'),
        placeholder: trans.__('my-experiment'),
        okLabel: trans.__('Create')
      });
      const name = result.value?.trim();
      if (!result.button.accept || !name) {
        return;
      }
      await attempt(trans.__('Could not create the experiment'), () =>
        model.createExperiment(name)
      );
    }
  });

  commands.addCommand(CommandIDs.renameExperiment, {
    label: trans.__('MLOps: Rename experiment…'),
    caption: trans.__('Rename the selected experiment'),
    icon: args => (args.isPalette ? undefined : editIcon),
    isEnabled: () => model.selectedExperiment !== null,
    execute: async () => {
      const experiment = model.selectedExperiment;
      if (!experiment) {
        return;
      }
      const result = await InputDialog.getText({
        title: trans.__('Rename experiment'),
        label: trans.__('New name'),
        text: experiment.name,
        okLabel: trans.__('Rename')
      });
      const name = result.value?.trim();
      if (!result.button.accept || !name || name === experiment.name) {
        return;
      }
      await attempt(trans.__('Could not rename the experiment'), () =>
        model.renameExperiment(experiment.experiment_id, name)
      );
    }
  });

  commands.addCommand(CommandIDs.deleteExperiment, {
    label: trans.__('MLOps: Delete experiment…'),
    caption: trans.__('Delete the selected experiment and its runs'),
    icon: args => (args.isPalette ? undefined : deleteIcon),
    isEnabled: () => model.selectedExperiment !== null,
    execute: async () => {
      const experiment = model.selectedExperiment;
      if (!experiment) {
        return;
      }
      const go = await confirmDanger(
        trans,
        trans.__('Delete experiment'),
        trans.__(
          'Delete "%1" and its runs? It can be restored through the API.',
          experiment.name
        ),
        trans.__('Delete')
      );
      if (go) {
        await attempt(trans.__('Could not delete the experiment'), () =>
          model.deleteExperiment(experiment.experiment_id)
        );
      }
    }
  });

  // Enablement of rename/delete follows the selection.
  model.changed.connect(() => {
    commands.notifyCommandChanged(CommandIDs.renameExperiment);
    commands.notifyCommandChanged(CommandIDs.deleteExperiment);
    commands.notifyCommandChanged(CommandIDs.compareRuns);
    commands.notifyCommandChanged(CommandIDs.openRun);
    commands.notifyCommandChanged(CommandIDs.openRunsTable);
  });
}

/** Context-menu items of the sidebar and of notebooks. */
export function addContextMenu(
  app: JupyterFrontEnd,
  notebooks: INotebookTracker | null
): void {
  app.contextMenu.addItem({
    command: CommandIDs.openRunsTable,
    selector: '.jp-mlops-ExperimentItem',
    rank: 0
  });
  app.contextMenu.addItem({
    command: CommandIDs.renameExperiment,
    selector: '.jp-mlops-ExperimentItem',
    rank: 1
  });
  app.contextMenu.addItem({
    command: CommandIDs.deleteExperiment,
    selector: '.jp-mlops-ExperimentItem',
    rank: 2
  });
  app.contextMenu.addItem({
    command: CommandIDs.createExperiment,
    selector: '.jp-mlops-ExperimentsSection',
    rank: 3
  });
  app.contextMenu.addItem({
    command: CommandIDs.restoreExperiment,
    selector: '.jp-mlops-ExperimentsSection',
    rank: 4
  });

  if (notebooks) {
    notebooks.currentChanged.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.notebookRuns)
    );
    app.contextMenu.addItem({
      command: CommandIDs.notebookRuns,
      selector: '.jp-Notebook',
      rank: 90
    });
  }
}
