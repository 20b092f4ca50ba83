/**
 * `RunsModel`: the state behind the MLOps sidebar, apart from any widget.
 *
 * It lists experiments, holds the selected experiment's runs, and refreshes
 * both with a `@lumino/polling` `Poll` while a view is visible. Views listen
 * to `changed` and read the getters; they never call the REST API directly.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, MLOpsApiError, MLOpsClient } from './api';
import { IExperiment, IRun } from './api/types';
import { pickDefaultExperiment, sortExperiments } from './rows';

/** Where a list is in its loading cycle. */
export type LoadState = 'idle' | 'loading' | 'ready' | 'error';

/** Default refresh period, ms. */
export const DEFAULT_REFRESH_MS = 5000;

/** Default cap on runs listed per experiment. */
export const DEFAULT_MAX_RUNS = 100;

/** Longest back-off after failed refreshes, ms. */
const MAX_BACKOFF_MS = 60_000;

/** The runs model. */
export class RunsModel implements IDisposable {
  constructor(options: RunsModel.IOptions) {
    this._client = options.client;
    this._maxRuns = options.maxRuns ?? DEFAULT_MAX_RUNS;
    this._poll = new Poll({
      auto: false,
      factory: () => this._fetch(),
      frequency: {
        interval: RunsModel.toInterval(
          options.refreshInterval ?? DEFAULT_REFRESH_MS
        ),
        backoff: true,
        max: MAX_BACKOFF_MS
      },
      name: 'jupyter-mlops:runs',
      // Poll only while a view shows the data and the browser tab is visible.
      standby: () => !this._visible || 'when-hidden'
    });
  }

  /** The REST client this model reads through. */
  get client(): MLOpsClient {
    return this._client;
  }

  /** Emitted after any state change (data, loading state, selection). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted when the selected run changes (for run-detail views). */
  get runSelected(): ISignal<this, string | null> {
    return this._runSelected;
  }

  /** Active experiments, sorted by name. */
  get experiments(): readonly IExperiment[] {
    return this._experiments;
  }

  /** Loading state of the experiment list. */
  get experimentsState(): LoadState {
    return this._experimentsState;
  }

  /** Why the last experiment listing failed, or null. */
  get experimentsError(): string | null {
    return this._experimentsError;
  }

  /** Id of the experiment whose runs are shown, or null. */
  get selectedExperimentId(): string | null {
    return this._selectedExperimentId;
  }

  /** The selected experiment, or null. */
  get selectedExperiment(): IExperiment | null {
    return (
      this._experiments.find(
        exp => exp.experiment_id === this._selectedExperimentId
      ) ?? null
    );
  }

  /** Runs of the selected experiment, as the server returned them. */
  get runs(): readonly IRun[] {
    return this._runs;
  }

  /** Loading state of the runs list. */
  get runsState(): LoadState {
    return this._runsState;
  }

  /** Why the last runs listing failed, or null. */
  get runsError(): string | null {
    return this._runsError;
  }

  /** Whether the runs list was cut at `maxRuns`. */
  get runsTruncated(): boolean {
    return this._runsTruncated;
  }

  /** Id of the selected run, or null. */
  get selectedRunId(): string | null {
    return this._selectedRunId;
  }

  /** The runs filter (MLflow search grammar), '' for none. */
  get filter(): string {
    return this._filter;
  }

  /** The server's complaint about the filter, or null when it is valid. */
  get filterError(): string | null {
    return this._filterError;
  }

  /** Apply a new runs filter and refresh. */
  setFilter(filter: string): Promise<void> {
    const next = filter.trim();
    if (next === this._filter) {
      return this.refresh();
    }
    this._filter = next;
    this._filterError = null;
    this._runsState = 'loading';
    this._changed.emit();
    return this._fetchNow();
  }

  /** Param/metric columns the runs table shows (`params.x`, `metrics.y`). */
  get columns(): readonly string[] {
    return this._columns;
  }
  set columns(value: readonly string[]) {
    const next = [...new Set(value)];
    if (next.join('\n') !== this._columns.join('\n')) {
      this._columns = next;
      this._changed.emit();
    }
  }

  /** Ids of the runs ticked for comparison or bulk actions, in tick order. */
  get checkedRunIds(): readonly string[] {
    return this._checked;
  }

  /** Tick or untick a run. */
  toggleChecked(runId: string, checked?: boolean): void {
    const has = this._checked.includes(runId);
    const want = checked ?? !has;
    if (want === has) {
      return;
    }
    this._checked = want
      ? [...this._checked, runId]
      : this._checked.filter(id => id !== runId);
    this._changed.emit();
  }

  /** Replace the ticked runs. */
  setChecked(runIds: readonly string[]): void {
    this._checked = [...new Set(runIds)];
    this._changed.emit();
  }

  /** When data last arrived (epoch ms), or null. */
  get lastUpdated(): number | null {
    return this._lastUpdated;
  }

  /** Most runs listed per experiment. */
  get maxRuns(): number {
    return this._maxRuns;
  }
  set maxRuns(value: number) {
    this._maxRuns = Math.max(1, Math.floor(value));
  }

  /** Refresh period in ms; 0 turns automatic refresh off. */
  get refreshInterval(): number {
    const interval = this._poll.frequency.interval;
    return interval === Poll.NEVER ? 0 : interval;
  }
  set refreshInterval(ms: number) {
    this._poll.frequency = {
      ...this._poll.frequency,
      interval: RunsModel.toInterval(ms)
    };
  }

  /** Whether a view currently shows the model; polling stops when none does. */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (this._visible === value) {
      return;
    }
    this._visible = value;
    if (value && !this.isDisposed) {
      if (!this._started) {
        this._started = true;
        void this._poll.start();
      }
      // Fresh data as soon as the panel opens.
      void this._poll.refresh();
    }
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Show the runs of another experiment (null: none). */
  selectExperiment(experimentId: string | null): void {
    if (experimentId === this._selectedExperimentId) {
      return;
    }
    this._userSelected = experimentId !== null;
    this._selectedExperimentId = experimentId;
    this._runs = [];
    this._runsTruncated = false;
    this._runsError = null;
    this._runsState = experimentId === null ? 'idle' : 'loading';
    this._checked = [];
    this._setSelectedRun(null);
    this._changed.emit();
    void this._fetchNow();
  }

  /** Select a run (null: none). */
  selectRun(runId: string | null): void {
    if (runId !== this._selectedRunId) {
      this._setSelectedRun(runId);
      this._changed.emit();
    }
  }

  /**
   * Fetch now, whatever the schedule; resolves once the data is in (or the
   * fetch failed, which the error getters then tell).
   */
  async refresh(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    if (!this._visible) {
      // The poll is in standby: fetch directly so commands still work.
      await this._fetch().catch(() => undefined);
      return;
    }
    await this._poll.refresh();
    await this._poll.tick;
  }

  /**
   * Fetch now for a new selection or filter, even while a poll tick is in
   * flight: the poll drops a refresh asked during its own refresh tick, and
   * that tick may have read the old selection. A newer fetch wins (the
   * generation counter discards the older one's answer).
   */
  private _fetchNow(): Promise<void> {
    if (this.isDisposed) {
      return Promise.resolve();
    }
    return this._fetch().catch(() => undefined);
  }

  /** Create an experiment, select it and refresh; returns its id. */
  async createExperiment(name: string): Promise<string> {
    const id = await this._client.createExperiment({ name });
    this.selectExperiment(id);
    return id;
  }

  /** Rename an experiment and refresh. */
  async renameExperiment(experimentId: string, newName: string): Promise<void> {
    await this._client.updateExperiment(experimentId, newName);
    await this.refresh();
  }

  /** Delete an experiment (restorable through the API) and refresh. */
  async deleteExperiment(experimentId: string): Promise<void> {
    await this._client.deleteExperiment(experimentId);
    if (experimentId === this._selectedExperimentId) {
      this._selectedExperimentId = null;
      this._userSelected = false;
      this._runs = [];
    }
    await this.refresh();
  }

  /** Stop polling and drop listeners. */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** One refresh: experiments, then the selected experiment's runs. */
  private async _fetch(): Promise<void> {
    const generation = ++this._generation;
    const current = () => generation === this._generation && !this.isDisposed;

    if (this._experimentsState !== 'ready') {
      this._experimentsState = 'loading';
      this._changed.emit();
    }
    let experiments: IExperiment[];
    try {
      experiments = sortExperiments(
        await this._client.listExperiments({ view_type: 'ACTIVE_ONLY' })
      );
    } catch (error) {
      if (current()) {
        this._experimentsState = 'error';
        this._experimentsError = describeError(error);
        this._changed.emit();
      }
      throw error;
    }
    if (!current()) {
      return;
    }
    this._experiments = experiments;
    this._experimentsState = 'ready';
    this._experimentsError = null;

    // Keep the selection while it exists; otherwise show the latest experiment.
    const selected = this._selectedExperimentId;
    if (
      selected === null ||
      !experiments.some(exp => exp.experiment_id === selected)
    ) {
      if (selected !== null || !this._userSelected) {
        const pick = pickDefaultExperiment(experiments);
        this._selectedExperimentId = pick ? pick.experiment_id : null;
        this._userSelected = false;
        this._runs = [];
        this._runsState = pick ? 'loading' : 'idle';
        this._setSelectedRun(null);
      }
    }
    const experimentId = this._selectedExperimentId;
    if (experimentId === null) {
      this._lastUpdated = Date.now();
      this._changed.emit();
      return;
    }
    this._changed.emit();

    try {
      // One extra run tells whether the list was cut.
      const filter = this._filter;
      let runs: IRun[];
      try {
        runs = await this._listRuns(experimentId, filter, partial => {
          // First load of a long list: show the first page while the rest
          // streams in (refreshes replace the list only when complete).
          if (
            current() &&
            experimentId === this._selectedExperimentId &&
            filter === this._filter &&
            this._runs.length === 0
          ) {
            this._runs = partial.slice(0, this._maxRuns);
            this._runsState = 'ready';
            this._changed.emit();
          }
        });
      } catch (error) {
        // A malformed filter is the user's to fix, shown by the filter box;
        // the list keeps its last good content.
        if (
          filter &&
          error instanceof MLOpsApiError &&
          error.status === 400 &&
          current() &&
          filter === this._filter
        ) {
          this._filterError = error.message;
          this._runsState = 'ready';
          this._changed.emit();
          return;
        }
        throw error;
      }
      if (
        !current() ||
        experimentId !== this._selectedExperimentId ||
        filter !== this._filter
      ) {
        return;
      }
      this._filterError = null;
      this._runsTruncated = runs.length > this._maxRuns;
      this._runs = runs.slice(0, this._maxRuns);
      this._runsState = 'ready';
      this._runsError = null;
      this._lastUpdated = Date.now();
      if (
        this._selectedRunId !== null &&
        !this._runs.some(run => run.info.run_id === this._selectedRunId)
      ) {
        this._setSelectedRun(null);
      }
      this._changed.emit();
    } catch (error) {
      if (current() && experimentId === this._selectedExperimentId) {
        this._runsState = 'error';
        this._runsError = describeError(error);
        this._changed.emit();
      }
      throw error;
    }
  }

  /**
   * Up to `maxRuns + 1` runs (one extra tells whether the list was cut),
   * page by page; `onFirstPage` sees the first page when more follow.
   */
  private async _listRuns(
    experimentId: string,
    filter: string,
    onFirstPage: (runs: IRun[]) => void
  ): Promise<IRun[]> {
    const limit = this._maxRuns + 1;
    const runs: IRun[] = [];
    let token: string | undefined = undefined;
    let page = 0;
    do {
      const answer = await this._client.searchRuns({
        experiment_ids: [experimentId],
        run_view_type: 'ACTIVE_ONLY',
        filter: filter || undefined,
        // A small first page paints quickly; then big pages.
        max_results: Math.min(limit - runs.length, page === 0 ? 200 : 1000),
        page_token: token
      });
      runs.push(...(answer.runs ?? []));
      token = answer.next_page_token || undefined;
      if (page === 0 && token && runs.length < limit) {
        onFirstPage(runs.slice());
      }
      page++;
    } while (token && runs.length < limit);
    return runs.slice(0, limit);
  }

  private _setSelectedRun(runId: string | null): void {
    if (runId !== this._selectedRunId) {
      this._selectedRunId = runId;
      this._runSelected.emit(runId);
    }
  }

  private _client: MLOpsClient;
  private _poll: Poll;
  private _visible = false;
  private _started = false;
  private _generation = 0;
  private _maxRuns: number;
  private _experiments: IExperiment[] = [];
  private _experimentsState: LoadState = 'idle';
  private _experimentsError: string | null = null;
  private _selectedExperimentId: string | null = null;
  private _userSelected = false;
  private _runs: IRun[] = [];
  private _runsState: LoadState = 'idle';
  private _runsError: string | null = null;
  private _runsTruncated = false;
  private _selectedRunId: string | null = null;
  private _lastUpdated: number | null = null;
  private _filter = '';
  private _filterError: string | null = null;
  private _checked: string[] = [];
  private _columns: string[] = [];
  private _changed = new Signal<this, void>(this);
  private _runSelected = new Signal<this, string | null>(this);
}

/** Types and helpers of `RunsModel`. */
export namespace RunsModel {
  /** Constructor options. */
  export interface IOptions {
    /** The REST client. */
    client: MLOpsClient;
    /** Refresh period in ms (0: manual only); default 5000. */
    refreshInterval?: number;
    /** Most runs listed per experiment; default 100. */
    maxRuns?: number;
  }

  /** A poll interval for a period in ms: 0 or less means never. */
  export function toInterval(ms: number): number {
    return ms > 0 && Number.isFinite(ms)
      ? Math.min(Math.max(ms, 500), Poll.MAX_INTERVAL)
      : Poll.NEVER;
  }
}
