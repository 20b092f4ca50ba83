/**
 * The tracing plugin: an experiment's Traces tab ("MLOps: Open traces", also
 * on an experiment's context menu), a trace's detail tab, the comparison of
 * two traces, and the notebook's inline trace renderer
 * (`application/vnd.mlops.trace+json`).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addToPalette, showInMain } from '../activation';
import { TracesApi } from '../api';
import { IMLOps } from '../tokens';
import { TraceCompareWidget } from './TraceCompare';
import { ITraceViewContext, TraceDetailWidget } from './TraceDetail';
import { TracesWidget } from './TracesView';
import { traceRendererFactory } from './renderer';

/** Plugin id. */
export const TRACES_PLUGIN_ID = 'jupyter-mlops:traces';

/** Command ids of the plugin. */
export namespace TraceCommandIDs {
  export const openTraces = 'jupyter-mlops:open-traces';
  export const openTrace = 'jupyter-mlops:open-trace';
  export const compareTraces = 'jupyter-mlops:compare-traces';
}

export const tracesPlugin: JupyterFrontEndPlugin<void> = {
  id: TRACES_PLUGIN_ID,
  description:
    'MLflow 3 traces: the Traces tab, trace detail with its span waterfall, compare, inline notebook view.',
  autoStart: true,
  requires: [IMLOps],
  optional: [
    ICommandPalette,
    ITranslator,
    IRenderMimeRegistry,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    mlops: IMLOps,
    palette: ICommandPalette | null,
    translator: ITranslator | null,
    rendermime: IRenderMimeRegistry | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const api = new TracesApi(mlops.client);
    const { commands, shell } = app;
    const openTrace = (traceId: string): void => {
      void commands.execute(TraceCommandIDs.openTrace, { traceId });
    };
    const ctx: ITraceViewContext = { api, trans, openTrace };

    /**
     * The experiment a command without one means: the runs tab in front (its
     * context menu), else the sidebar's selection.
     */
    const currentExperiment = (): string | null => {
      const widget = shell.currentWidget;
      if (widget?.hasClass('jp-mlops-RunsTab')) {
        const id = (widget as { experimentId?: unknown }).experimentId;
        if (typeof id === 'string') {
          return id;
        }
      }
      return mlops.runsModel.selectedExperimentId;
    };

    commands.addCommand(TraceCommandIDs.openTraces, {
      label: trans.__('MLOps: Open traces'),
      caption: trans.__("The experiment's traces"),
      isEnabled: args =>
        typeof args.experimentId === 'string' || currentExperiment() !== null,
      execute: async args => {
        const experimentId =
          typeof args.experimentId === 'string'
            ? args.experimentId
            : currentExperiment();
        if (!experimentId) {
          return;
        }
        const filter = typeof args.filter === 'string' ? args.filter : '';
        let name = experimentId;
        const known = mlops.runsModel.experiments.find(
          e => e.experiment_id === experimentId
        );
        if (known) {
          name = known.name;
        } else {
          try {
            name = (await mlops.client.getExperiment(experimentId)).name;
          } catch {
            // The tab says the id; the table shows the search's error.
          }
        }
        showInMain(
          shell,
          (w): w is TracesWidget =>
            w instanceof TracesWidget && w.experimentId === experimentId,
          () =>
            new TracesWidget(
              experimentId,
              name,
              {
                ...ctx,
                openTrace,
                compare: (left, right) =>
                  void commands.execute(TraceCommandIDs.compareTraces, {
                    left,
                    right
                  })
              },
              filter
            )
        );
      }
    });

    commands.addCommand(TraceCommandIDs.openTrace, {
      label: trans.__('MLOps: Open trace…'),
      caption: trans.__('Open a trace by its id'),
      execute: async args => {
        let traceId = typeof args.traceId === 'string' ? args.traceId : '';
        if (!traceId) {
          const answer = await InputDialog.getText({
            title: trans.__('Open trace'),
            label: trans.__('Trace id (tr-…)'),
            okLabel: trans.__('Open')
          });
          traceId = answer.button.accept ? (answer.value ?? '').trim() : '';
        }
        if (!traceId) {
          return;
        }
        showInMain(
          shell,
          (w): w is TraceDetailWidget =>
            w instanceof TraceDetailWidget && w.traceId === traceId,
          () => new TraceDetailWidget(traceId, ctx)
        );
      }
    });

    commands.addCommand(TraceCommandIDs.compareTraces, {
      label: trans.__('MLOps: Compare two traces'),
      isEnabled: args =>
        typeof args.left === 'string' && typeof args.right === 'string',
      execute: args => {
        const left = String(args.left);
        const right = String(args.right);
        const key = TraceCompareWidget.key(left, right);
        showInMain(
          shell,
          (w): w is TraceCompareWidget =>
            w instanceof TraceCompareWidget && w.key === key,
          () => new TraceCompareWidget(left, right, ctx)
        );
      }
    });

    app.contextMenu.addItem({
      command: TraceCommandIDs.openTraces,
      selector: '.jp-mlops-ExperimentItem',
      rank: 0.5
    });
    app.contextMenu.addItem({
      command: TraceCommandIDs.openTraces,
      selector: '.jp-mlops-RunsTab',
      rank: 50
    });
    addToPalette(palette, [
      TraceCommandIDs.openTraces,
      TraceCommandIDs.openTrace
    ]);

    rendermime?.addFactory(traceRendererFactory(ctx), 40);
  }
};
