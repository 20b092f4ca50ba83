/**
 * The runs table of the MLOps sidebar: the selected experiment's runs in a
 * windowed table (only visible rows are in the DOM; their pages are read as
 * they scroll into view), sorted and filtered by the server, child runs under
 * their parent, with ticks for multi-selection and bulk actions.
 */
import type { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useMemo, useRef, useState } from 'react';

import { IRun } from '../api/types';
import { axisIds, boundedChoices, runColorOf } from '../charts/compare';
import { formatDateTime, formatMetricValue } from '../format';
import { RunsModel } from '../model';
import {
  BASE_COLUMNS,
  IRunRow,
  keyValue,
  runToRow,
  runKey,
  startsGroup,
  visibleRange
} from '../rows';
import { orderKey } from '../runPages';
import { KeyPicker } from './KeyPicker';
import { pendingList, Placeholder, StaleBanner } from './states';

/** Row height in px (CSS `.jp-mlops-RunRow` matches it). */
export const ROW_HEIGHT = 26;

/** What the table asks of the application. */
export interface IRunsActions {
  open: (runIds: string[]) => void;
  compare: (runIds: string[]) => void;
  remove: (runIds: string[]) => void;
  addTag: (runIds: string[]) => void;
  /** Persist the chosen param/metric columns. */
  setColumns: (columns: string[]) => void;
  /** Open the experiment's full runs table in the main area (sidebar). */
  openTable?: (experimentId: string) => void;
}

/** Built-in columns of the compact sidebar list. */
export const SIDEBAR_COLUMNS = ['name', 'status', 'started', 'duration'];

/** Default widths (px) of the main-area table's columns. */
export function defaultWidth(column: string): number {
  switch (column) {
    case 'name':
      return 220;
    case 'status':
      return 96;
    case 'started':
      return 130;
    case 'duration':
      return 84;
    case 'user':
      return 110;
    case 'source':
      return 150;
  }
  return 120;
}

/** Width of the tick column, px (the pinned name column starts after it). */
const CHECK_WIDTH = 32;

/** Props of `RunsTable`. */
export interface IRunsTableProps {
  model: RunsModel;
  trans: TranslationBundle;
  /** Clock for durations of running runs; defaults to `Date.now()`. */
  now?: number;
  actions?: IRunsActions;
  /** Chosen `params.*` / `metrics.*` / `tags.*` columns. */
  columns?: readonly string[];
  /**
   * The main-area table: every built-in column, a pinned name column,
   * resizable columns, run colours, the key picker and grouping.
   */
  wide?: boolean;
}

/** Header labels of the built-in columns. */
function baseLabel(trans: TranslationBundle, column: string): string {
  switch (column) {
    case 'name':
      return trans.__('Name');
    case 'status':
      return trans.__('Status');
    case 'started':
      return trans.__('Started');
    case 'duration':
      return trans.__('Duration');
    case 'user':
      return trans.__('User');
    case 'source':
      return trans.__('Source');
  }
  return column;
}

/** The filter box: applies on Enter, shows the server's error inline. */
function FilterBox(props: {
  model: RunsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  const [text, setText] = useState(model.filter);
  // A filter set elsewhere ("Show runs of this notebook") shows here too.
  useEffect(() => setText(model.filter), [model.filter]);
  const error = model.filterError;
  return (
    <form
      className="jp-mlops-Filter"
      onSubmit={e => {
        e.preventDefault();
        void model.setFilter(text);
      }}
    >
      <input
        className={
          'jp-mlops-Input jp-mlops-Filter-input' +
          (error ? ' jp-mod-error' : '')
        }
        type="search"
        placeholder={trans.__(
          "Filter: metrics.acc > 0.9 and params.lr = '0.01'"
        )}
        aria-label={trans.__('Filter runs')}
        aria-invalid={!!error}
        value={text}
        onChange={e => {
          setText(e.target.value);
          if (!e.target.value && model.filter) {
            void model.setFilter('');
          }
        }}
      />
      {error ? (
        <div className="jp-mlops-Filter-error" role="alert">
          {error}
        </div>
      ) : null}
    </form>
  );
}

/** Table of runs. */
export function RunsTable(props: IRunsTableProps): JSX.Element {
  const { model, trans, actions } = props;
  const experiment = model.selectedExperiment;
  const state = model.runsState;
  const retry = () => void model.refresh();
  const now = props.now ?? Date.now();
  const sort = model.sort;
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const scroller = useRef<HTMLDivElement>(null);
  const columns = props.columns ?? [];

  useEffect(() => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    const observer = new ResizeObserver(() =>
      setViewport(node.clientHeight || 600)
    );
    observer.observe(node);
    return () => observer.disconnect();
  });

  const runs = model.runs;
  // The compact list's column chooser lists the loaded runs' keys only while
  // open, and a bounded number of them (wide runs hold thousands).
  const [chooserOpen, setChooserOpen] = useState(false);
  const available = useMemo(
    () =>
      chooserOpen && !props.wide
        ? boundedChoices(axisIds(runs), columns, '')
        : { ids: [], more: 0 },
    [runs, chooserOpen, props.wide, columns.join('\n')]
  );
  const rowCount = model.rowCount;
  const [first, end] = visibleRange(scrollTop, viewport, ROW_HEIGHT, rowCount);
  // Rows scrolled into view are read from the server (the model knows which
  // pages it has).
  useEffect(() => {
    model.setViewport(first, end);
  }, [model, first, end, rowCount]);

  if (!experiment) {
    return model.experiments.length ? (
      <Placeholder
        kind="empty"
        title={trans.__('Select an experiment to see its runs')}
      />
    ) : (
      <Placeholder kind="empty" title={trans.__('No runs yet')} />
    );
  }

  const checked = model.checkedRunIds;
  const checkedSet = new Set(checked);
  const wide = !!props.wide;
  const allColumns = [...(wide ? BASE_COLUMNS : SIDEBAR_COLUMNS), ...columns];
  const widths = model.columnWidths;
  const widthOf = (column: string) => widths[column] ?? defaultWidth(column);
  const groupBy = wide ? model.groupBy : null;
  const pending =
    rowCount === 0 && !model.filterError
      ? pendingList({
          state,
          error: model.runsError,
          errorTitle: trans.__('Could not load runs'),
          loadingTitle: trans.__('Loading runs…'),
          onRetry: retry,
          trans
        })
      : null;
  let body: JSX.Element;
  if (pending) {
    body = pending;
  } else if (model.filterError) {
    // No rows of an earlier filter under the error (the filter box shows it).
    body = (
      <Placeholder
        kind="empty"
        title={trans.__('Fix the filter to see runs')}
      />
    );
  } else if (rowCount === 0 && model.filter) {
    body = (
      <Placeholder kind="empty" title={trans.__('No runs match the filter')} />
    );
  } else if (rowCount === 0) {
    body = (
      <Placeholder
        kind="empty"
        title={trans.__('No runs in this experiment yet')}
      >
        {trans.__('Start one from a notebook:')}
        <pre className="jp-mlops-Snippet">
          {'import jupyter_mlops as mlops\n' +
            `mlops.set_experiment(${JSON.stringify(experiment.name)})\n` +
            'with mlops.start_run():\n' +
            '    mlops.log_metric("loss", 0.5)'}
        </pre>
      </Placeholder>
    );
  } else {
    const selected = model.selectedRunId;
    const headerCell = (column: string) => {
      const active = sort.column === column;
      const label = BASE_COLUMNS.includes(
        column as (typeof BASE_COLUMNS)[number]
      )
        ? baseLabel(trans, column)
        : column;
      const resize = wide ? (
        <span
          className="jp-mlops-ColResize"
          role="separator"
          aria-orientation="vertical"
          aria-label={trans.__('Resize column %1', label)}
          onClick={e => e.stopPropagation()}
          onPointerDown={e => {
            e.preventDefault();
            e.stopPropagation();
            const start = e.clientX;
            const from = widthOf(column);
            const handle = e.currentTarget;
            handle.setPointerCapture(e.pointerId);
            const move = (ev: PointerEvent) =>
              model.setColumnWidth(column, from + ev.clientX - start);
            const up = () => {
              handle.removeEventListener('pointermove', move);
              handle.removeEventListener('pointerup', up);
            };
            handle.addEventListener('pointermove', move);
            handle.addEventListener('pointerup', up);
          }}
        />
      ) : null;
      const pinned =
        wide && column === 'name'
          ? ' jp-mlops-Pinned jp-mlops-Pinned-name'
          : '';
      if (orderKey(column) === null) {
        return (
          <th
            key={column}
            scope="col"
            data-column={column}
            className={pinned.trim() || undefined}
          >
            {baseLabel(trans, column)}
            {resize}
          </th>
        );
      }
      return (
        <th
          key={column}
          scope="col"
          className={'jp-mlops-SortHeader' + pinned}
          data-column={column}
          aria-sort={
            active ? (sort.descending ? 'descending' : 'ascending') : 'none'
          }
          title={trans.__('Sort by %1', label)}
          onClick={() =>
            void model.setSort(
              active
                ? { column, descending: !sort.descending }
                : {
                    column,
                    // Newest, and the highest metric, first.
                    descending:
                      column === 'started' || column.startsWith('metrics.')
                  }
            )
          }
        >
          {BASE_COLUMNS.includes(column as (typeof BASE_COLUMNS)[number])
            ? baseLabel(trans, column)
            : column.replace(/^(params|metrics|tags)\./, '')}
          {active ? (sort.descending ? ' ▾' : ' ▴') : ''}
          {resize}
        </th>
      );
    };
    const cell = (
      row: IRunRow,
      run: IRun,
      column: string,
      depth: number,
      children: number
    ) => {
      switch (column) {
        case 'name':
          return (
            <td
              key={column}
              className={
                'jp-mlops-RunRow-name' +
                (wide ? ' jp-mlops-Pinned jp-mlops-Pinned-name' : '')
              }
              title={
                row.source
                  ? trans.__(
                      '%1\nid %2\nsource %3',
                      row.name,
                      row.runId,
                      row.source
                    )
                  : trans.__('%1\nid %2', row.name, row.runId)
              }
            >
              {children > 0 ? (
                <button
                  type="button"
                  className="jp-mlops-RunRow-toggle"
                  aria-expanded={!model.isCollapsed(row.runId)}
                  title={
                    model.isCollapsed(row.runId)
                      ? trans._n(
                          'Show %1 child run',
                          'Show %1 child runs',
                          children
                        )
                      : trans._n(
                          'Hide %1 child run',
                          'Hide %1 child runs',
                          children
                        )
                  }
                  onClick={e => {
                    e.stopPropagation();
                    model.toggleChildren(row.runId);
                  }}
                >
                  {model.isCollapsed(row.runId) ? '▸' : '▾'}
                </button>
              ) : null}
              {depth > 0 || row.parentRunId ? (
                <span
                  className={
                    'jp-mlops-RunRow-child' +
                    (depth > 0 ? ' jp-mlops-RunRow-nested' : '')
                  }
                  aria-hidden="true"
                >
                  ↳{' '}
                </span>
              ) : null}
              {wide ? (
                <span
                  className="jp-mlops-Swatch"
                  aria-hidden="true"
                  style={{ background: runColorOf(row.runId) }}
                />
              ) : null}
              {row.name}
            </td>
          );
        case 'status':
          return (
            <td key={column}>
              <span
                className={`jp-mlops-Status jp-mlops-Status-${row.status.toLowerCase()}`}
                title={trans.__(row.statusLabel)}
              >
                {trans.__(row.statusLabel)}
              </span>
            </td>
          );
        case 'started':
          return (
            <td
              key={column}
              className="jp-mlops-RunRow-time"
              title={row.startedTitle}
            >
              {row.started}
            </td>
          );
        case 'duration':
          return (
            <td key={column} className="jp-mlops-RunRow-duration">
              {row.duration}
            </td>
          );
        case 'user':
          return <td key={column}>{row.user}</td>;
        case 'source':
          return (
            <td key={column} title={row.source}>
              {row.source}
            </td>
          );
      }
      if (column.startsWith('params.') || column.startsWith('tags.')) {
        const v = keyValue(run, column);
        return (
          <td key={column} title={v === undefined ? undefined : String(v)}>
            {v ?? ''}
          </td>
        );
      }
      const m = runKey(run, 'metrics', column.slice(8));
      return (
        <td key={column} className="jp-mlops-RunRow-num">
          {m !== undefined ? formatMetricValue(m) : ''}
        </td>
      );
    };
    const allChecked =
      runs.length > 0 && runs.every(r => checkedSet.has(r.info.run_id));
    const shown: JSX.Element[] = [];
    for (let index = first; index < end; index++) {
      const ref = model.rowAt(index);
      if (!ref) {
        shown.push(
          <tr
            key={`loading-${index}`}
            className="jp-mlops-RunRow jp-mlops-RunRow-loading"
            aria-busy="true"
          >
            <td colSpan={allColumns.length + 1} className="jp-mlops-Muted">
              {trans.__('Loading…')}
            </td>
          </tr>
        );
        continue;
      }
      const { run, depth, children } = ref;
      const row = runToRow(run, now);
      if (groupBy && depth === 0) {
        let previous: IRun | null = null;
        for (let k = index - 1; k >= 0; k--) {
          const before = model.rowAt(k);
          if (!before || before.depth === 0) {
            previous = before?.run ?? null;
            break;
          }
        }
        if (startsGroup(run, previous, groupBy)) {
          const value = keyValue(run, groupBy);
          const count = model.groupCount(
            value === undefined ? undefined : String(value)
          );
          shown.push(
            <tr
              key={`group-${index}`}
              className="jp-mlops-GroupRow"
              data-group={value === undefined ? '' : String(value)}
            >
              <td colSpan={allColumns.length + 1}>
                <span className="jp-mlops-Pinned jp-mlops-GroupRow-label">
                  {value === undefined
                    ? trans.__('%1 not set', groupBy)
                    : `${groupBy} = ${value}`}
                  {count === null
                    ? ''
                    : ` · ${trans._n('%1 run', '%1 runs', count)}`}
                </span>
              </td>
            </tr>
          );
        }
      }
      shown.push(
        <tr
          key={row.runId}
          className={
            'jp-mlops-RunRow' +
            (row.runId === selected ? ' jp-mod-selected' : '') +
            (depth > 0 ? ' jp-mlops-RunRow-childRow' : '')
          }
          data-run-id={row.runId}
          data-experiment-id={run.info.experiment_id}
          data-status={row.status}
          data-depth={depth}
          aria-rowindex={index + 1}
          aria-level={depth + 1}
          aria-selected={row.runId === selected}
          tabIndex={0}
          onClick={() => model.selectRun(row.runId)}
          onDoubleClick={() => actions?.open([row.runId])}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              event.preventDefault();
              model.selectRun(row.runId);
              actions?.open([row.runId]);
            } else if (event.key === ' ') {
              event.preventDefault();
              model.toggleChecked(row.runId);
            } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
              // Move between rows as in the file browser (the selection follows).
              event.preventDefault();
              const down = event.key === 'ArrowDown';
              let next = down
                ? event.currentTarget.nextElementSibling
                : event.currentTarget.previousElementSibling;
              while (next && !(next as HTMLElement).dataset.runId) {
                next = down
                  ? next.nextElementSibling
                  : next.previousElementSibling;
              }
              if (next instanceof HTMLElement && next.dataset.runId) {
                next.focus();
                next.scrollIntoView({ block: 'nearest' });
                model.selectRun(next.dataset.runId);
              }
            }
          }}
        >
          <td
            className={
              'jp-mlops-RunRow-check' + (wide ? ' jp-mlops-Pinned' : '')
            }
            onClick={e => e.stopPropagation()}
          >
            <input
              type="checkbox"
              aria-label={trans.__('Select %1', row.name)}
              checked={checkedSet.has(row.runId)}
              onChange={e => model.toggleChecked(row.runId, e.target.checked)}
            />
          </td>
          {allColumns.map(c => cell(row, run, c, depth, children))}
        </tr>
      );
    }
    body = (
      <div
        className="jp-mlops-RunsScroll"
        ref={scroller}
        onScroll={e => setScrollTop((e.target as HTMLDivElement).scrollTop)}
      >
        <table
          className={
            'jp-mlops-RunsTable' + (wide ? ' jp-mlops-RunsTable-wide' : '')
          }
          aria-label={trans.__('Runs')}
          aria-rowcount={rowCount}
          style={
            wide
              ? {
                  width:
                    CHECK_WIDTH +
                    allColumns.reduce((sum, c) => sum + widthOf(c), 0)
                }
              : undefined
          }
        >
          {wide ? (
            <colgroup>
              <col style={{ width: CHECK_WIDTH }} />
              {allColumns.map(c => (
                <col key={c} style={{ width: widthOf(c) }} />
              ))}
            </colgroup>
          ) : null}
          <thead>
            <tr>
              <th
                scope="col"
                className={
                  'jp-mlops-RunRow-check' + (wide ? ' jp-mlops-Pinned' : '')
                }
              >
                <input
                  type="checkbox"
                  aria-label={trans.__('Select all runs')}
                  checked={allChecked}
                  onChange={() =>
                    model.setChecked(
                      allChecked ? [] : runs.map(r => r.info.run_id)
                    )
                  }
                />
              </th>
              {allColumns.map(headerCell)}
            </tr>
          </thead>
          <tbody>
            {first > 0 ? (
              <tr
                className="jp-mlops-Spacer"
                aria-hidden="true"
                style={{ height: first * ROW_HEIGHT }}
              />
            ) : null}
            {shown}
            {end < rowCount ? (
              <tr
                className="jp-mlops-Spacer"
                aria-hidden="true"
                style={{ height: (rowCount - end) * ROW_HEIGHT }}
              />
            ) : null}
          </tbody>
        </table>
      </div>
    );
  }

  const target = checked.length
    ? [...checked]
    : model.selectedRunId
      ? [model.selectedRunId]
      : [];
  const count = model.runCount;
  return (
    <div className="jp-mlops-RunsView">
      <div className="jp-mlops-RunsView-header">
        <span className="jp-mlops-RunsView-experiment" title={experiment.name}>
          {experiment.name}
        </span>
        <span className="jp-mlops-RunsView-count">
          {count === null || model.filterError
            ? ''
            : trans._n('%1 run', '%1 runs', count)}
        </span>
      </div>
      <FilterBox model={model} trans={trans} />
      {actions ? (
        <div className="jp-mlops-RunsActions">
          <button
            className="jp-mlops-Button jp-mlops-Action-open"
            disabled={!target.length}
            onClick={() => actions.open(target)}
          >
            {trans.__('Open')}
          </button>
          <button
            className="jp-mlops-Button jp-mlops-Action-compare"
            disabled={checked.length < 2}
            title={trans.__('Tick two or more runs to compare them')}
            onClick={() => actions.compare([...checked])}
          >
            {checked.length >= 2
              ? trans.__('Compare (%1)', checked.length)
              : trans.__('Compare')}
          </button>
          <button
            className="jp-mlops-Button jp-mlops-Action-tag"
            disabled={!target.length}
            onClick={() => actions.addTag(target)}
          >
            {trans.__('Tag')}
          </button>
          <button
            className="jp-mlops-Button jp-mlops-Action-delete"
            disabled={!target.length}
            onClick={() => actions.remove(target)}
          >
            {trans.__('Delete')}
          </button>
          {wide ? (
            <>
              <KeyPicker
                client={model.client}
                experimentId={experiment.experiment_id}
                trans={trans}
                className="jp-mlops-ColumnPicker"
                label={
                  columns.length
                    ? trans.__('Columns (%1)', columns.length)
                    : trans.__('Columns')
                }
                kinds={['metrics', 'params', 'tags']}
                chosen={columns}
                multiple={true}
                onChange={actions.setColumns}
              />
              <KeyPicker
                client={model.client}
                experimentId={experiment.experiment_id}
                trans={trans}
                className="jp-mlops-GroupPicker"
                label={
                  groupBy
                    ? trans.__('Grouped by %1', groupBy)
                    : trans.__('Group by')
                }
                kinds={['params', 'tags']}
                chosen={groupBy ? [groupBy] : []}
                multiple={false}
                onChange={chosen => void model.setGroupBy(chosen[0] ?? null)}
              />
            </>
          ) : actions.openTable ? (
            <button
              className="jp-mlops-Button jp-mlops-Action-table"
              title={trans.__('Open the runs table of %1', experiment.name)}
              onClick={() => actions.openTable!(experiment.experiment_id)}
            >
              {trans.__('Table')}
            </button>
          ) : null}
          {wide ? null : (
            <details
              className="jp-mlops-ColumnChooser"
              onToggle={e => setChooserOpen(e.currentTarget.open)}
            >
              <summary>{trans.__('Columns')}</summary>
              <div className="jp-mlops-ColumnChooser-list">
                {available.ids.length ? (
                  available.ids.map(c => (
                    <label key={c}>
                      <input
                        type="checkbox"
                        checked={columns.includes(c)}
                        onChange={e =>
                          actions.setColumns(
                            e.target.checked
                              ? [...columns, c]
                              : columns.filter(x => x !== c)
                          )
                        }
                      />{' '}
                      {c}
                    </label>
                  ))
                ) : (
                  <span className="jp-mlops-Muted">
                    {trans.__('No params or metrics yet')}
                  </span>
                )}
                {available.more ? (
                  <span className="jp-mlops-Muted">
                    {trans.__(
                      '%1 more keys: the runs table (Table) searches them all',
                      available.more
                    )}
                  </span>
                ) : null}
              </div>
            </details>
          )}
        </div>
      ) : null}
      {rowCount > 0 && state === 'error' && model.runsError ? (
        <StaleBanner
          message={trans.__('Could not refresh: %1', model.runsError)}
        />
      ) : null}
      <div className="jp-mlops-RunsView-body">{body}</div>
      {model.lastUpdated ? (
        <div className="jp-mlops-RunsView-footer">
          {trans.__('Updated %1', formatDateTime(model.lastUpdated).slice(11))}
        </div>
      ) : null}
    </div>
  );
}
