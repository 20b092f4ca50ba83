/**
 * The Training jobs plugin: the "Training jobs" sidebar with its submit form,
 * job views in the main area, the status-bar progress of running jobs, and
 * "Run training job…" on `*.job.yaml` files in the file browser.
 *
 * Jobs have their own sidebar rather than a section of the Pipelines panel:
 * they are launched from scripts and notebooks, not from pipeline files, and
 * a job list that reloads every 2 s while jobs run would push the pipeline
 * files and schedules out of view.
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
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import {
  addSidebar,
  addToPalette,
  commandFile,
  MainTabs,
  pickOne,
  selectedFile
} from '../activation';
import { describeError, IJobValidateResponse, JobsApi } from '../api';
import { askUntilSaved } from '../pipelines/formDialog';
import { CommandIDs as MainCommands, IMLOps } from '../tokens';
import { isJobFile } from './grid';
import { askJobUntilSubmitted, emptyJobForm } from './JobForm';
import { JobsPanel } from './JobsPanel';
import { JobsStatus } from './status';
import { JobView } from './JobView';

/** Plugin id. */
export const JOBS_PLUGIN_ID = 'jupyter-mlops:jobs';

/** Command ids of the plugin. */
export namespace JobCommandIDs {
  export const openPanel = 'jupyter-mlops:open-jobs';
  export const refresh = 'jupyter-mlops:refresh-jobs';
  export const submit = 'jupyter-mlops:submit-job';
  export const runFile = 'jupyter-mlops:run-job-file';
  export const openJob = 'jupyter-mlops:open-job';
}

/** A job file's issues as lines `file:line: field: message`. */
export function describeIssues(
  info: IJobValidateResponse,
  path: string
): string {
  return info.issues
    .map(
      i =>
        `${i.file ?? path}${i.line ? `:${i.line}` : ''}: ${
          i.field ? `${i.field}: ` : ''
        }${i.message}`
    )
    .join('\n');
}

export const jobsPlugin: JupyterFrontEndPlugin<void> = {
  id: JOBS_PLUGIN_ID,
  description:
    'Training jobs: submit, watch nodes × ranks, read rank logs, cancel.',
  autoStart: true,
  requires: [IMLOps],
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ITranslator,
    IFileBrowserFactory,
    IStatusBar
  ],
  activate: (
    app: JupyterFrontEnd,
    mlops: IMLOps,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null,
    browsers: IFileBrowserFactory | null,
    statusBar: IStatusBar | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const api = new JobsApi(mlops.client);
    const { commands, shell } = app;
    let status: JobsStatus | null = null;

    const jobTabs = new MainTabs<JobView>(shell, restorer, {
      namespace: 'jupyter-mlops-job',
      command: JobCommandIDs.openJob,
      args: w => ({ jobId: w.jobId })
    });
    const openJob = (jobId: string): JobView =>
      jobTabs.show(
        (w): w is JobView => w instanceof JobView && w.jobId === jobId,
        () =>
          new JobView({
            api,
            trans,
            jobId,
            openTrackedRun: runId =>
              void commands.execute(MainCommands.openRun, { runId }),
            openPath: path => void commands.execute('docmanager:open', { path })
          })
      );

    const submitted = (jobId: string): void => {
      openJob(jobId);
      void panel.refresh();
      status?.refresh();
    };

    const submitForm = async (entry: string): Promise<void> => {
      const job = await askJobUntilSubmitted(api, trans, emptyJobForm(entry));
      if (job) {
        submitted(job.job_id);
      }
    };

    /** Run a `*.job.yaml`: its parameters in the pipelines' form, then submit. */
    const runFile = async (path: string): Promise<void> => {
      let info: IJobValidateResponse;
      let targets;
      try {
        [info, targets] = await Promise.all([
          api.validate({ path }),
          api.targets()
        ]);
      } catch (error) {
        await showErrorMessage(
          trans.__('Could not read the job file'),
          describeError(error)
        );
        return;
      }
      if (!info.valid || !info.job) {
        await showErrorMessage(
          trans.__('The job file is not valid'),
          describeIssues(info, path)
        );
        return;
      }
      const job = info.job;
      await askUntilSaved({
        info: {
          valid: true,
          issues: [],
          pipeline: {
            name: job.name,
            description: job.description,
            parameters: job.params as any,
            steps: {}
          }
        },
        targets: targets.map(t => ({
          name: t.name,
          display_name: t.display_name,
          default: t.default
        })),
        trans,
        title: trans.__('Run training job %1', job.name),
        accept: trans.__('Run'),
        failure: trans.__('Could not submit the job'),
        save: async value => {
          const started = await api.submit({
            path,
            parameters: value.parameters,
            target: value.target,
            run_name: value.runName || undefined
          });
          submitted(started.job_id);
        }
      });
    };

    const panel = new JobsPanel({
      api,
      trans,
      submit: () => void commands.execute(JobCommandIDs.submit),
      openJob: jobId => void openJob(jobId),
      refreshMs: () => mlops.runsModel.refreshInterval
    });
    addSidebar(app, restorer, panel, {
      rank: 915,
      type: 'Training jobs',
      open: {
        id: JobCommandIDs.openPanel,
        label: trans.__('MLOps: Open training jobs panel'),
        caption: trans.__('Show the Training jobs sidebar')
      },
      refresh: {
        id: JobCommandIDs.refresh,
        label: trans.__('MLOps: Refresh training jobs')
      }
    });

    commands.addCommand(JobCommandIDs.submit, {
      label: trans.__('MLOps: Submit training job…'),
      caption: trans.__(
        'Run a script or notebook on nodes × processes with a framework’s environment'
      ),
      execute: async args => {
        const entry = commandFile(shell, browsers, args, p =>
          /\.(py|sh|ipynb)$/i.test(p)
        );
        await submitForm(entry ?? '');
      }
    });
    commands.addCommand(JobCommandIDs.runFile, {
      label: args =>
        args.path
          ? trans.__('MLOps: Run training job %1', String(args.path))
          : trans.__('MLOps: Run training job…'),
      caption: trans.__('Submit a *.job.yaml file with parameters'),
      isVisible: args =>
        typeof args.path === 'string' ||
        !args.fromBrowser ||
        selectedFile(browsers, isJobFile) !== null,
      execute: async args => {
        let path = commandFile(shell, browsers, args, isJobFile);
        if (!path) {
          const answer = await InputDialog.getText({
            title: trans.__('Run which job file?'),
            label: trans.__('A *.job.yaml path, relative to the workspace'),
            placeholder: 'train.job.yaml'
          });
          if (!answer.button.accept || !answer.value?.trim()) {
            return;
          }
          path = answer.value.trim();
        }
        await runFile(path);
      }
    });
    commands.addCommand(JobCommandIDs.openJob, {
      label: trans.__('MLOps: Open training job…'),
      execute: async args => {
        let jobId = typeof args.jobId === 'string' ? args.jobId : '';
        if (!jobId) {
          const job = await pickOne(
            trans.__('Open which training job?'),
            await api.list({ max_results: 50 }),
            j => `${j.name} · ${j.status} · ${j.job_id.slice(0, 8)}`
          );
          jobId = job?.job_id ?? '';
        }
        if (jobId) {
          openJob(jobId);
        }
      }
    });

    app.contextMenu.addItem({
      command: JobCommandIDs.runFile,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });

    if (statusBar) {
      status = new JobsStatus({
        api,
        trans,
        interval: () => mlops.runsModel.refreshInterval,
        openJob: jobId => void openJob(jobId),
        openPanel: () => shell.activateById(panel.id)
      });
      statusBar.registerStatusItem('jupyter-mlops:jobs', {
        item: status,
        align: 'left',
        rank: 6
      });
    }

    addToPalette(palette, [
      JobCommandIDs.openPanel,
      JobCommandIDs.refresh,
      JobCommandIDs.submit,
      JobCommandIDs.runFile,
      JobCommandIDs.openJob
    ]);
  }
};
