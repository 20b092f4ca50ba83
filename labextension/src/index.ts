/**
 * The JupyterLab plugin of jupyter-mlops: the MLOps sidebar, its commands and
 * its settings.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { MLOpsClient } from './api';
import { addToPalette, followSettings, MainTabs } from './activation';
import { addArtifactDocuments, SAVE_ARTIFACT_COPY } from './artifactDocs';
import { addCopyLink, COPY_LINK } from './copyLinks';
import { addCommands, addContextMenu } from './commands';
import { DEFAULT_PAGE_SIZE, DEFAULT_REFRESH_MS, RunsModel } from './model';
import { IChartOptions, XAxisMode } from './charts';
import { IViewContext, RunDetailWidget, RunsPanel } from './panels';
import { parseMlflowLink } from './links';
import { ActiveRunStatus } from './status';
import { CommandIDs, IMLOps, PLUGIN_ID, RUNS_PANEL_ID } from './tokens';
import { PipelineCommandIDs, pipelinesPlugin } from './pipelines/plugin';
import { ModelCommandIDs, modelsPlugin } from './models/plugin';
import { projectsPlugin } from './projects/plugin';
import { JobCommandIDs, jobsPlugin } from './jobs/plugin';
import { hubPlugin, notificationsPlugin } from './hub/plugin';
import { TraceCommandIDs, tracesPlugin } from './traces/plugin';
import { sharePlugin } from './hub/share';

export * from './tokens';

/** Read the plugin's settings into the model. */
function applySettings(
  model: RunsModel,
  settings: ISettingRegistry.ISettings
): void {
  const seconds = settings.get('refreshInterval').composite;
  model.refreshInterval =
    typeof seconds === 'number' ? seconds * 1000 : DEFAULT_REFRESH_MS;
  const pageSize = settings.get('maxRuns').composite;
  model.pageSize = typeof pageSize === 'number' ? pageSize : DEFAULT_PAGE_SIZE;
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
    IStatusBar,
    IDocumentManager,
    IStateDB
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    rendermime: IRenderMimeRegistry | null,
    notebooks: INotebookTracker | null,
    statusBar: IStatusBar | null,
    docManager: IDocumentManager | null,
    state: IStateDB | null
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

    const openArtifact = addArtifactDocuments(app, client, trans, docManager);
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
      // Artifacts open read-only from the store (the mlops-artifacts: drive).
      openNotebookContent: (name, content, source) =>
        void openArtifact(name, content, source),
      chartDefaults,
      refreshMs: () => model.refreshInterval,
      registerModel: (runId, path) => {
        void commands.execute(ModelCommandIDs.register, { runId, path });
      },
      copyLink: (runId, experimentId) =>
        void commands.execute(COPY_LINK, { runId, experimentId }),
      openTrace: traceId =>
        void commands.execute(TraceCommandIDs.openTrace, { traceId })
    };
    addCopyLink(app, client, trans);

    const runTabs = new MainTabs<RunDetailWidget>(shell, restorer, {
      namespace: 'jupyter-mlops-run',
      command: CommandIDs.openRun,
      args: w => ({ runId: w.runId })
    });
    const openRun = (runId: string) => {
      const id = `jupyter-mlops-run-${runId}`;
      runTabs.show(
        (w): w is RunDetailWidget =>
          w instanceof RunDetailWidget && w.id === id,
        () => new RunDetailWidget(runId, ctx)
      );
    };

    addCommands(app, {
      client,
      model,
      trans,
      ctx,
      openRun,
      notebooks,
      restorer,
      state
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
        openTable: experimentId =>
          void commands.execute(CommandIDs.openRunsTable, { experimentId }),
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

    addContextMenu(app, notebooks);
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
      CommandIDs.openRunsTable,
      CommandIDs.notebookRuns,
      CommandIDs.createExperiment,
      CommandIDs.renameExperiment,
      CommandIDs.deleteExperiment,
      CommandIDs.restoreExperiment,
      SAVE_ARTIFACT_COPY,
      COPY_LINK
    ]);
    followSettings(settingRegistry, PLUGIN_ID, loaded => {
      settings = loaded;
      applySettings(model, loaded);
    });

    // Links MLflow's client prints land on JupyterLab with a `#/...` fragment.
    const openLink = () => {
      const link = parseMlflowLink(window.location.hash);
      if (!link) {
        return;
      }
      if (link.kind === 'run') {
        shell.activateById(RUNS_PANEL_ID);
        model.selectExperiment(link.experimentId);
        openRun(link.runId);
      } else if (link.kind === 'experiment') {
        // MLflow's "View experiment at" opens its runs page: our runs tab.
        shell.activateById(RUNS_PANEL_ID);
        model.selectExperiment(link.experimentId);
        void commands.execute(CommandIDs.openRunsTable, {
          experimentId: link.experimentId
        });
      } else if (link.kind === 'pipeline-run') {
        void commands.execute(PipelineCommandIDs.openRun, {
          runId: link.runId
        });
      } else if (link.kind === 'job') {
        void commands.execute(JobCommandIDs.openJob, { jobId: link.jobId });
      } else if (link.kind === 'deployment') {
        void commands.execute(ModelCommandIDs.openDeployment, {
          name: link.name
        });
      } else {
        void commands.execute(ModelCommandIDs.openModel, { name: link.name });
      }
      // Opened once: a reload restores the layout instead.
      window.history.replaceState(
        null,
        '',
        window.location.pathname + window.location.search
      );
    };
    void app.restored.then(openLink);
    window.addEventListener('hashchange', openLink);

    return {
      client,
      runsModel: model,
      openNotebookContent: ctx.openNotebookContent
    };
  }
};

export default [
  plugin,
  pipelinesPlugin,
  modelsPlugin,
  projectsPlugin,
  jobsPlugin,
  hubPlugin,
  notificationsPlugin,
  tracesPlugin,
  sharePlugin
];
