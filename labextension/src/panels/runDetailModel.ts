/**
 * `RunDetailModel`: the state behind one run's detail view, apart from the
 * widget. It reads the run, its child runs and its metric series, and polls
 * them with a `@lumino/polling` `Poll` while the run is active (and the
 * browser tab visible); views listen to `changed` and read the getters.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, IRun, MLOpsClient } from '../api';
import { ILineSeries, runColorOf, seriesToColumns, XAxisMode } from '../charts';
import { isActiveStatus } from '../format';
import { RunsModel } from '../model';
import { mapLimit } from '../util';

/** Most points per series requested from the server. */
export const MAX_POINTS = 1000;

/** Metric charts of a run drawn at first, and added by "more" (a wide run holds thousands). */
export const RUN_CHARTS = 12;

/** Series requests in flight at once. */
const SERIES_CONCURRENCY = 6;

/** A run's latest metrics in the order the view lists them (natural key order). */
export function sortedMetrics(
  run: IRun | null
): NonNullable<NonNullable<IRun['data']>['metrics']> {
  return [...(run?.data?.metrics ?? [])].sort((a, b) =>
    a.key.localeCompare(b.key, undefined, { numeric: true })
  );
}

/** Most child runs listed. */
export const MAX_CHILDREN = 200;

/** The run detail model. */
export class RunDetailModel implements IDisposable {
  constructor(options: RunDetailModel.IOptions) {
    this._client = options.client;
    this.runId = options.runId;
    this._refreshMs = options.refreshMs;
    this._xAxis = options.xAxis ?? 'step';
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: {
        interval: RunsModel.toInterval(this._refreshMs()),
        backoff: true,
        max: 60_000
      },
      name: `jupyter-mlops:run-${options.runId}`,
      // Nothing changes once the run has ended: the poll stands by.
      standby: () => (this._run !== null && !this.active) || 'when-hidden'
    });
  }

  /** The run's id. */
  readonly runId: string;

  /** Emitted after any change of the data or of its loading state. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The run, or null before it is in. */
  get run(): IRun | null {
    return this._run;
  }

  /** Why the last read failed, or null. */
  get error(): string | null {
    return this._error;
  }

  /** Whether the run is still active (polled). */
  get active(): boolean {
    return this._run !== null && isActiveStatus(this._run.info.status);
  }

  /** Runs whose `mlflow.parentRunId` is this run. */
  get children(): readonly IRun[] {
    return this._children;
  }

  /** The x-axis the series are read for. */
  get xAxis(): XAxisMode {
    return this._xAxis;
  }
  set xAxis(value: XAxisMode) {
    if (value === this._xAxis) {
      return;
    }
    this._xAxis = value;
    this._seriesStamp = '';
    void this._loadSeries().catch(() => undefined);
  }

  /** How many metric charts are drawn (their series read); the first keys in order. */
  get chartLimit(): number {
    return this._chartLimit;
  }

  /** Draw (and read) more charts. */
  showMoreCharts(): void {
    this._chartLimit += RUN_CHARTS;
    void this._loadSeries().catch(() => undefined);
  }

  /** The down-sampled series of a metric, or undefined while it loads. */
  series(key: string): ILineSeries | undefined {
    return this._series.get(key);
  }

  /** Read the run and start polling it while it is active. */
  start(): Promise<void> {
    if (!this._started && !this.isDisposed) {
      this._started = true;
      return this._poll.start();
    }
    return Promise.resolve();
  }

  /** Read the run now (after an edit), whatever the schedule. */
  async refresh(): Promise<void> {
    if (!this.isDisposed) {
      await this._fetch().catch(() => undefined);
    }
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Stop polling and drop listeners. */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** One read: the run, its children, then its series when they changed. */
  private async _fetch(): Promise<void> {
    const generation = ++this._generation;
    try {
      const run = await this._client.getRun(this.runId);
      if (generation !== this._generation || this.isDisposed) {
        return;
      }
      this._run = run;
      this._error = null;
      this._changed.emit();
      const interval = RunsModel.toInterval(this._refreshMs());
      if (interval !== this._poll.frequency.interval) {
        this._poll.frequency = { ...this._poll.frequency, interval };
      }
      await Promise.all([
        this._loadChildren(run.info.experiment_id),
        this._loadSeries()
      ]);
    } catch (error) {
      if (generation === this._generation && !this.isDisposed) {
        this._error = describeError(error);
        this._changed.emit();
      }
      throw error;
    }
  }

  private async _loadChildren(experimentId: string): Promise<void> {
    let children: IRun[];
    try {
      children = await this._client.listRuns(
        {
          experiment_ids: [experimentId],
          filter: `tags.mlflow.parentRunId = '${this.runId}'`
        },
        MAX_CHILDREN
      );
    } catch {
      children = [];
    }
    if (!this.isDisposed) {
      this._children = children;
      this._changed.emit();
    }
  }

  /** Read the series again when the latest values or the x-axis changed. */
  private async _loadSeries(): Promise<void> {
    const metrics = sortedMetrics(this._run).slice(0, this._chartLimit);
    const xAxis = this._xAxis;
    const stamp =
      xAxis +
      '|' +
      metrics.map(m => `${m.key}:${m.step}:${m.timestamp}`).join('|');
    if (stamp === this._seriesStamp || !metrics.length) {
      return;
    }
    this._seriesStamp = stamp;
    const out = new Map<string, ILineSeries>();
    try {
      await mapLimit(metrics, SERIES_CONCURRENCY, async ({ key }) => {
        const answer = await this._client.getMetricSeries({
          run_id: this.runId,
          metric_key: key,
          max_points: MAX_POINTS,
          x_axis: xAxis === 'step' ? 'step' : 'timestamp'
        });
        const cols = seriesToColumns(answer.points ?? [], xAxis);
        out.set(key, {
          label: key,
          color: runColorOf(this.runId),
          x: cols.x,
          y: cols.value
        });
      });
    } catch (error) {
      if (stamp === this._seriesStamp && !this.isDisposed) {
        this._seriesStamp = '';
        this._error = describeError(error);
        this._changed.emit();
      }
      return;
    }
    if (stamp === this._seriesStamp && !this.isDisposed) {
      this._series = out;
      this._changed.emit();
    }
  }

  private _client: MLOpsClient;
  private _refreshMs: () => number;
  private _poll: Poll;
  private _started = false;
  private _generation = 0;
  private _run: IRun | null = null;
  private _error: string | null = null;
  private _children: IRun[] = [];
  private _xAxis: XAxisMode;
  private _series = new Map<string, ILineSeries>();
  private _chartLimit = RUN_CHARTS;
  private _seriesStamp = '';
  private _changed = new Signal<this, void>(this);
}

/** Types of `RunDetailModel`. */
export namespace RunDetailModel {
  /** Constructor options. */
  export interface IOptions {
    client: MLOpsClient;
    runId: string;
    /** Refresh period while the run is active, ms (0: never). */
    refreshMs: () => number;
    /** The x-axis to read series for; default `step`. */
    xAxis?: XAxisMode;
  }
}
