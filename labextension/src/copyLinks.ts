/**
 * "MLOps: Copy link": the shareable URL of a run, an experiment's runs, a
 * pipeline run or a model (`<server>/mlops/#/...`, the links MLflow's client
 * prints, which open that view in JupyterLab). From a run row or a tab's
 * context menu, the palette (the current tab) or a view's button (arguments).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard, Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { linkIcon } from '@jupyterlab/ui-components';

import { MLOpsClient } from './api';
import { linkOfWidgetId, linkUrl, MlflowLink } from './links';

/** Command id of "Copy link". */
export const COPY_LINK = 'jupyter-mlops:copy-link';

/** Tabs of the extension's views that have a link. */
const TAB_SELECTOR =
  '.lm-DockPanel-tabBar .lm-TabBar-tab[data-id^="jupyter-mlops-"]';

/** The link a command's arguments name, or null. */
function linkOfArgs(args: Record<string, unknown>): MlflowLink | null {
  const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
  if (str(args.runId)) {
    return {
      kind: 'run',
      runId: str(args.runId)!,
      experimentId: str(args.experimentId) ?? ''
    };
  }
  if (str(args.pipelineRunId)) {
    return { kind: 'pipeline-run', runId: str(args.pipelineRunId)! };
  }
  if (str(args.model)) {
    return {
      kind: 'model',
      name: str(args.model)!,
      version: str(args.version)
    };
  }
  if (str(args.experimentId)) {
    return { kind: 'experiment', experimentId: str(args.experimentId)! };
  }
  return null;
}

/** Add "Copy link" and its context-menu items. */
export function addCopyLink(
  app: JupyterFrontEnd,
  client: MLOpsClient,
  trans: TranslationBundle
): void {
  const { commands, shell } = app;

  /** The link of what was right-clicked, or of the current tab. */
  const target = (): MlflowLink | null => {
    let link: MlflowLink | null = null;
    app.contextMenuHitTest(node => {
      const runId = node.dataset?.runId;
      if (node.classList.contains('jp-mlops-RunRow') && runId) {
        link = {
          kind: 'run',
          runId,
          experimentId: node.dataset.experimentId ?? ''
        };
        return true;
      }
      if (node.classList.contains('lm-TabBar-tab') && node.dataset.id) {
        link = fromWidget(node.dataset.id);
        return true;
      }
      return false;
    });
    return (
      link ?? (shell.currentWidget ? fromWidget(shell.currentWidget.id) : null)
    );
  };
  const fromWidget = (id: string): MlflowLink | null => {
    const found = linkOfWidgetId(id);
    if (!found) {
      return null;
    }
    if (found.kind === 'run') {
      return { ...found, experimentId: '' };
    }
    return found.kind === 'model' ? { ...found, version: null } : found;
  };

  commands.addCommand(COPY_LINK, {
    label: trans.__('MLOps: Copy link'),
    caption: trans.__(
      'Copy a link that opens this run, experiment, pipeline run or model in JupyterLab'
    ),
    icon: args => (args.isPalette ? undefined : linkIcon),
    isEnabled: args => linkOfArgs(args) !== null || target() !== null,
    execute: async args => {
      const link = linkOfArgs(args) ?? target();
      if (!link) {
        return null;
      }
      if (link.kind === 'run' && !link.experimentId) {
        // The link names the experiment (as MLflow's do).
        try {
          const run = await client.getRun(link.runId);
          link.experimentId = run.info.experiment_id;
        } catch {
          link.experimentId = '0';
        }
      }
      const url = linkUrl(client.serverSettings.baseUrl, link);
      Clipboard.copyToSystem(url);
      Notification.info(trans.__('Link copied: %1', url), {
        autoClose: 4000
      });
      return url;
    }
  });
  app.contextMenu.addItem({
    command: COPY_LINK,
    selector: '.jp-mlops-RunRow',
    rank: 5
  });
  app.contextMenu.addItem({
    command: COPY_LINK,
    selector: TAB_SELECTOR,
    rank: 5
  });
}
