/**
 * An experiment's traces (main area, one tab per experiment): a table of
 * traces searched on the server with MLflow's trace filter grammar, newest
 * or slowest first, paged with the server's tokens ("Load more"). A row opens
 * the trace's detail; two checked rows open the comparison.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { describeError, ITraceInfo } from '../api';
import { mlopsIcon } from '../icons';
import {
  durationMs,
  formatLatency,
  previewText,
  timestampMs,
  tokenUsage,
  traceName,
  userTags,
  validAssessments,
  valueText,
  assessmentValue
} from './data';
import { ITraceViewContext, StateBadge } from './TraceDetail';

/** Rows read per page. */
export const TRACES_PAGE_SIZE = 50;

/** The orders offered (MLflow's `order_by`). */
const ORDERS: Record<string, string[]> = {
  newest: ['timestamp_ms DESC'],
  oldest: ['timestamp_ms ASC'],
  slowest: ['execution_time_ms DESC'],
  fastest: ['execution_time_ms ASC']
};

/** What the traces table needs beyond the trace views' context. */
export interface ITracesViewContext extends ITraceViewContext {
  openTrace: (traceId: string) => void;
  compare: (left: string, right: string) => void;
}

function TracesTable(props: {
  experimentId: string;
  ctx: ITracesViewContext;
  initialFilter: string;
}): JSX.Element {
  const { ctx, experimentId } = props;
  const { trans } = ctx;
  const [draft, setDraft] = useState(props.initialFilter);
  const [filter, setFilter] = useState(props.initialFilter);
  const [order, setOrder] = useState('newest');
  const [traces, setTraces] = useState<ITraceInfo[]>([]);
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(false);
  const [checked, setChecked] = useState<string[]>([]);
  const generation = useRef(0);

  const load = useCallback(
    async (pageToken?: string) => {
      const mine = pageToken ? generation.current : ++generation.current;
      setLoading(true);
      try {
        const page = await ctx.api.search({
          experimentIds: [experimentId],
          filter,
          orderBy: ORDERS[order],
          maxResults: TRACES_PAGE_SIZE,
          pageToken
        });
        if (mine !== generation.current) {
          return;
        }
        setTraces(old => (pageToken ? [...old, ...page.traces] : page.traces));
        setNext(page.next_page_token);
        setError('');
      } catch (e) {
        if (mine === generation.current) {
          setError(describeError(e));
          if (!pageToken) {
            setTraces([]);
            setNext(undefined);
          }
        }
      } finally {
        if (mine === generation.current) {
          setLoading(false);
        }
      }
    },
    [ctx.api, experimentId, filter, order]
  );

  useEffect(() => {
    void load();
  }, [load]);

  const toggle = (id: string) =>
    setChecked(old =>
      old.includes(id) ? old.filter(x => x !== id) : [...old, id].slice(-2)
    );

  return (
    <div className="jp-mlops-TracesView">
      <form
        className="jp-mlops-TracesToolbar"
        onSubmit={e => {
          e.preventDefault();
          if (draft.trim() === filter) {
            void load();
          } else {
            setFilter(draft.trim());
          }
        }}
      >
        <input
          className="jp-mod-styled jp-mlops-TracesFilter"
          aria-label={trans.__('Trace filter')}
          placeholder={trans.__(
            "filter, e.g. trace.status = 'ERROR' AND span.type = 'TOOL'"
          )}
          value={draft}
          onChange={e => setDraft(e.target.value)}
        />
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Order')}
          value={order}
          onChange={e => setOrder(e.target.value)}
        >
          <option value="newest">{trans.__('Newest first')}</option>
          <option value="oldest">{trans.__('Oldest first')}</option>
          <option value="slowest">{trans.__('Slowest first')}</option>
          <option value="fastest">{trans.__('Fastest first')}</option>
        </select>
        <button type="submit" className="jp-mlops-Button jp-mod-styled">
          {trans.__('Search')}
        </button>
        <button
          type="button"
          className="jp-mlops-Button jp-mod-styled jp-mlops-TracesCompare"
          disabled={checked.length !== 2}
          title={trans.__('Check two traces to compare them')}
          onClick={() => ctx.compare(checked[0], checked[1])}
        >
          {trans.__('Compare')}
        </button>
        {loading ? (
          <span className="jp-mlops-Muted">{trans.__('Loading…')}</span>
        ) : null}
      </form>
      {error ? <div className="jp-mlops-Error">{error}</div> : null}
      <table className="jp-mlops-TracesTable">
        <thead>
          <tr>
            <th />
            <th>{trans.__('Trace')}</th>
            <th>{trans.__('Request')}</th>
            <th>{trans.__('Response')}</th>
            <th>{trans.__('Status')}</th>
            <th>{trans.__('Latency')}</th>
            <th>{trans.__('Tokens')}</th>
            <th>{trans.__('Time')}</th>
            <th>{trans.__('Tags')}</th>
            <th>{trans.__('Assessments')}</th>
          </tr>
        </thead>
        <tbody>
          {traces.map(info => {
            const time = timestampMs(info.request_time);
            return (
              <tr
                key={info.trace_id}
                className="jp-mlops-TraceRow"
                data-trace-id={info.trace_id}
                onClick={() => ctx.openTrace(info.trace_id)}
              >
                <td onClick={e => e.stopPropagation()}>
                  <input
                    type="checkbox"
                    aria-label={trans.__('Select %1', info.trace_id)}
                    checked={checked.includes(info.trace_id)}
                    onChange={() => toggle(info.trace_id)}
                  />
                </td>
                <td title={info.trace_id}>
                  {traceName(info) || info.trace_id.slice(0, 11)}
                </td>
                <td
                  className="jp-mlops-TracePreview"
                  title={info.request_preview}
                >
                  {previewText(info.request_preview, 120)}
                </td>
                <td
                  className="jp-mlops-TracePreview"
                  title={info.response_preview}
                >
                  {previewText(info.response_preview, 120)}
                </td>
                <td>
                  <StateBadge state={info.state} />
                </td>
                <td className="jp-mlops-TraceNum">
                  {formatLatency(durationMs(info.execution_duration))}
                </td>
                <td className="jp-mlops-TraceNum jp-mlops-TraceTokens">
                  {tokenUsage(info) ?? ''}
                </td>
                <td>{time !== null ? new Date(time).toLocaleString() : ''}</td>
                <td>
                  {userTags(info).map(([k, v]) => (
                    <span key={k} className="jp-mlops-TraceChip">
                      {k}={v}
                    </span>
                  ))}
                </td>
                <td>
                  {validAssessments(info).map((a, i) => (
                    <span
                      key={a.assessment_id ?? i}
                      className="jp-mlops-TraceChip jp-mlops-AssessmentChip"
                      title={a.rationale}
                    >
                      {a.assessment_name}: {valueText(assessmentValue(a))}
                    </span>
                  ))}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!traces.length && !loading && !error ? (
        <div className="jp-mlops-Muted jp-mlops-TracesEmpty">
          {filter
            ? trans.__('No trace matches the filter.')
            : trans.__(
                'No traces yet: decorate a function with @mlops.trace or @mlflow.trace and call it.'
              )}
        </div>
      ) : null}
      {next ? (
        <button
          className="jp-mlops-Button jp-mod-styled jp-mlops-TracesMore"
          disabled={loading}
          onClick={() => void load(next)}
        >
          {trans.__('Load more')}
        </button>
      ) : null}
    </div>
  );
}

/** The Traces tab of an experiment. */
export class TracesWidget extends MainAreaWidget<ReactWidget> {
  constructor(
    experimentId: string,
    experimentName: string,
    ctx: ITracesViewContext,
    filter = ''
  ) {
    const content = ReactWidget.create(
      <TracesTable
        experimentId={experimentId}
        ctx={ctx}
        initialFilter={filter}
      />
    );
    content.addClass('jp-mlops-DetailContent');
    super({ content });
    this.experimentId = experimentId;
    this.id = `jupyter-mlops-traces-${experimentId}`;
    this.addClass('jp-mlops-Traces');
    this.title.label = ctx.trans.__('Traces: %1', experimentName);
    this.title.caption = ctx.trans.__('Traces of experiment %1', experimentId);
    this.title.icon = mlopsIcon;
    this.title.closable = true;
  }

  readonly experimentId: string;
}
