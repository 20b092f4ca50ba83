/**
 * Two traces side by side: their span trees aligned by name path, each
 * side's latency as a bar on a shared scale, and the difference (slower in
 * the error colour, faster in the success colour). A row selects the span on
 * both sides below.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useMemo, useState } from 'react';

import { mlopsIcon } from '../icons';
import { alignTraces, IAlignedRow } from './align';
import { durationMs, formatDiff, formatLatency, traceName } from './data';
import { spanTypeClass } from './spans';
import {
  ITraceViewContext,
  SpanPane,
  StateBadge,
  useTrace
} from './TraceDetail';

function Bar(props: { ms: number | null; max: number }): JSX.Element {
  if (props.ms === null) {
    return <span className="jp-mlops-Muted">—</span>;
  }
  const width = props.max > 0 ? (props.ms / props.max) * 100 : 0;
  return (
    <span className="jp-mlops-CompareBar-track">
      <span
        className="jp-mlops-CompareBar"
        style={{ width: `max(2px, ${width}%)` }}
      />
      <span className="jp-mlops-CompareBar-ms">{formatLatency(props.ms)}</span>
    </span>
  );
}

function CompareBody(props: {
  left: string;
  right: string;
  ctx: ITraceViewContext;
}): JSX.Element {
  const { ctx } = props;
  const { trans } = ctx;
  const a = useTrace(ctx.api, props.left);
  const b = useTrace(ctx.api, props.right);
  const rows = useMemo<IAlignedRow[]>(
    () => (a.trace && b.trace ? alignTraces(a.trace.spans, b.trace.spans) : []),
    [a.trace, b.trace]
  );
  const [selected, setSelected] = useState<string | null>(null);
  if (a.error || b.error) {
    return <div className="jp-mlops-Error">{a.error || b.error}</div>;
  }
  if (!a.trace || !b.trace) {
    return <div className="jp-mlops-Muted">{trans.__('Loading traces…')}</div>;
  }
  const max = Math.max(
    0,
    ...rows.map(r => Math.max(r.leftMs ?? 0, r.rightMs ?? 0))
  );
  const row = rows.find(r => r.path === selected) ?? null;
  const startOf = (spans: { startNs: number }[]) =>
    Math.min(...spans.map(s => s.startNs));
  const head = (t: NonNullable<typeof a.trace>) => (
    <th>
      {traceName(t.info) || t.info.trace_id.slice(0, 11)}{' '}
      <StateBadge state={t.info.state} />{' '}
      {formatLatency(durationMs(t.info.execution_duration))}
      <div className="jp-mlops-Muted">
        <code>{t.info.trace_id}</code>
      </div>
    </th>
  );
  return (
    <div className="jp-mlops-TraceCompare">
      <table className="jp-mlops-CompareTable">
        <thead>
          <tr>
            <th>{trans.__('Span')}</th>
            {head(a.trace)}
            {head(b.trace)}
            <th>{trans.__('Difference')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(r => {
            const diffClass =
              r.diffMs === null
                ? ''
                : r.diffMs > 0
                  ? 'jp-mlops-Slower'
                  : r.diffMs < 0
                    ? 'jp-mlops-Faster'
                    : '';
            const span = r.left ?? r.right;
            return (
              <tr
                key={r.path}
                className={`jp-mlops-CompareRow${
                  selected === r.path ? ' jp-mod-selected' : ''
                }${r.left && r.right ? '' : ' jp-mlops-CompareRow-onlyOne'}`}
                data-path={r.path}
                onClick={() => setSelected(r.path)}
              >
                <td style={{ paddingLeft: `${r.depth * 14 + 4}px` }}>
                  {span ? (
                    <span
                      className={`jp-mlops-SpanTypeBadge ${spanTypeClass(
                        span.type
                      )}`}
                    >
                      {span.type}
                    </span>
                  ) : null}{' '}
                  {r.name}
                </td>
                <td>
                  <Bar ms={r.leftMs} max={max} />
                </td>
                <td>
                  <Bar ms={r.rightMs} max={max} />
                </td>
                <td
                  className={`jp-mlops-TraceNum jp-mlops-CompareDiff ${diffClass}`}
                >
                  {r.diffMs === null
                    ? r.left
                      ? trans.__('only left')
                      : trans.__('only right')
                    : formatDiff(r.diffMs)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {row ? (
        <div className="jp-mlops-CompareSpans">
          {row.left ? (
            <SpanPane
              span={row.left}
              startNs={startOf(a.trace.spans)}
              trans={trans}
            />
          ) : (
            <div className="jp-mlops-Muted">
              {trans.__('Not in this trace')}
            </div>
          )}
          {row.right ? (
            <SpanPane
              span={row.right}
              startNs={startOf(b.trace.spans)}
              trans={trans}
            />
          ) : (
            <div className="jp-mlops-Muted">
              {trans.__('Not in this trace')}
            </div>
          )}
        </div>
      ) : null}
    </div>
  );
}

/** The comparison of two traces in the main area. */
export class TraceCompareWidget extends MainAreaWidget<ReactWidget> {
  constructor(left: string, right: string, ctx: ITraceViewContext) {
    const content = ReactWidget.create(
      <CompareBody left={left} right={right} ctx={ctx} />
    );
    content.addClass('jp-mlops-DetailContent');
    super({ content });
    this.key = TraceCompareWidget.key(left, right);
    this.id = `jupyter-mlops-trace-compare-${left}-${right}`;
    this.addClass('jp-mlops-TraceCompareWidget');
    this.title.label = ctx.trans.__(
      'Compare %1 / %2',
      left.slice(3, 9),
      right.slice(3, 9)
    );
    this.title.icon = mlopsIcon;
    this.title.closable = true;
  }

  /** The tab's key: the two ids in order. */
  static key(left: string, right: string): string {
    return `${left}|${right}`;
  }

  readonly key: string;
}
