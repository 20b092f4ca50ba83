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
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import {
  addIcon,
  deleteIcon,
  editIcon,
  refreshIcon
} from '@jupyterlab/ui-components';

import { describeError, MLOpsClient } from './api';
import { mlopsIcon } from './icons';
import { DEFAULT_MAX_RUNS, DEFAULT_REFRESH_MS, RunsModel } from './model';
import { RunsPanel } from './panels';
import { CommandIDs, IMLOps, PLUGIN_ID, RUNS_PANEL_ID } from './tokens';

export * from './tokens';

/** Palette category of the commands. */
const CATEGORY = 'MLOps';

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
}

const plugin: JupyterFrontEndPlugin<IMLOps> = {
  id: PLUGIN_ID,
  description: 'Experiment tracking in JupyterLab: the MLOps sidebar.',
  autoStart: true,
  provides: IMLOps,
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): IMLOps => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const client = new MLOpsClient(app.serviceManager.serverSettings);
    const model = new RunsModel({ client });
    const { commands, shell } = app;

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
        try {
          await model.createExperiment(name);
        } catch (error) {
          await showErrorMessage(
            trans.__('Could not create the experiment'),
            describeError(error)
          );
        }
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
        try {
          await model.renameExperiment(experiment.experiment_id, name);
        } catch (error) {
          await showErrorMessage(
            trans.__('Could not rename the experiment'),
            describeError(error)
          );
        }
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
        const answer = await showDialog({
          title: trans.__('Delete experiment'),
          body: trans.__(
            'Delete "%1" and its runs? It can be restored through the API.',
            experiment.name
          ),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Cancel') }),
            Dialog.warnButton({ label: trans.__('Delete') })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        try {
          await model.deleteExperiment(experiment.experiment_id);
        } catch (error) {
          await showErrorMessage(
            trans.__('Could not delete the experiment'),
            describeError(error)
          );
        }
      }
    });

    // Enablement of rename/delete follows the selection.
    model.changed.connect(() => {
      commands.notifyCommandChanged(CommandIDs.renameExperiment);
      commands.notifyCommandChanged(CommandIDs.deleteExperiment);
    });

    const panel = new RunsPanel({
      model,
      commands,
      toolbarCommands: [CommandIDs.createExperiment, CommandIDs.refresh],
      translator: translator ?? nullTranslator
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

    if (palette) {
      for (const command of [
        CommandIDs.openRuns,
        CommandIDs.refresh,
        CommandIDs.createExperiment,
        CommandIDs.renameExperiment,
        CommandIDs.deleteExperiment
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          applySettings(model, settings);
          settings.changed.connect(() => applySettings(model, settings));
        })
        .catch(reason => {
          console.error('jupyter-mlops: could not load settings', reason);
        });
    }

    return { client, runsModel: model };
  }
};

export default plugin;
