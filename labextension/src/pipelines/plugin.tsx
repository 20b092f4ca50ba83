/**
 * The Pipelines plugin: the "Pipelines" sidebar, the submit dialog, run views
 * in the main area, palette commands and "Run pipeline" on `*.pipeline.yaml`
 * files in the file browser.
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
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import {
  addSidebar,
  addToPalette,
  commandFile,
  followSettings,
  MainTabs,
  pickOne,
  selectedFile
} from '../activation';
import { describeError, IPipelineSchedule } from '../api';
import { CommandIDs as MainCommands, IMLOps } from '../tokens';
import { PipelinesPanel } from './PipelinesPanel';
import { PipelineRunView } from './RunView';
import {
  browserTimeZone,
  scheduleChange,
  scheduleFormStart
} from './schedules';
import { askUntilSaved, readPipeline } from './formDialog';
import { defaultRunName, pipelineRunLabel } from './form';

/** Plugin id; also its settings schema (`schema/pipelines.json`). */
export const PIPELINES_PLUGIN_ID = 'jupyter-mlops:pipelines';

/** Command ids of the plugin. */
export namespace PipelineCommandIDs {
  export const openPanel = 'jupyter-mlops:open-pipelines';
  export const refresh = 'jupyter-mlops:refresh-pipelines';
  export const run = 'jupyter-mlops:run-pipeline';
  export const schedule = 'jupyter-mlops:schedule-pipeline';
  export const openRun = 'jupyter-mlops:open-pipeline-run';
}

/** Whether a path names a pipeline file. */
export function isPipelineFile(path: string): boolean {
  return /\.pipeline\.ya?ml$/i.test(path);
}

export const pipelinesPlugin: JupyterFrontEndPlugin<void> = {
  id: PIPELINES_PLUGIN_ID,
  description: 'Pipelines: submit *.pipeline.yaml files and follow their runs.',
  autoStart: true,
  requires: [IMLOps],
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    ITranslator,
    IFileBrowserFactory
  ],
  activate: (
    app: JupyterFrontEnd,
    mlops: IMLOps,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    browsers: IFileBrowserFactory | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const { client } = mlops;
    const { commands, shell } = app;
    let refreshMs = 5000;

    const runTabs = new MainTabs<PipelineRunView>(shell, restorer, {
      namespace: 'jupyter-mlops-pipeline-run',
      command: PipelineCommandIDs.openRun,
      args: w => ({ runId: w.runId })
    });
    const openRun = (runId: string): PipelineRunView =>
      runTabs.show(
        (w): w is PipelineRunView =>
          w instanceof PipelineRunView && w.runId === runId,
        () =>
          new PipelineRunView({
            client,
            trans,
            runId,
            openRun: id =>
              void commands.execute(PipelineCommandIDs.openRun, { runId: id }),
            openNotebookContent: mlops.openNotebookContent,
            openTrackedRun: id =>
              void commands.execute(MainCommands.openRun, { runId: id })
          })
      );

    /** Run a pipeline file now, or (`asSchedule`) create a recurring run of it. */
    const submit = async (path: string, asSchedule = false): Promise<void> => {
      const pipeline = await readPipeline(client, trans, path);
      if (!pipeline) {
        return;
      }
      const name = pipeline.info.pipeline?.name ?? path;
      if (asSchedule) {
        const saved = await askUntilSaved({
          ...pipeline,
          trans,
          title: trans.__('Schedule pipeline %1', name),
          accept: trans.__('Schedule'),
          failure: trans.__('Could not create the schedule'),
          schedule: { cron: '', timezone: browserTimeZone() },
          save: async value => {
            await client.createPipelineSchedule({
              path,
              cron: value.cron,
              timezone: value.timezone,
              parameters: value.parameters,
              name: value.runName || undefined,
              target: value.target
            });
          }
        });
        if (saved) {
          shell.activateById(panel.id);
          void panel.refresh();
        }
        return;
      }
      await askUntilSaved({
        ...pipeline,
        trans,
        name: defaultRunName(
          pipeline.info.pipeline?.name ?? 'pipeline',
          new Date()
        ),
        title: trans.__('Run pipeline %1', name),
        accept: trans.__('Run'),
        failure: trans.__('Could not submit the run'),
        save: async value => {
          const run = await client.submitPipeline({
            path,
            parameters: value.parameters,
            target: value.target,
            run_name: value.runName || undefined
          });
          openRun(run.run_id);
          void panel.refresh();
        }
      });
    };

    /** Change a schedule in the same form, started with its values. */
    const editSchedule = async (schedule: IPipelineSchedule): Promise<void> => {
      const pipeline = await readPipeline(
        client,
        trans,
        schedule.pipeline_path
      );
      if (!pipeline) {
        return;
      }
      const saved = await askUntilSaved({
        ...pipeline,
        ...scheduleFormStart(schedule),
        trans,
        title: trans.__('Edit schedule %1', schedule.name),
        accept: trans.__('Save'),
        failure: trans.__('Could not save the schedule'),
        save: async value => {
          await client.updatePipelineSchedule(
            schedule.schedule_id,
            scheduleChange(
              value,
              pipeline.info.pipeline?.name ?? '',
              schedule.target || 'local'
            )
          );
        }
      });
      if (saved) {
        void panel.refresh();
      }
    };

    const panel = new PipelinesPanel({
      client,
      trans,
      submit: path => void submit(path),
      schedule: path => void submit(path, true),
      editSchedule: schedule => void editSchedule(schedule),
      openRun: runId => void openRun(runId),
      openFile: path => void commands.execute('docmanager:open', { path }),
      refreshMs: () => refreshMs
    });
    addSidebar(app, restorer, panel, {
      rank: 910,
      type: 'Pipelines',
      open: {
        id: PipelineCommandIDs.openPanel,
        label: trans.__('MLOps: Open pipelines panel'),
        caption: trans.__('Show the Pipelines sidebar')
      },
      refresh: {
        id: PipelineCommandIDs.refresh,
        label: trans.__('MLOps: Refresh pipelines')
      }
    });

    /** The pipeline a command acts on: its `path` arg, the selection, the open file or a choice. */
    const pickPipeline = async (
      args: ReadonlyPartialJSONObject,
      title: string
    ): Promise<string | null> => {
      let path = commandFile(shell, browsers, args, isPipelineFile);
      if (!path) {
        let files: string[] = [];
        try {
          files = await client.listPipelineFiles();
        } catch (error) {
          await showErrorMessage(
            trans.__('Could not list pipelines'),
            describeError(error)
          );
          return null;
        }
        if (!files.length) {
          await showErrorMessage(
            trans.__('No pipelines'),
            trans.__('There is no *.pipeline.yaml file in the workspace.')
          );
          return null;
        }
        const choice = await InputDialog.getItem({ title, items: files });
        if (!choice.button.accept || !choice.value) {
          return null;
        }
        path = choice.value;
      }
      return path;
    };

    /** A command on a pipeline file: its `path` arg, the selection, the open file or a choice. */
    const addFileCommand = (
      id: string,
      text: {
        label: string;
        labelFor: (path: string) => string;
        caption: string;
        pick: string;
      },
      asSchedule: boolean
    ): void => {
      commands.addCommand(id, {
        label: args =>
          args.path ? text.labelFor(String(args.path)) : text.label,
        caption: text.caption,
        isVisible: args =>
          typeof args.path === 'string' ||
          !args.fromBrowser ||
          selectedFile(browsers, isPipelineFile) !== null,
        execute: async args => {
          const path = await pickPipeline(args, text.pick);
          if (path) {
            await submit(path, asSchedule);
          }
        }
      });
    };
    addFileCommand(
      PipelineCommandIDs.run,
      {
        label: trans.__('MLOps: Run pipeline…'),
        labelFor: path => trans.__('MLOps: Run pipeline %1', path),
        caption: trans.__('Submit a *.pipeline.yaml file with parameters'),
        pick: trans.__('Run which pipeline?')
      },
      false
    );
    addFileCommand(
      PipelineCommandIDs.schedule,
      {
        label: trans.__('MLOps: Schedule pipeline…'),
        labelFor: path => trans.__('MLOps: Schedule pipeline %1', path),
        caption: trans.__('Run a *.pipeline.yaml file on a cron schedule'),
        pick: trans.__('Schedule which pipeline?')
      },
      true
    );
    commands.addCommand(PipelineCommandIDs.openRun, {
      label: trans.__('MLOps: Open pipeline run…'),
      execute: async args => {
        let runId = typeof args.runId === 'string' ? args.runId : '';
        if (!runId) {
          const run = await pickOne(
            trans.__('Open which pipeline run?'),
            await client.listPipelineRuns({ max_results: 50 }),
            r =>
              `${pipelineRunLabel(r)} · ${r.status} · ${r.run_id.slice(0, 8)}`
          );
          runId = run?.run_id ?? '';
        }
        if (runId) {
          openRun(runId);
        }
      }
    });

    app.contextMenu.addItem({
      command: PipelineCommandIDs.run,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });
    app.contextMenu.addItem({
      command: PipelineCommandIDs.schedule,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });

    addToPalette(palette, [
      PipelineCommandIDs.openPanel,
      PipelineCommandIDs.refresh,
      PipelineCommandIDs.run,
      PipelineCommandIDs.schedule,
      PipelineCommandIDs.openRun
    ]);
    followSettings(settingRegistry, PIPELINES_PLUGIN_ID, settings => {
      const seconds = settings.get('refreshInterval').composite;
      refreshMs = typeof seconds === 'number' ? seconds * 1000 : 5000;
    });
  }
};
