/**
 * Compare (main area): several runs' params and metrics side by side,
 * overlaid metric charts, parallel coordinates and a scatter plot.
 *
 * Runs may hold thousands of keys (per-layer metrics, swept configs): one
 * key search narrows every part, and each part renders a bounded number of
 * rows, charts and choices (more on request), so the view stays interactive;
 * a chart's series are fetched only when it is shown.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useMemo, useRef, useState } from 'react';

import { describeError, IRun, MLOpsApiError, MLOpsClient } from '../api';
import {
  AxisScale,
  axisIds,
  boundedChoices,
  buildAxis,
  canLog,
  compareRows,
  IChartOptions,
  ICompareRow,
  ILineSeries,
  keyMatches,
  metricMap,
  paramMap,
  ParallelCoordinates,
  runColorOf,
  runValue,
  ScatterPlot,
  seriesToColumns
} from '../charts';
import { formatMetricValue } from '../format';
import { mlopsIcon } from '../icons';
import { runName } from '../rows';
import { mapLimit } from '../util';
import { IViewContext, MetricCharts } from './RunDetail';
import { MAX_POINTS } from './runDetailModel';
import { DetailPending } from './states';
import { CompareDatasets } from './Datasets';

/** Requests in flight at once (browsers allow ~6 per host). */
const CONCURRENCY = 6;

/** Runs per bulk series request (the server takes up to 200). */
const BULK_RUNS = 100;

/** Rows of each side-by-side table shown at first (and added by "more"). */
export const COMPARE_ROWS = 100;

/** Metric charts shown at first (and added by "more"). */
export const COMPARE_CHARTS = 12;

/** Series of every run for one metric key, in bulk requests. */
async function loadKey(
  client: MLOpsClient,
  runs: readonly IRun[],
  key: string,
  options: IChartOptions
): Promise<ILineSeries[]> {
  const withKey = runs
    .map(run => ({ run }))
    .filter(({ run }) => run.data?.metrics?.some(m => m.key === key));
  // A few requests in parallel (the server reads series on its threads),
  // each for up to BULK_RUNS runs.
  const size = Math.min(BULK_RUNS, Math.max(5, Math.ceil(withKey.length / 4)));
  const chunks: (typeof withKey)[] = [];
  for (let i = 0; i < withKey.length; i += size) {
    chunks.push(withKey.slice(i, i + size));
  }
  const answers = await mapLimit(chunks, CONCURRENCY, chunk =>
    client.getMetricSeriesBulk({
      run_ids: chunk.map(c => c.run.info.run_id),
      metric_key: key,
      max_points: MAX_POINTS,
      x_axis: options.xAxis === 'step' ? 'step' : 'timestamp'
    })
  );
  const out: ILineSeries[] = [];
  chunks.forEach((chunk, c) => {
    chunk.forEach(({ run }, i) => {
      const cols = seriesToColumns(
        answers[c].series[i]?.points ?? [],
        options.xAxis
      );
      out.push({
        label: runName(run),
        color: runColorOf(run.info.run_id),
        x: cols.x,
        y: cols.value
      });
    });
  });
  return out;
}

/** The runs of a compare, and the ids no run was found for. */
export interface ICompareRuns {
  /** The runs found, in the order asked. */
  runs: IRun[];
  /** Ids the server has no run for (purged, or a mistyped link). */
  missing: string[];
}

/**
 * The runs, in the order of `runIds`: one `runs/search` per 100 ids
 * (`attributes.run_id IN (…)` over the active experiments) instead of one
 * request per run; ids the search misses are fetched one by one (deleted
 * runs). An id with no run at all is reported, not fatal: the other runs are
 * still compared (a compare tab restored after a run was purged, a link).
 */
export async function loadRuns(
  client: MLOpsClient,
  runIds: readonly string[]
): Promise<ICompareRuns> {
  const found = new Map<string, IRun>();
  try {
    const experiments = await client.listExperiments({
      view_type: 'ACTIVE_ONLY'
    });
    const experimentIds = experiments.map(e => e.experiment_id);
    const chunks: string[][] = [];
    for (let i = 0; i < runIds.length; i += 100) {
      chunks.push(runIds.slice(i, i + 100));
    }
    if (experimentIds.length) {
      await mapLimit(chunks, CONCURRENCY, async ids => {
        const runs = await client.listRuns(
          {
            experiment_ids: experimentIds,
            filter: `attributes.run_id IN (${ids.map(id => `'${id.replace(/'/g, "''")}'`).join(', ')})`
          },
          ids.length
        );
        runs.forEach(r => found.set(r.info.run_id, r));
      });
    }
  } catch {
    // Fall back to one request per run below.
  }
  const rest = runIds.filter(id => !found.has(id));
  const fetched = await mapLimit(rest, CONCURRENCY, id =>
    client.getRun(id).catch(e => {
      if (e instanceof MLOpsApiError && e.isNotFound) {
        return null;
      }
      throw e;
    })
  );
  fetched.forEach(r => r && found.set(r.info.run_id, r));
  return {
    runs: runIds.map(id => found.get(id)).filter((r): r is IRun => !!r),
    missing: runIds.filter(id => !found.has(id))
  };
}

/** A side-by-side table: at most `limit` rows, and a button for more. */
function SideBySide(props: {
  title: string;
  rows: ICompareRow[];
  runs: readonly IRun[];
  diffOnly: boolean;
  numeric: boolean;
  className: string;
  empty: string;
  limit: number;
  onMore: () => void;
  moreLabel: (n: number) => string;
}): JSX.Element {
  const rows = props.diffOnly ? props.rows.filter(r => r.differs) : props.rows;
  const shown = rows.slice(0, props.limit);
  return (
    <section className={`jp-mlops-Section ${props.className}`}>
      <h3 className="jp-mlops-Section-title">{props.title}</h3>
      {rows.length ? (
        <div className="jp-mlops-TableScroll">
          <table className="jp-mlops-KV jp-mlops-CompareTable">
            <thead>
              <tr>
                <th />
                {props.runs.map((r, i) => (
                  <th key={r.info.run_id} scope="col">
                    <span
                      className="jp-mlops-Swatch"
                      style={{ background: runColorOf(r.info.run_id) }}
                    />
                    {runName(r)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {shown.map(row => (
                <tr
                  key={row.key}
                  data-key={row.key}
                  className={row.differs ? 'jp-mlops-mod-differs' : ''}
                >
                  <th scope="row">{row.key}</th>
                  {row.values.map((v, i) => (
                    <td key={i} title={v === undefined ? undefined : String(v)}>
                      {v === undefined
                        ? '—'
                        : props.numeric
                          ? formatMetricValue(v)
                          : String(v)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <div className="jp-mlops-Muted">{props.empty}</div>
      )}
      {rows.length > shown.length ? (
        <button
          type="button"
          className="jp-mlops-Button jp-mlops-CompareMore"
          onClick={props.onMore}
        >
          {props.moreLabel(rows.length - shown.length)}
        </button>
      ) : null}
    </section>
  );
}

/** The compare view. */
export function CompareView(props: {
  runIds: string[];
  ctx: IViewContext;
}): JSX.Element {
  const { ctx } = props;
  const { client, trans } = ctx;
  const [runs, setRuns] = useState<IRun[] | null>(null);
  const [missing, setMissing] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [diffOnly, setDiffOnly] = useState(false);
  const [options, setOptions] = useState<IChartOptions>(ctx.chartDefaults());
  const [charts, setCharts] = useState<Map<string, ILineSeries[]>>(new Map());
  const [chosen, setChosen] = useState<string[] | null>(null);
  const [scatterX, setScatterX] = useState<string>('');
  const [scatterY, setScatterY] = useState<string>('');
  // Axes drawn on a log scale, by id: shared by parallel coordinates and scatter.
  const [logIds, setLogIds] = useState<ReadonlySet<string>>(new Set());
  // The key search over every part, and how much of each part is shown.
  const [search, setSearch] = useState('');
  const [rowLimit, setRowLimit] = useState(COMPARE_ROWS);
  const [chartLimit, setChartLimit] = useState(COMPARE_CHARTS);

  useEffect(() => {
    let live = true;
    loadRuns(client, props.runIds)
      .then(r => {
        if (live) {
          setMissing(r.missing);
          setRuns(r.runs);
        }
      })
      .catch(e => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [props.runIds.join(',')]);

  // Each run's keys as maps, once (runs may hold thousands of keys).
  const params = useMemo(() => (runs ?? []).map(paramMap), [runs]);
  const metrics = useMemo(() => (runs ?? []).map(metricMap), [runs]);
  const paramRows = useMemo(() => compareRows(params), [params]);
  const metricRows = useMemo(() => compareRows(metrics), [metrics]);
  const ids = useMemo(() => axisIds(runs ?? []), [runs]);
  const metricKeys = useMemo(() => metricRows.map(r => r.key), [metricRows]);
  const matching = (rows: ICompareRow[]) =>
    search ? rows.filter(r => keyMatches(r.key, search)) : rows;
  const chartKeys = metricKeys
    .filter(k => keyMatches(k, search))
    .slice(0, chartLimit);
  const moreCharts =
    metricKeys.filter(k => keyMatches(k, search)).length - chartKeys.length;

  // Series are fetched for the charts shown only, one key after another,
  // each drawn as soon as it is in; a new x axis (or runs) starts over.
  const generation = useRef(0);
  const requested = useRef(new Set<string>());
  useEffect(() => {
    generation.current++;
    requested.current = new Set();
    setCharts(new Map());
  }, [runs, options.xAxis]);
  useEffect(() => () => void generation.current++, []);
  useEffect(() => {
    if (!runs) {
      return;
    }
    const mine = generation.current;
    const wanted = chartKeys.filter(k => !requested.current.has(k));
    wanted.forEach(k => requested.current.add(k));
    void (async () => {
      for (const key of wanted) {
        if (generation.current !== mine) {
          return;
        }
        try {
          const series = await loadKey(client, runs, key, options);
          if (generation.current !== mine) {
            return;
          }
          setCharts(prev => new Map(prev).set(key, series));
        } catch (e) {
          if (generation.current === mine) {
            setError(describeError(e));
          }
          return;
        }
      }
    })();
  }, [runs, options.xAxis, chartKeys.join('\n')]);

  if (!runs) {
    return (
      <DetailPending
        error={error}
        loading={trans.__('Loading %1 runs…', props.runIds.length)}
      />
    );
  }

  const labels = runs.map(runName);
  const colors = runs.map(r => runColorOf(r.info.run_id));
  // Default axes: params that differ, then up to four metrics.
  const defaultAxes = [
    ...paramRows
      .filter(r => r.differs)
      .map(r => `params.${r.key}`)
      .slice(0, 6),
    ...metricKeys.map(k => `metrics.${k}`).slice(0, 4)
  ];
  const axesIds = (chosen ?? defaultAxes).filter(id => ids.includes(id));
  const rawOf = (id: string): (string | number | undefined)[] =>
    id.startsWith('params.')
      ? params.map(m => m.get(id.slice(7)))
      : id.startsWith('metrics.')
        ? metrics.map(m => m.get(id.slice(8)))
        : runs.map(r => runValue(r, id));
  const scaleOf = (id: string): AxisScale =>
    logIds.has(id) ? 'log' : 'linear';
  const axes = axesIds.map(id => buildAxis(id, rawOf(id), scaleOf(id)));
  const toggleLog = (id: string, on: boolean) => {
    const next = new Set(logIds);
    if (on) {
      next.add(id);
    } else {
      next.delete(id);
    }
    setLogIds(next);
  };
  /** A "log" checkbox for one axis; disabled (with why) when it cannot be log. */
  const logToggle = (id: string, label: string) => {
    const numeric = canLog(rawOf(id));
    return (
      <label
        key={id}
        className="jp-mlops-LogToggle"
        title={
          numeric
            ? trans.__('Log scale for %1', id)
            : trans.__('A log scale needs values above zero')
        }
      >
        <input
          type="checkbox"
          className="jp-mlops-LogAxis"
          data-axis={id}
          disabled={!numeric}
          checked={numeric && logIds.has(id)}
          onChange={e => toggleLog(id, e.target.checked)}
        />{' '}
        {label}
      </label>
    );
  };
  const xId = scatterX || axesIds[0] || ids[0] || '';
  const yId = scatterY || (metricKeys.length ? `metrics.${metricKeys[0]}` : '');
  const axisChoices = boundedChoices(ids, axesIds, search);
  const xChoices = boundedChoices(ids, [xId], search).ids;
  const yChoices = boundedChoices(
    ids.filter(id => id.startsWith('metrics.')),
    [yId],
    search
  ).ids;
  const moreRows = (n: number) => trans.__('Show %1 more', n);
  const toggleAxis = (id: string) => {
    const current = chosen ?? defaultAxes;
    setChosen(
      current.includes(id) ? current.filter(a => a !== id) : [...current, id]
    );
  };

  return (
    <div className="jp-mlops-Detail jp-mlops-Compare">
      <header className="jp-mlops-Detail-header">
        <h2>{trans.__('Comparing %1 runs', runs.length)}</h2>
        <label className="jp-mlops-DiffToggle">
          <input
            type="checkbox"
            className="jp-mlops-DiffOnly"
            checked={diffOnly}
            onChange={e => setDiffOnly(e.target.checked)}
          />{' '}
          {trans.__('Differences only')}
        </label>
        <input
          className="jp-mlops-Input jp-mlops-CompareSearch"
          type="search"
          placeholder={trans.__('Search keys (%1)', ids.length)}
          aria-label={trans.__('Search keys')}
          value={search}
          onChange={e => {
            setSearch(e.target.value);
            setRowLimit(COMPARE_ROWS);
            setChartLimit(COMPARE_CHARTS);
          }}
        />
        {error ? (
          <span className="jp-mlops-Error" role="alert">
            {error}
          </span>
        ) : null}
      </header>
      {missing.length ? (
        <div className="jp-mlops-Muted jp-mlops-CompareMissing" role="status">
          {trans._n(
            'No run %2 (not compared)',
            '%1 runs not found (not compared): %2',
            missing.length,
            missing.join(', ')
          )}
        </div>
      ) : null}
      <SideBySide
        title={trans.__('Parameters')}
        rows={matching(paramRows)}
        runs={runs}
        diffOnly={diffOnly}
        numeric={false}
        className="jp-mlops-CompareParams"
        empty={
          diffOnly ? trans.__('No differences') : trans.__('No parameters')
        }
        limit={rowLimit}
        onMore={() => setRowLimit(rowLimit + COMPARE_ROWS * 5)}
        moreLabel={moreRows}
      />
      <SideBySide
        title={trans.__('Metrics (latest)')}
        rows={matching(metricRows)}
        runs={runs}
        diffOnly={diffOnly}
        numeric={true}
        className="jp-mlops-CompareMetrics"
        empty={diffOnly ? trans.__('No differences') : trans.__('No metrics')}
        limit={rowLimit}
        onMore={() => setRowLimit(rowLimit + COMPARE_ROWS * 5)}
        moreLabel={moreRows}
      />
      <CompareDatasets
        runs={runs}
        runLabel={(r, i) => (
          <>
            <span
              className="jp-mlops-Swatch"
              style={{ background: runColorOf(r.info.run_id) }}
            />
            {runName(r)}
          </>
        )}
        trans={trans}
      />
      <section className="jp-mlops-Section">
        <h3 className="jp-mlops-Section-title">{trans.__('Charts')}</h3>
        <MetricCharts
          keys={chartKeys}
          seriesOf={key => charts.get(key)}
          options={options}
          onOptions={setOptions}
          several={true}
          trans={trans}
        />
        {moreCharts > 0 ? (
          <button
            type="button"
            className="jp-mlops-Button jp-mlops-CompareMoreCharts"
            onClick={() => setChartLimit(chartLimit + COMPARE_CHARTS)}
          >
            {trans.__('Show more charts (%1 not shown)', moreCharts)}
          </button>
        ) : null}
      </section>
      {ids.length >= 2 ? (
        <section className="jp-mlops-Section">
          <h3 className="jp-mlops-Section-title">
            {trans.__('Parallel coordinates')}
          </h3>
          <details className="jp-mlops-AxisChooser">
            <summary>{trans.__('Axes (%1)', axesIds.length)}</summary>
            {axisChoices.ids.map(id => (
              <label key={id} data-axis={id}>
                <input
                  type="checkbox"
                  checked={axesIds.includes(id)}
                  onChange={() => toggleAxis(id)}
                />{' '}
                {id}
              </label>
            ))}
            {axisChoices.more ? (
              <span className="jp-mlops-Muted">
                {trans.__(
                  '%1 more keys: search to narrow the list',
                  axisChoices.more
                )}
              </span>
            ) : null}
          </details>
          {axes.some(a => a.kind === 'numeric') ? (
            <div className="jp-mlops-ChartOptions jp-mlops-LogToggles">
              <span>{trans.__('Log scale:')}</span>
              {axes
                .filter(a => a.kind === 'numeric')
                .map(a => logToggle(a.id, a.label))}
            </div>
          ) : null}
          {axes.length >= 2 ? (
            <ParallelCoordinates axes={axes} colors={colors} labels={labels} />
          ) : (
            <div className="jp-mlops-Muted">
              {trans.__('Choose at least two axes')}
            </div>
          )}
          <h3 className="jp-mlops-Section-title">{trans.__('Scatter plot')}</h3>
          <div className="jp-mlops-ChartOptions">
            <label>
              {trans.__('X')}{' '}
              <select
                className="jp-mlops-ScatterX"
                value={xId}
                onChange={e => setScatterX(e.target.value)}
              >
                {xChoices.map(id => (
                  <option key={id} value={id}>
                    {id}
                  </option>
                ))}
              </select>
            </label>
            {xId ? logToggle(xId, trans.__('log X')) : null}
            <label>
              {trans.__('Y')}{' '}
              <select value={yId} onChange={e => setScatterY(e.target.value)}>
                {yChoices.map(id => (
                  <option key={id} value={id}>
                    {id}
                  </option>
                ))}
              </select>
            </label>
            {yId ? logToggle(yId, trans.__('log Y')) : null}
          </div>
          {xId && yId ? (
            <ScatterPlot
              x={buildAxis(xId, rawOf(xId), scaleOf(xId))}
              y={buildAxis(yId, rawOf(yId), scaleOf(yId))}
              colors={colors}
              labels={labels}
            />
          ) : null}
          <ul className="jp-mlops-Legend">
            {runs.map((r, i) => (
              <li key={r.info.run_id}>
                <span
                  className="jp-mlops-Swatch"
                  style={{ background: colors[i] }}
                />
                <button
                  className="jp-mlops-LinkButton"
                  onClick={() => ctx.openRun(r.info.run_id)}
                >
                  {labels[i]}
                </button>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </div>
  );
}

/** The compare main-area widget. */
export class CompareWidget extends MainAreaWidget<ReactWidget> {
  /** The runs compared, in order. */
  readonly runIds: readonly string[];

  constructor(runIds: string[], ctx: IViewContext) {
    const content = ReactWidget.create(
      <CompareView runIds={runIds} ctx={ctx} />
    );
    content.addClass('jp-mlops-DetailContent');
    super({ content });
    this.runIds = [...runIds];
    this.id = `jupyter-mlops-compare-${Date.now().toString(36)}`;
    this.addClass('jp-mlops-CompareWidget');
    this.title.label = ctx.trans.__('Compare %1 runs', runIds.length);
    this.title.icon = mlopsIcon;
    this.title.closable = true;
  }
}
