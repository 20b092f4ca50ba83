/**
 * `RunsModel`: the state behind the MLOps sidebar, apart from any widget.
 *
 * It lists experiments, holds the selected experiment's runs as the server
 * sorts and filters them (`RunPages`: read a page at a time as rows scroll
 * into view), and refreshes both with a `@lumino/polling` `Poll` while a view
 * is visible: the experiment list, the count and the pages in view, not the
 * whole list. Views listen to `changed` and read the getters; they never call
 * the REST API directly.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, MLOpsApiError, MLOpsClient } from './api';
import { IDataKeys, IExperiment, IRun } from './api/types';
import { groupFilter, pickDefaultExperiment, sortExperiments } from './rows';
import {
  coversKeys,
  DEFAULT_SORT,
  IRunRef,
  IRunSort,
  RunPages,
  tableDataKeys
} from './runPages';

/** Where a list is in its loading cycle. */
export type LoadState = 'idle' | 'loading' | 'ready' | 'error';

/** Default refresh period, ms. */
export const DEFAULT_REFRESH_MS = 5000;

/** Default number of runs read per request (a page of the runs table). */
export const DEFAULT_PAGE_SIZE = 100;

/** Longest back-off after failed refreshes, ms. */
const MAX_BACKOFF_MS = 60_000;

/** The runs model. */
export class RunsModel implements IDisposable {
  constructor(options: RunsModel.IOptions) {
    this._client = options.client;
    this._pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this._pinned = options.experimentId ?? null;
    this._lazyData = !!options.lazyData;
    if (this._pinned !== null) {
      this._selectedExperimentId = this._pinned;
      this._userSelected = true;
      this._runsState = 'loading';
    }
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

  /** The loaded runs of the selected experiment (parents and children), in table order. */
  get runs(): readonly IRun[] {
    if (this._runsCache === null) {
      this._runsCache = this._pages?.loadedRuns() ?? [];
    }
    return this._runsCache;
  }

  /** How many runs match (children included), or null before counted. */
  get runCount(): number | null {
    return this._pages?.total ?? null;
  }

  /** Rows of the runs table (loaded or not). */
  get rowCount(): number {
    return this._pages?.loaded ? this._pages.rowCount : 0;
  }

  /** The table row at `index`, or null while its page loads. */
  rowAt(index: number): IRunRef | null {
    return this._pages?.rowAt(index) ?? null;
  }

  /** Whether runs nest under their parent (no filter). */
  get nested(): boolean {
    return this._pages?.nested ?? !this._filter;
  }

  /** Hide or show a parent run's children. */
  toggleChildren(parentId: string): void {
    // The set is shared with the pages (kept across queries).
    if (this._pages) {
      this._pages.toggle(parentId);
    } else if (!this._collapsed.delete(parentId)) {
      this._collapsed.add(parentId);
    }
    this._runsCache = null;
    this._changed.emit();
  }

  /** Whether a parent run's children are hidden. */
  isCollapsed(parentId: string): boolean {
    return this._collapsed.has(parentId);
  }

  /** The sort of the runs table (the server's `order_by`). */
  get sort(): IRunSort {
    return this._sort;
  }

  /** Sort the runs by another column or direction (read from the server). */
  setSort(sort: IRunSort): Promise<void> {
    if (
      sort.column === this._sort.column &&
      sort.descending === this._sort.descending
    ) {
      return Promise.resolve();
    }
    this._sort = { ...sort };
    this._dropPages('loading');
    return this._fetchNow();
  }

  /**
   * The rows `[first, end)` the table shows: their pages are read when not
   * in yet, and each refresh reads them again.
   */
  setViewport(first: number, end: number): Promise<void> {
    this._viewport = [first, end];
    const pages = this._pages;
    if (!pages || !pages.loaded) {
      return Promise.resolve();
    }
    return pages
      .ensure(first, end)
      .then(read => {
        if (read && pages === this._pages) {
          this._runsCache = null;
          this._changed.emit();
        }
      })
      .catch(error => {
        if (pages === this._pages) {
          this._runsState = 'error';
          this._runsError = describeError(error);
          this._changed.emit();
        }
      });
  }

  /** Loading state of the runs list. */
  get runsState(): LoadState {
    return this._runsState;
  }

  /** Why the last runs listing failed, or null. */
  get runsError(): string | null {
    return this._runsError;
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
    this._dropPages('loading');
    return this._fetchNow();
  }

  /** The experiment this model always shows (a runs tab), or null. */
  get pinnedExperimentId(): string | null {
    return this._pinned;
  }

  /** The `params.x` / `tags.x` column runs are grouped by, or null. */
  get groupBy(): string | null {
    return this._groupBy;
  }

  /** Group runs by a param or tag (null: no grouping); read from the server. */
  setGroupBy(column: string | null): Promise<void> {
    if (column === this._groupBy) {
      return Promise.resolve();
    }
    this._groupBy = column;
    this._groupCounts.clear();
    this._dropPages('loading');
    return this._fetchNow();
  }

  /**
   * How many runs (of the current filter) have `value` in the group column,
   * or null while it is counted (read once per value; `changed` tells).
   */
  groupCount(value: string | undefined): number | null {
    const column = this._groupBy;
    if (!column || this._selectedExperimentId === null) {
      return null;
    }
    const key = value ?? '\u0000';
    const known = this._groupCounts.get(key);
    if (known !== undefined) {
      return known;
    }
    this._groupCounts.set(key, null);
    const filter = groupFilter(column, value, this._filter);
    const experimentId = this._selectedExperimentId;
    const counts = this._groupCounts;
    void this._client
      .countRuns({
        experiment_ids: [experimentId],
        run_view_type: 'ACTIVE_ONLY',
        filter
      })
      .then(count => {
        if (counts === this._groupCounts && !this.isDisposed) {
          counts.set(key, count);
          this._changed.emit();
        }
      })
      .catch(() => undefined);
    return null;
  }

  /** Widths in px the user gave the runs table's columns. */
  get columnWidths(): Readonly<Record<string, number>> {
    return this._widths;
  }

  /** Resize a column (px; at least 40). */
  setColumnWidth(column: string, width: number): void {
    this._widths = {
      ...this._widths,
      [column]: Math.max(40, Math.round(width))
    };
    this._changed.emit();
  }

  /** The table's view choices: what a runs tab keeps per experiment. */
  get view(): IRunsView {
    return {
      columns: [...this._columns],
      widths: { ...this._widths },
      sort: { ...this._sort },
      groupBy: this._groupBy
    };
  }

  /**
   * Take view choices back (a reload, a tab opened again): one fresh read
   * when the sort or grouping differ from the current ones.
   */
  applyView(view: IRunsView): Promise<void> {
    this._columns = [...new Set(view.columns)];
    this._widths = { ...view.widths };
    const reread =
      view.sort.column !== this._sort.column ||
      view.sort.descending !== this._sort.descending ||
      view.groupBy !== this._groupBy;
    if (!reread) {
      this._changed.emit();
      this._readMissingKeys();
      return Promise.resolve();
    }
    this._sort = { ...view.sort };
    this._groupBy = view.groupBy;
    this._groupCounts.clear();
    this._dropPages('loading');
    // Not started yet: the first poll reads with these.
    return this._started ? this._fetchNow() : Promise.resolve();
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
      this._readMissingKeys();
    }
  }

  /**
   * The keys of the runs' data the model reads: null (all) unless it reads
   * only what its table shows (`lazyData`: a wide run has thousands).
   */
  get dataKeys(): IDataKeys | null {
    return this._lazyData ? tableDataKeys(this._columns, this._groupBy) : null;
  }

  /**
   * Read the rows again, in place, when a new column needs keys they were
   * read without (the rows on screen stay until the new ones are in).
   */
  private _readMissingKeys(): void {
    const pages = this._pages;
    if (this._lazyData && pages && !coversKeys(pages.dataKeys, this.dataKeys)) {
      void this._fetchNow();
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

  /** Runs read per request (a page of the runs table); applies to the next query. */
  get pageSize(): number {
    return this._pageSize;
  }
  set pageSize(value: number) {
    this._pageSize = Math.min(1000, Math.max(10, Math.floor(value)));
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
    if (
      experimentId === this._selectedExperimentId ||
      (this._pinned !== null && experimentId !== this._pinned)
    ) {
      return;
    }
    this._userSelected = experimentId !== null;
    this._selectedExperimentId = experimentId;
    this._dropPages(experimentId === null ? 'idle' : 'loading');
    this._runsError = null;
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
    return this._fetch(false).catch(() => undefined);
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
      this._dropPages('idle');
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

  /**
   * One refresh: experiments, then the selected experiment's runs.
   *
   * @param readList - read the experiment list again; a runs tab's new query
   *   (`_fetchNow`) skips it once the list is known
   */
  private async _fetch(readList = true): Promise<void> {
    const generation = ++this._generation;
    const current = () => generation === this._generation && !this.isDisposed;

    if (this._experimentsState !== 'ready') {
      this._experimentsState = 'loading';
      this._changed.emit();
    }
    let experiments: IExperiment[];
    if (
      !readList &&
      this._pinned !== null &&
      this._experimentsState === 'ready'
    ) {
      // A runs tab's experiment is fixed: a new filter or sort reads its runs
      // at once (the poll reads the experiment list again).
      experiments = this._experiments;
    } else {
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
    }

    // Keep the selection while it exists; otherwise show the latest experiment.
    const selected = this._selectedExperimentId;
    if (this._pinned !== null) {
      // A runs tab shows its experiment (its runs search finds none once deleted).
    } else if (
      selected === null ||
      !experiments.some(exp => exp.experiment_id === selected)
    ) {
      if (selected !== null || !this._userSelected) {
        const pick = pickDefaultExperiment(experiments);
        this._selectedExperimentId = pick ? pick.experiment_id : null;
        this._userSelected = false;
        this._dropPages(pick ? 'loading' : 'idle');
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

    const filter = this._filter;
    const sort = this._sort;
    const groupBy = this._groupBy;
    const dataKeys = this.dataKeys;
    const same = () =>
      current() &&
      experimentId === this._selectedExperimentId &&
      filter === this._filter &&
      sort === this._sort &&
      groupBy === this._groupBy;
    let pages = this._pages;
    const fresh =
      !pages ||
      pages.experimentId !== experimentId ||
      pages.filter !== filter ||
      pages.sort !== sort ||
      pages.groupBy !== groupBy ||
      !pages.loaded ||
      !coversKeys(pages.dataKeys, dataKeys);
    try {
      if (fresh) {
        // Another order or grouping of the same runs: their count is known.
        const known = this._counted;
        pages = new RunPages({
          client: this._client,
          experimentId,
          filter,
          sort,
          pageSize: this._pageSize,
          collapsed: this._collapsed,
          groupBy,
          dataKeys,
          counted:
            known &&
            known.experimentId === experimentId &&
            known.filter === filter
              ? known.counted
              : null
        });
        await pages.start();
      } else {
        await pages!.refresh(...this._viewport);
      }
    } catch (error) {
      if (!same()) {
        return;
      }
      if (filter && error instanceof MLOpsApiError && error.status === 400) {
        // A malformed filter is the user's to fix, shown by the filter box;
        // no rows of an earlier filter stay under it.
        this._filterError = error.message;
        this._dropPages('ready');
        this._changed.emit();
        return;
      }
      this._runsState = 'error';
      this._runsError = describeError(error);
      this._changed.emit();
      throw error;
    }
    if (!same()) {
      return;
    }
    if (fresh || pages!.total !== this._pages?.total) {
      this._groupCounts = new Map();
    }
    this._pages = pages;
    const counted = pages!.counted;
    this._counted = counted ? { experimentId, filter, counted } : null;
    this._runsCache = null;
    this._filterError = null;
    this._runsState = 'ready';
    this._runsError = null;
    this._lastUpdated = Date.now();
    this._changed.emit();
    if (fresh) {
      // The rows in view beyond the first page (a list scrolled before a sort).
      await this.setViewport(...this._viewport);
    }
    // Columns chosen while this read was in flight.
    this._readMissingKeys();
  }

  /** Forget the loaded runs (new experiment, filter or sort). */
  private _dropPages(state: LoadState): void {
    this._pages = null;
    this._runsCache = null;
    this._runsState = state;
    this._changed.emit();
  }

  private _setSelectedRun(runId: string | null): void {
    if (runId !== this._selectedRunId) {
      this._selectedRunId = runId;
      this._runSelected.emit(runId);
    }
  }

  private _client: MLOpsClient;
  private _pinned: string | null;
  private _lazyData: boolean;
  /** The last counts read, and of which query (kept across sorts). */
  private _counted: {
    experimentId: string;
    filter: string;
    counted: { total: number; top: number };
  } | null = null;
  private _groupBy: string | null = null;
  private _groupCounts = new Map<string, number | null>();
  private _widths: Record<string, number> = {};
  private _poll: Poll;
  private _visible = false;
  private _started = false;
  private _generation = 0;
  private _pageSize: number;
  private _pages: RunPages | null = null;
  private _runsCache: IRun[] | null = null;
  private _sort: IRunSort = DEFAULT_SORT;
  private _viewport: [number, number] = [0, 50];
  private _collapsed = new Set<string>();
  private _experiments: IExperiment[] = [];
  private _experimentsState: LoadState = 'idle';
  private _experimentsError: string | null = null;
  private _selectedExperimentId: string | null = null;
  private _userSelected = false;
  private _runsState: LoadState = 'idle';
  private _runsError: string | null = null;
  private _selectedRunId: string | null = null;
  private _lastUpdated: number | null = null;
  private _filter = '';
  private _filterError: string | null = null;
  private _checked: string[] = [];
  private _columns: string[] = [];
  private _changed = new Signal<this, void>(this);
  private _runSelected = new Signal<this, string | null>(this);
}

/** A runs table's view choices (columns, widths, sort, grouping). */
export interface IRunsView {
  columns: string[];
  widths: Record<string, number>;
  sort: IRunSort;
  groupBy: string | null;
}

/** Types and helpers of `RunsModel`. */
export namespace RunsModel {
  /** Constructor options. */
  export interface IOptions {
    /** The REST client. */
    client: MLOpsClient;
    /** Refresh period in ms (0: manual only); default 5000. */
    refreshInterval?: number;
    /** Runs read per request; default 100. */
    pageSize?: number;
    /** Always show this experiment (a runs tab); default: the one selected. */
    experimentId?: string;
    /**
     * Read only the run data the table's columns show (a runs tab: a wide
     * experiment's runs have thousands of keys), not every key of every run.
     */
    lazyData?: boolean;
  }

  /** A poll interval for a period in ms: 0 or less means never. */
  export function toInterval(ms: number): number {
    return ms > 0 && Number.isFinite(ms)
      ? Math.min(Math.max(ms, 500), Poll.MAX_INTERVAL)
      : Poll.NEVER;
  }
}
