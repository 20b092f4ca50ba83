/**
 * The Models plugin: the "Models" sidebar, model views in the main area, and
 * "Register model" for a run's model folder (run detail's artifact tree).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addSidebar, addToPalette, MainTabs } from '../activation';
import { DeploymentsApi, describeError } from '../api';
import { askDeploy } from '../deployments/DeployForm';
import { DeploymentView } from '../deployments/DeploymentView';
import { MetricsHistory, suggestDeploymentName } from '../deployments/serving';
import { CommandIDs as MainCommands, IMLOps } from '../tokens';
import { suggestModelName } from './data';
import { ModelsPanel } from './ModelsPanel';
import { ModelView } from './ModelView';

/** Plugin id. */
export const MODELS_PLUGIN_ID = 'jupyter-mlops:models';

/** Command ids of the plugin. */
export namespace ModelCommandIDs {
  export const openPanel = 'jupyter-mlops:open-models';
  export const refresh = 'jupyter-mlops:refresh-models';
  export const openModel = 'jupyter-mlops:open-model';
  export const register = 'jupyter-mlops:register-model';
  export const deploy = 'jupyter-mlops:deploy-model';
  export const openDeployment = 'jupyter-mlops:open-deployment';
}

export const modelsPlugin: JupyterFrontEndPlugin<void> = {
  id: MODELS_PLUGIN_ID,
  description: 'Model registry: registered models, versions, stages, aliases.',
  autoStart: true,
  requires: [IMLOps],
  optional: [ILayoutRestorer, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    mlops: IMLOps,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const { client } = mlops;
    const { commands, shell } = app;

    const deployments = new DeploymentsApi(client);
    const metrics = new MetricsHistory();
    const deploymentTabs = new MainTabs<DeploymentView>(shell, restorer, {
      namespace: 'jupyter-mlops-deployment',
      command: ModelCommandIDs.openDeployment,
      args: w => ({ name: w.deploymentName })
    });
    const modelTabs = new MainTabs<ModelView>(shell, restorer, {
      namespace: 'jupyter-mlops-model',
      command: ModelCommandIDs.openModel,
      args: w => ({ name: w.modelName })
    });
    const openDeployment = (name: string): DeploymentView =>
      deploymentTabs.show(
        (w): w is DeploymentView =>
          w instanceof DeploymentView && w.deploymentName === name,
        () =>
          new DeploymentView({
            api: deployments,
            client,
            trans,
            name,
            history: metrics,
            changed: () => void panel.refresh()
          }),
        view => view.refresh()
      );
    const panel = new ModelsPanel({
      client,
      trans,
      openModel: name =>
        void commands.execute(ModelCommandIDs.openModel, { name }),
      refreshMs: () => mlops.runsModel.refreshInterval,
      deployments: {
        api: deployments,
        history: metrics,
        open: name => void openDeployment(name)
      }
    });
    addSidebar(app, restorer, panel, {
      rank: 920,
      type: 'Models',
      open: {
        id: ModelCommandIDs.openPanel,
        label: trans.__('MLOps: Open models panel'),
        caption: trans.__('Show the registered models')
      },
      refresh: {
        id: ModelCommandIDs.refresh,
        label: trans.__('MLOps: Refresh models')
      }
    });

    const openModel = (name: string): ModelView =>
      modelTabs.show(
        (w): w is ModelView => w instanceof ModelView && w.modelName === name,
        () =>
          new ModelView({
            client,
            trans,
            name,
            openRun: runId =>
              void commands.execute(MainCommands.openRun, { runId }),
            openPath: path =>
              void commands.execute('docmanager:open', { path }),
            changed: () => void panel.refresh(),
            deploy: uri =>
              void commands.execute(ModelCommandIDs.deploy, { modelUri: uri }),
            openDeployment: dep => void openDeployment(dep)
          }),
        view => void view.refresh()
      );

    commands.addCommand(ModelCommandIDs.openModel, {
      label: args =>
        args.name
          ? trans.__('MLOps: Open model %1', String(args.name))
          : trans.__('MLOps: Open model…'),
      execute: async args => {
        let name = typeof args.name === 'string' ? args.name : '';
        if (!name) {
          const models = await client.searchRegisteredModels();
          if (!models.length) {
            await showErrorMessage(
              trans.__('No models'),
              trans.__('No model is registered yet.')
            );
            return;
          }
          const choice = await InputDialog.getItem({
            title: trans.__('Open which model?'),
            items: models.map(m => m.name)
          });
          if (!choice.button.accept || !choice.value) {
            return;
          }
          name = choice.value;
        }
        openModel(name);
      }
    });
    commands.addCommand(ModelCommandIDs.register, {
      label: trans.__('MLOps: Register model…'),
      caption: trans.__('Register a run’s model folder in the registry'),
      isVisible: args => typeof args.runId === 'string',
      execute: async args => {
        const runId = String(args.runId ?? '');
        const path = String(args.path ?? '');
        if (!runId || !path) {
          return;
        }
        const answer = await InputDialog.getText({
          title: trans.__('Register “%1” in the model registry', path),
          label: trans.__('Model name (a new version is added if it exists)'),
          text: suggestModelName(path),
          okLabel: trans.__('Register')
        });
        if (!answer.button.accept || !answer.value?.trim()) {
          return;
        }
        const name = answer.value.trim();
        try {
          await client.registerModel(name, runId, path);
        } catch (error) {
          await showErrorMessage(
            trans.__('Could not register the model'),
            describeError(error)
          );
          return;
        }
        void panel.refresh();
        openModel(name);
      }
    });

    commands.addCommand(ModelCommandIDs.deploy, {
      label: args =>
        args.modelUri
          ? trans.__('MLOps: Deploy model %1', String(args.modelUri))
          : trans.__('MLOps: Deploy model…'),
      caption: trans.__(
        'Serve a registered model version or alias (local processes, or a configured target)'
      ),
      execute: async args => {
        let uri = typeof args.modelUri === 'string' ? args.modelUri : '';
        if (!uri) {
          const answer = await InputDialog.getText({
            title: trans.__('Deploy which model?'),
            label: trans.__(
              'A model URI: models:/<name>/<version> or models:/<name>@<alias>'
            ),
            placeholder: 'models:/churn@champion'
          });
          if (!answer.button.accept || !answer.value?.trim()) {
            return;
          }
          uri = answer.value.trim();
        }
        const model = /^models:\/([^/@]+)/.exec(uri)?.[1] ?? 'model';
        const name = await askDeploy(
          deployments,
          trans,
          uri,
          suggestDeploymentName(model)
        );
        if (name) {
          shell.activateById(panel.id);
          void panel.refresh();
          openDeployment(name);
        }
      }
    });
    commands.addCommand(ModelCommandIDs.openDeployment, {
      label: args =>
        args.name
          ? trans.__('MLOps: Open deployment %1', String(args.name))
          : trans.__('MLOps: Open deployment…'),
      execute: async args => {
        let name = typeof args.name === 'string' ? args.name : '';
        if (!name) {
          let names: string[] = [];
          try {
            names = (await deployments.list()).deployments.map(d => d.name);
          } catch (error) {
            await showErrorMessage(
              trans.__('Could not list the deployments'),
              describeError(error)
            );
            return;
          }
          if (!names.length) {
            await showErrorMessage(
              trans.__('No deployments'),
              trans.__(
                'Nothing is deployed yet: use “Deploy…” on a model version.'
              )
            );
            return;
          }
          const choice = await InputDialog.getItem({
            title: trans.__('Open which deployment?'),
            items: names
          });
          if (!choice.button.accept || !choice.value) {
            return;
          }
          name = choice.value;
        }
        openDeployment(name);
      }
    });

    addToPalette(palette, [
      ModelCommandIDs.openPanel,
      ModelCommandIDs.refresh,
      ModelCommandIDs.openModel,
      ModelCommandIDs.deploy,
      ModelCommandIDs.openDeployment
    ]);
  }
};
