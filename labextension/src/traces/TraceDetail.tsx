/**
 * A trace's detail: the span waterfall (bars placed by start and end, nested
 * by parent, coloured by span type, subtrees collapsible), the selected
 * span's inputs, outputs, attributes and events as collapsible JSON (errors
 * and exceptions highlighted), and the trace's assessments with "Add
 * feedback". `TraceBody` is shared by the main-area tab and the notebook's
 * inline renderer.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useMemo, useState } from 'react';

import { describeError, IAssessment, ITraceInfo, TracesApi } from '../api';
import { mlopsIcon } from '../icons';
import {
  assessmentValue,
  durationMs,
  formatLatency,
  timestampMs,
  traceName,
  userTags,
  valueText
} from './data';
import {
  isFailed,
  ISpan,
  IWaterfallRow,
  layoutWaterfall,
  readSpan,
  spanTypeClass,
  visibleRows
} from './spans';

/** What the trace views need from the application. */
export interface ITraceViewContext {
  api: TracesApi;
  trans: TranslationBundle;
  /** Open a trace's detail tab. */
  openTrace?: (traceId: string) => void;
}

/** A value as collapsible, pretty-printed JSON. */
export function JsonBlock(props: {
  title: string;
  value: unknown;
  open?: boolean;
  className?: string;
}): JSX.Element | null {
  if (props.value === undefined || props.value === null) {
    return null;
  }
  const text =
    typeof props.value === 'string'
      ? props.value
      : JSON.stringify(props.value, null, 2);
  return (
    <details
      className={`jp-mlops-Json ${props.className ?? ''}`}
      open={props.open ?? true}
    >
      <summary>{props.title}</summary>
      <pre>{text}</pre>
    </details>
  );
}

/** The state badge of a trace or span. */
export function StateBadge(props: { state: string }): JSX.Element {
  const state = props.state === 'STATE_UNSPECIFIED' ? 'UNSET' : props.state;
  return (
    <span className={`jp-mlops-TraceState jp-mlops-TraceState-${state}`}>
      {state}
    </span>
  );
}

/** The waterfall: a tree column and a timeline column. */
export function Waterfall(props: {
  rows: IWaterfallRow[];
  totalMs: number;
  selected: string | null;
  onSelect: (span: ISpan) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const shown = visibleRows(props.rows, collapsed);
  const toggle = (id: string) => {
    const next = new Set(collapsed);
    if (!next.delete(id)) {
      next.add(id);
    }
    setCollapsed(next);
  };
  return (
    <div className="jp-mlops-Waterfall" role="tree">
      <div className="jp-mlops-Waterfall-head">
        <span>{trans.__('Span')}</span>
        <span className="jp-mlops-Waterfall-scale">
          <span>0</span>
          <span>{formatLatency(props.totalMs)}</span>
        </span>
      </div>
      {shown.map(row => {
        const { span } = row;
        const failed = isFailed(span);
        return (
          <div
            key={span.id}
            role="treeitem"
            aria-selected={props.selected === span.id}
            aria-expanded={
              row.hasChildren ? !collapsed.has(span.id) : undefined
            }
            className={`jp-mlops-WaterfallRow${
              props.selected === span.id ? ' jp-mod-selected' : ''
            }${failed ? ' jp-mlops-SpanFailed' : ''}`}
            data-span-name={span.name}
            data-span-type={span.type}
            onClick={() => props.onSelect(span)}
          >
            <span
              className="jp-mlops-WaterfallRow-name"
              style={{ paddingLeft: `${row.depth * 14 + 4}px` }}
              title={span.name}
            >
              {row.hasChildren ? (
                <button
                  className="jp-mlops-WaterfallToggle"
                  aria-label={trans.__('Collapse or expand %1', span.name)}
                  onClick={e => {
                    e.stopPropagation();
                    toggle(span.id);
                  }}
                >
                  {collapsed.has(span.id) ? '▸' : '▾'}
                </button>
              ) : (
                <span className="jp-mlops-WaterfallToggle-space" />
              )}
              <span
                className={`jp-mlops-SpanTypeBadge ${spanTypeClass(span.type)}`}
              >
                {span.type}
              </span>
              {span.name}
            </span>
            <span className="jp-mlops-WaterfallRow-track">
              <span
                className={`jp-mlops-WaterfallBar ${spanTypeClass(span.type)}`}
                style={{
                  left: `${row.offset * 100}%`,
                  width: `max(2px, ${row.width * 100}%)`
                }}
              />
              <span
                className="jp-mlops-WaterfallRow-ms"
                style={{ left: `${Math.min(row.offset * 100, 80)}%` }}
              >
                {formatLatency(row.durationMs)}
              </span>
            </span>
          </div>
        );
      })}
    </div>
  );
}

/** The selected span's fields. */
export function SpanPane(props: {
  span: ISpan;
  startNs: number;
  trans: TranslationBundle;
}): JSX.Element {
  const { span, trans } = props;
  const duration =
    span.endNs === null ? null : (span.endNs - span.startNs) / 1e6;
  const exceptions = span.events.filter(e => e.name === 'exception');
  const others = span.events.filter(e => e.name !== 'exception');
  return (
    <div className="jp-mlops-SpanPane" data-span-name={span.name}>
      <h4 className="jp-mlops-SpanPane-title">
        <span className={`jp-mlops-SpanTypeBadge ${spanTypeClass(span.type)}`}>
          {span.type}
        </span>{' '}
        {span.name} <StateBadge state={span.status} />
      </h4>
      <div className="jp-mlops-Muted">
        {trans.__(
          'Starts at +%1',
          formatLatency((span.startNs - props.startNs) / 1e6)
        )}
        {' · '}
        {duration === null
          ? trans.__('still running')
          : trans.__('took %1', formatLatency(duration))}
      </div>
      {span.status === 'ERROR' && span.statusMessage ? (
        <div className="jp-mlops-SpanException">{span.statusMessage}</div>
      ) : null}
      {exceptions.map((e, i) => (
        <JsonBlock
          key={`x${i}`}
          title={trans.__('Exception')}
          value={e.attributes}
          className="jp-mlops-SpanException"
        />
      ))}
      <JsonBlock title={trans.__('Inputs')} value={span.inputs} />
      <JsonBlock title={trans.__('Outputs')} value={span.outputs} />
      {Object.keys(span.attributes).length ? (
        <JsonBlock
          title={trans.__('Attributes')}
          value={span.attributes}
          open={false}
        />
      ) : null}
      {others.length ? (
        <JsonBlock
          title={trans.__('Events')}
          value={others.map(e => ({
            name: e.name,
            at_ms: (e.timeNs - props.startNs) / 1e6,
            attributes: e.attributes
          }))}
          open={false}
        />
      ) : null}
    </div>
  );
}

/** Parse what was typed as a feedback value: JSON when it is, else text. */
export function feedbackValue(text: string): unknown {
  const t = text.trim();
  if (t === '') {
    return '';
  }
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}

/** The trace's assessments and the "Add feedback" form. */
export function Assessments(props: {
  info: ITraceInfo;
  ctx: ITraceViewContext;
  onAdded: () => void;
}): JSX.Element {
  const { info, ctx } = props;
  const { trans } = ctx;
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [rationale, setRationale] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const list = info.assessments ?? [];
  const submit = async () => {
    if (!name.trim()) {
      setError(trans.__('A feedback needs a name.'));
      return;
    }
    setBusy(true);
    setError('');
    const body: IAssessment = {
      assessment_name: name.trim(),
      trace_id: info.trace_id,
      feedback: { value: feedbackValue(value) },
      source: { source_type: 'HUMAN', source_id: 'jupyterlab' }
    };
    if (rationale.trim()) {
      body.rationale = rationale.trim();
    }
    try {
      await ctx.api.createAssessment(info.trace_id, body);
      setName('');
      setValue('');
      setRationale('');
      props.onAdded();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="jp-mlops-Section jp-mlops-Assessments">
      <h3 className="jp-mlops-Section-title">{trans.__('Assessments')}</h3>
      {list.length ? (
        <table className="jp-mlops-KV">
          <tbody>
            {list.map((a, i) => (
              <tr
                key={a.assessment_id ?? i}
                className={`jp-mlops-Assessment${
                  a.valid === false ? ' jp-mlops-Assessment-overridden' : ''
                }`}
                data-assessment-name={a.assessment_name}
              >
                <th>
                  {a.assessment_name}
                  <span className="jp-mlops-Muted">
                    {' '}
                    {a.expectation
                      ? trans.__('expectation')
                      : trans.__('feedback')}
                  </span>
                </th>
                <td className="jp-mlops-Assessment-value">
                  {a.feedback?.error
                    ? trans.__(
                        'error: %1',
                        a.feedback.error.error_message ?? ''
                      )
                    : valueText(assessmentValue(a))}
                </td>
                <td className="jp-mlops-Muted">
                  {a.rationale ?? ''}
                  {a.source
                    ? ` (${a.source.source_type}${
                        a.source.source_id ? `: ${a.source.source_id}` : ''
                      })`
                    : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <div className="jp-mlops-Muted">{trans.__('No assessments yet')}</div>
      )}
      <form
        className="jp-mlops-FeedbackForm"
        onSubmit={e => {
          e.preventDefault();
          void submit();
        }}
      >
        <input
          className="jp-mod-styled"
          aria-label={trans.__('Feedback name')}
          placeholder={trans.__('name, e.g. correct')}
          value={name}
          onChange={e => setName(e.target.value)}
        />
        <input
          className="jp-mod-styled"
          aria-label={trans.__('Feedback value')}
          placeholder={trans.__('value: true, 0.8, text')}
          value={value}
          onChange={e => setValue(e.target.value)}
        />
        <input
          className="jp-mod-styled jp-mlops-FeedbackForm-rationale"
          aria-label={trans.__('Rationale')}
          placeholder={trans.__('rationale (optional)')}
          value={rationale}
          onChange={e => setRationale(e.target.value)}
        />
        <button
          type="submit"
          className="jp-mlops-Button jp-mod-styled jp-mod-accept"
          disabled={busy}
        >
          {trans.__('Add feedback')}
        </button>
      </form>
      {error ? <div className="jp-mlops-Error">{error}</div> : null}
    </section>
  );
}

/** A trace as loaded: info and spans. */
interface ILoaded {
  info: ITraceInfo;
  spans: ISpan[];
}

/** Load a trace's info and spans; `reload` fetches the info again. */
export function useTrace(
  api: TracesApi,
  traceId: string,
  attempts = 1
): {
  trace: ILoaded | null;
  error: string;
  reloadInfo: () => void;
} {
  const [trace, setTrace] = useState<ILoaded | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    const load = async (left: number): Promise<void> => {
      try {
        const [info, raw] = await Promise.all([
          api.info(traceId),
          api.spans(traceId)
        ]);
        if (live) {
          setTrace({ info, spans: raw.map(readSpan) });
          setError('');
        }
      } catch (e) {
        // The inline renderer may ask before the kernel's writer sent it.
        if (live && left > 1) {
          await new Promise(r => setTimeout(r, 1000));
          return live ? load(left - 1) : undefined;
        }
        if (live) {
          setError(describeError(e));
        }
      }
    };
    void load(attempts);
    return () => {
      live = false;
    };
  }, [api, traceId, attempts]);
  const reloadInfo = useCallback(() => {
    void api
      .info(traceId)
      .then(info => setTrace(t => (t ? { ...t, info } : t)))
      .catch(e => setError(describeError(e)));
  }, [api, traceId]);
  return { trace, error, reloadInfo };
}

/** Header, waterfall, span pane and assessments of one trace. */
export function TraceBody(props: {
  traceId: string;
  ctx: ITraceViewContext;
  /** Retries while the trace is not there yet (the inline renderer). */
  attempts?: number;
  /** Show the assessments section. */
  assessments?: boolean;
  onTitle?: (title: string) => void;
}): JSX.Element {
  const { ctx, traceId } = props;
  const { trans } = ctx;
  const { trace, error, reloadInfo } = useTrace(
    ctx.api,
    traceId,
    props.attempts ?? 1
  );
  const layout = useMemo(
    () => layoutWaterfall(trace?.spans ?? []),
    [trace?.spans]
  );
  const [selected, setSelected] = useState<string | null>(null);
  const onTitle = props.onTitle;
  useEffect(() => {
    if (trace && onTitle) {
      onTitle(traceName(trace.info) || traceId.slice(0, 11));
    }
  }, [trace, onTitle, traceId]);
  if (error) {
    return <div className="jp-mlops-Error">{error}</div>;
  }
  if (!trace) {
    return <div className="jp-mlops-Muted">{trans.__('Loading trace…')}</div>;
  }
  const { info } = trace;
  const span =
    layout.rows.find(r => r.span.id === selected)?.span ??
    layout.rows[0]?.span ??
    null;
  const time = timestampMs(info.request_time);
  const tags = userTags(info);
  return (
    <div className="jp-mlops-TraceBody" data-trace-id={info.trace_id}>
      <div className="jp-mlops-TraceHeader">
        <span className="jp-mlops-TraceHeader-name">
          {traceName(info) || trans.__('(unnamed)')}
        </span>
        <StateBadge state={info.state} />
        <span className="jp-mlops-TraceLatency">
          {formatLatency(
            // The spans time in ns; the info's duration is whole ms.
            layout.rows.length
              ? layout.totalMs
              : durationMs(info.execution_duration)
          )}
        </span>
        <span className="jp-mlops-Muted">
          {time !== null ? new Date(time).toLocaleString() : ''}
        </span>
        <code className="jp-mlops-Muted">{info.trace_id}</code>
        {ctx.openTrace ? (
          <button
            className="jp-mlops-LinkButton"
            onClick={() => ctx.openTrace?.(info.trace_id)}
          >
            {trans.__('Open in a tab')}
          </button>
        ) : null}
      </div>
      {tags.length ? (
        <div className="jp-mlops-TraceTags">
          {tags.map(([k, v]) => (
            <span key={k} className="jp-mlops-TraceChip">
              {k}={v}
            </span>
          ))}
        </div>
      ) : null}
      <div className="jp-mlops-TraceSplit">
        {layout.rows.length ? (
          <Waterfall
            rows={layout.rows}
            totalMs={layout.totalMs}
            selected={span?.id ?? null}
            onSelect={s => setSelected(s.id)}
            trans={trans}
          />
        ) : (
          <div className="jp-mlops-Muted">{trans.__('No spans')}</div>
        )}
        {span ? (
          <SpanPane span={span} startNs={layout.startNs} trans={trans} />
        ) : null}
      </div>
      {props.assessments === false ? null : (
        <Assessments info={info} ctx={ctx} onAdded={reloadInfo} />
      )}
    </div>
  );
}

/** A trace's detail in the main area (one tab per trace). */
export class TraceDetailWidget extends MainAreaWidget<ReactWidget> {
  constructor(traceId: string, ctx: ITraceViewContext) {
    const content = ReactWidget.create(
      <TraceBody
        traceId={traceId}
        ctx={{ ...ctx, openTrace: undefined }}
        onTitle={title => {
          this.title.label = title;
        }}
      />
    );
    content.addClass('jp-mlops-DetailContent');
    super({ content });
    this.traceId = traceId;
    this.id = `jupyter-mlops-trace-${traceId}`;
    this.addClass('jp-mlops-TraceDetail');
    this.title.label = traceId.slice(0, 11);
    this.title.caption = ctx.trans.__('MLOps trace %1', traceId);
    this.title.icon = mlopsIcon;
    this.title.closable = true;
  }

  readonly traceId: string;
}
