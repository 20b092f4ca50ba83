/**
 * The MLflow projects plugin: "Run MLflow project…" on an `MLproject` file in
 * the file browser. It reads the project's entry points, asks which one (when
 * there are several), shows the pipeline form generated from its typed
 * parameters, starts the run and follows its output; the run is a tracked run
 * of the runs panel.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addToPalette, showInMain } from '../activation';
import { describeError, IProject } from '../api';
import { askUntilSaved } from '../pipelines/formDialog';
import { CommandIDs as MainCommands, IMLOps } from '../tokens';
import {
  entryPointForm,
  isMLprojectFile,
  LOCAL_TARGET,
  projectDir
} from './form';
import { ProjectLogView } from './logView';

export namespace ProjectCommandIDs {
  export const run = 'jupyter-mlops:run-mlflow-project';
}

export const projectsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:projects',
  description: 'Run MLflow projects (MLproject files) as tracked runs.',
  autoStart: true,
  requires: [IMLOps],
  optional: [ICommandPalette, ITranslator, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    mlops: IMLOps,
    palette: ICommandPalette | null,
    translator: ITranslator | null,
    browsers: IFileBrowserFactory | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const { client } = mlops;
    const { commands, shell } = app;

    const selectedFile = (): string | null => {
      const browser = browsers?.tracker.currentWidget;
      for (const item of browser?.selectedItems() ?? []) {
        if (item.type !== 'directory' && isMLprojectFile(item.path)) {
          return item.path;
        }
      }
      return null;
    };

    const openLog = (runId: string): void => {
      showInMain(
        shell,
        (w): w is ProjectLogView =>
          w instanceof ProjectLogView && w.runId === runId,
        () =>
          new ProjectLogView({
            client,
            trans,
            runId,
            openRun: id =>
              void commands.execute(MainCommands.openRun, { runId: id })
          })
      );
    };

    const run = async (path: string): Promise<void> => {
      const uri = projectDir(path) || '.';
      let project: IProject;
      try {
        project = await client.inspectProject(uri);
      } catch (error) {
        await showErrorMessage(
          trans.__('Could not read the MLflow project'),
          describeError(error)
        );
        return;
      }
      const names = project.entry_points.map(e => e.name);
      if (!names.length) {
        await showErrorMessage(
          trans.__('No entry points'),
          trans.__('%1 declares no entry points.', path)
        );
        return;
      }
      let name = names[0];
      if (names.length > 1) {
        const choice = await InputDialog.getItem({
          title: trans.__('Run which entry point?'),
          items: names,
          current: names.includes('main') ? 'main' : names[0]
        });
        if (!choice.button.accept || !choice.value) {
          return;
        }
        name = choice.value;
      }
      const entry = project.entry_points.find(e => e.name === name)!;
      await askUntilSaved({
        info: entryPointForm(project, entry),
        targets: LOCAL_TARGET,
        trans,
        title: trans.__(
          'Run MLflow project %1 (%2)',
          project.name ?? uri,
          name
        ),
        accept: trans.__('Run'),
        failure: trans.__('Could not start the run'),
        save: async value => {
          const started = await client.runProject({
            uri,
            entry_point: name,
            parameters: value.parameters,
            run_name: value.runName || undefined,
            experiment_name: project.name ?? undefined
          });
          openLog(started.run_id);
          void mlops.runsModel.refresh();
        }
      });
    };

    commands.addCommand(ProjectCommandIDs.run, {
      label: args =>
        args.path
          ? trans.__('MLOps: Run MLflow project %1…', String(args.path))
          : trans.__('MLOps: Run MLflow project…'),
      caption: trans.__(
        'Run an entry point of an MLflow project (MLproject) as a tracked run'
      ),
      isVisible: args =>
        typeof args.path === 'string' ||
        !args.fromBrowser ||
        selectedFile() !== null,
      execute: async args => {
        let path = typeof args.path === 'string' ? args.path : selectedFile();
        if (!path && !args.fromBrowser) {
          const result = await InputDialog.getText({
            title: trans.__('Path of the MLproject file'),
            text: 'MLproject'
          });
          path = result.button.accept ? result.value : null;
        }
        if (path) {
          await run(path);
        }
      }
    });
    app.contextMenu.addItem({
      command: ProjectCommandIDs.run,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });
    addToPalette(palette, [ProjectCommandIDs.run]);
  }
};
