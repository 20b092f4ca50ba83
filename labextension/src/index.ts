/**
 * The JupyterLab plugin of jupyter-mlops: the MLOps sidebar, its commands and
 * its settings.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  showDialog
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import {
  addIcon,
  deleteIcon,
  editIcon,
  refreshIcon
} from '@jupyterlab/ui-components';

import { IExperiment, MLOpsClient } from './api';
import { addToPalette, followSettings, showInMain } from './activation';
import { attempt, confirmDanger } from './dialogs';
import { mlopsIcon } from './icons';
import { DEFAULT_MAX_RUNS, DEFAULT_REFRESH_MS, RunsModel } from './model';
import { IChartOptions, XAxisMode } from './charts';
import {
  CompareWidget,
  IViewContext,
  RunDetailWidget,
  RunsPanel
} from './panels';
import { ActiveRunStatus, notebookRunsFilter } from './status';
import { CommandIDs, IMLOps, PLUGIN_ID, RUNS_PANEL_ID } from './tokens';
import { pipelinesPlugin } from './pipelines/plugin';
import { ModelCommandIDs, modelsPlugin } from './models/plugin';

export * from './tokens';

/** Read the plugin's settings into the model. */
function applySettings(
  model: RunsModel,
  settings: ISettingRegistry.ISettings
): void {
  const seconds = settings.get('refreshInterval').composite;
  model.refreshInterval =
    typeof seconds === 'number' ? seconds * 1000 : DEFAULT_REFRESH_MS;
  const maxRuns = settings.get('maxRuns').composite;
  model.maxRuns = typeof maxRuns === 'number' ? maxRuns : DEFAULT_MAX_RUNS;
  const columns = settings.get('columns').composite;
  model.columns = Array.isArray(columns) ? (columns as string[]) : [];
}

const plugin: JupyterFrontEndPlugin<IMLOps> = {
  id: PLUGIN_ID,
  description: 'Experiment tracking in JupyterLab: the MLOps sidebar.',
  autoStart: true,
  provides: IMLOps,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    ITranslator,
    IRenderMimeRegistry,
    INotebookTracker,
    IStatusBar
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    rendermime: IRenderMimeRegistry | null,
    notebooks: INotebookTracker | null,
    statusBar: IStatusBar | null
  ): IMLOps => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const client = new MLOpsClient(app.serviceManager.serverSettings);
    const model = new RunsModel({ client });
    const { commands, shell } = app;
    let settings: ISettingRegistry.ISettings | null = null;
    const chartDefaults = (): IChartOptions => {
      const x = settings?.get('defaultXAxis').composite;
      return {
        xAxis: (['step', 'wall', 'relative'].includes(String(x))
          ? x
          : 'step') as XAxisMode,
        logScale: false,
        smoothing: 0
      };
    };

    const ctx: IViewContext = {
      client,
      trans,
      rendermime,
      openPath: path => {
        void commands.execute('docmanager:open', { path });
      },
      openRun: runId => {
        void commands.execute(CommandIDs.openRun, { runId });
      },
      openNotebookContent: async (name, content) => {
        // Artifacts live outside the server root: open a copy in mlops-artifacts/
        // (not a hidden folder: Jupyter refuses those by default).
        const base = name.split('/').pop() || 'notebook.ipynb';
        const path = `mlops-artifacts/${Date.now().toString(36)}-${base}`;
        await attempt(trans.__('Could not open the notebook'), async () => {
          const contents = app.serviceManager.contents;
          await contents
            .save('mlops-artifacts', { type: 'directory' })
            .catch(() => undefined);
          await contents.save(path, {
            type: 'notebook',
            format: 'json',
            content: JSON.parse(content)
          });
          await commands.execute('docmanager:open', { path });
        });
      },
      chartDefaults,
      refreshMs: () => model.refreshInterval,
      registerModel: (runId, path) => {
        void commands.execute(ModelCommandIDs.register, { runId, path });
      }
    };

    const openRun = (runId: string) => {
      const id = `jupyter-mlops-run-${runId}`;
      showInMain(
        shell,
        (w): w is RunDetailWidget =>
          w instanceof RunDetailWidget && w.id === id,
        () => new RunDetailWidget(runId, ctx)
      );
    };

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
        const widget = new CompareWidget(ids, ctx);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });

    const targetRuns = (args: { runIds?: unknown }): string[] =>
      Array.isArray(args.runIds)
        ? (args.runIds as string[])
        : model.checkedRunIds.length
          ? [...model.checkedRunIds]
          : model.selectedRunId
            ? [model.selectedRunId]
            : [];

    commands.addCommand(CommandIDs.deleteRuns, {
      label: trans.__('MLOps: Delete selected runs…'),
      caption: trans.__('Delete the selected runs (they can be restored)'),
      execute: async args => {
        const ids = targetRuns(args);
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
        const ids = targetRuns(args);
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
        await attempt(
          trans.__('Could not restore the experiment'),
          async () => {
            await client.restoreExperiment(chosen);
            await model.refresh();
          }
        );
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
    });

    const panel = new RunsPanel({
      model,
      commands,
      toolbarCommands: [CommandIDs.createExperiment, CommandIDs.refresh],
      translator: translator ?? nullTranslator,
      actions: {
        open: runIds => runIds.slice(0, 10).forEach(openRun),
        compare: runIds =>
          void commands.execute(CommandIDs.compareRuns, { runIds }),
        remove: runIds =>
          void commands.execute(CommandIDs.deleteRuns, { runIds }),
        addTag: runIds => void commands.execute(CommandIDs.tagRuns, { runIds }),
        setColumns: columns => {
          model.columns = columns;
          void settings?.set('columns', columns).catch(reason => {
            console.warn('jupyter-mlops: could not save the columns', reason);
          });
        }
      }
    });
    panel.id = RUNS_PANEL_ID;
    panel.node.setAttribute('role', 'region');
    panel.node.setAttribute('aria-label', trans.__('MLOps section'));
    shell.add(panel, 'left', { rank: 900, type: 'MLOps' });
    if (restorer) {
      restorer.add(panel, 'jupyter-mlops-runs');
    }

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
        commands.notifyCommandChanged(CommandIDs.notebookRuns)
      );
      app.contextMenu.addItem({
        command: CommandIDs.notebookRuns,
        selector: '.jp-Notebook',
        rank: 90
      });
    }
    if (statusBar && notebooks) {
      const item = new ActiveRunStatus({
        client,
        notebooks,
        trans,
        interval: () => model.refreshInterval,
        openRun
      });
      statusBar.registerStatusItem('jupyter-mlops:active-run', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => notebooks.currentWidget !== null
      });
    }

    addToPalette(palette, [
      CommandIDs.openRuns,
      CommandIDs.refresh,
      CommandIDs.compareRuns,
      CommandIDs.openRun,
      CommandIDs.notebookRuns,
      CommandIDs.createExperiment,
      CommandIDs.renameExperiment,
      CommandIDs.deleteExperiment,
      CommandIDs.restoreExperiment
    ]);
    followSettings(settingRegistry, PLUGIN_ID, loaded => {
      settings = loaded;
      applySettings(model, loaded);
    });

    return {
      client,
      runsModel: model,
      openNotebookContent: ctx.openNotebookContent
    };
  }
};

export default [plugin, pipelinesPlugin, modelsPlugin];
