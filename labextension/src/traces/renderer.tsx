/**
 * The notebook's inline trace view: the kernel's display hook
 * (`jupyter_mlops/client/notebook_display.py`) outputs
 * `application/vnd.mlops.trace+json` after a cell that made traces (as MLflow
 * does in notebooks), and this renderer shows them under the cell: a line per
 * trace, the selected one's waterfall, spans and assessments read from the
 * server. The bundle carries only ids and summaries, so a notebook saved with
 * it stays small and shows the summaries where the server is not reachable.
 */
import type { IRenderMime } from '@jupyterlab/rendermime';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { formatLatency, previewText } from './data';
import { ITraceViewContext, StateBadge, TraceBody } from './TraceDetail';

/** The MIME type of the inline trace view. */
export const TRACE_MIME_TYPE = 'application/vnd.mlops.trace+json';

/** A trace as the display hook summarises it. */
export interface ITraceSummary {
  trace_id: string;
  name?: string;
  state?: string;
  execution_duration_ms?: number;
  request_preview?: string;
  response_preview?: string;
}

/** The bundle's data. */
export interface ITraceBundle {
  traces: ITraceSummary[];
  experiment_id?: string;
}

/** The bundle's traces, whatever shape it came in (defensive: notebook files). */
export function bundleTraces(data: unknown): ITraceSummary[] {
  const list =
    data && typeof data === 'object' && 'traces' in data
      ? (data as { traces: unknown }).traces
      : null;
  if (!Array.isArray(list)) {
    return [];
  }
  return list.filter(
    (t): t is ITraceSummary =>
      !!t && typeof t === 'object' && typeof t.trace_id === 'string'
  );
}

/** Retries of a trace not on the server yet (the writer sends it soon). */
const ATTEMPTS = 30;

function InlineTraces(props: {
  traces: ITraceSummary[];
  ctx: ITraceViewContext;
}): JSX.Element {
  const { traces, ctx } = props;
  const { trans } = ctx;
  const [selected, setSelected] = useState(0);
  const [open, setOpen] = useState(true);
  const current = traces[selected];
  return (
    <div className="jp-mlops-InlineTraces">
      <div className="jp-mlops-InlineTraces-list" role="tablist">
        <button
          className="jp-mlops-WaterfallToggle"
          aria-label={trans.__('Show or hide the trace')}
          aria-expanded={open}
          onClick={() => setOpen(!open)}
        >
          {open ? '▾' : '▸'}
        </button>
        <span className="jp-mlops-InlineTraces-label">
          {trans._n('%1 trace', '%1 traces', traces.length)}
        </span>
        {traces.map((t, i) => (
          <button
            key={t.trace_id}
            role="tab"
            aria-selected={i === selected}
            className={`jp-mlops-InlineTrace${
              i === selected ? ' jp-mod-selected' : ''
            }`}
            data-trace-id={t.trace_id}
            title={previewText(t.request_preview, 300)}
            onClick={() => {
              setSelected(i);
              setOpen(true);
            }}
          >
            {t.name || t.trace_id.slice(0, 11)}{' '}
            {t.state ? <StateBadge state={t.state} /> : null}{' '}
            <span className="jp-mlops-Muted">
              {t.execution_duration_ms === undefined
                ? ''
                : formatLatency(t.execution_duration_ms)}
            </span>
          </button>
        ))}
      </div>
      {open && current ? (
        <TraceBody
          key={current.trace_id}
          traceId={current.trace_id}
          ctx={ctx}
          attempts={ATTEMPTS}
        />
      ) : null}
    </div>
  );
}

/** The renderer of one output. */
class TraceRenderer extends ReactWidget implements IRenderMime.IRenderer {
  constructor(
    private readonly _ctx: ITraceViewContext,
    private readonly _mimeType: string
  ) {
    super();
    this.addClass('jp-mlops-TraceOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._traces = bundleTraces(model.data[this._mimeType]);
    this.update();
  }

  protected render(): JSX.Element {
    if (!this._traces.length) {
      return (
        <div className="jp-mlops-Muted">
          {this._ctx.trans.__('No traces in this output')}
        </div>
      );
    }
    return <InlineTraces traces={this._traces} ctx={this._ctx} />;
  }

  private _traces: ITraceSummary[] = [];
}

/** The factory the plugin adds to the application's rendermime registry. */
export function traceRendererFactory(
  ctx: ITraceViewContext
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [TRACE_MIME_TYPE],
    defaultRank: 40,
    createRenderer: options => new TraceRenderer(ctx, options.mimeType)
  };
}
