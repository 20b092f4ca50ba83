/**
 * `RunPages`: one experiment's runs as the server sorts and filters them,
 * read a page at a time (MLflow's `order_by` and page tokens) as rows scroll
 * into view, with the true count from `v1/runs/count`.
 *
 * Without a filter, runs nest: pages hold top-level runs in the chosen order,
 * each followed by its child runs (same order), so a child always sits under
 * its parent whatever the sort. With a filter the list is flat (a child that
 * matches shows even when its parent does not).
 */
import { IChangedRuns, IDataKeys, IRun, MLOpsClient } from './api';
import { quoteFilterValue } from './api/client';
import { Tags, tagValue } from './rows';

/** Columns the server sorts by, and the `order_by` key of each. */
export function orderKey(column: string): string | null {
  switch (column) {
    case 'name':
      return 'attributes.run_name';
    case 'status':
      return 'attributes.status';
    case 'started':
      return 'attributes.start_time';
    case 'user':
      return 'attributes.user_id';
    case 'source':
      return `tags.\`${Tags.sourceName}\``;
  }
  const m = /^(params|metrics|tags)\.(.+)$/.exec(column);
  if (m && !m[2].includes('`')) {
    return `${m[1]}.\`${m[2]}\``;
  }
  return null;
}

/** A sort of the runs table. */
export interface IRunSort {
  column: string;
  descending: boolean;
}

/** The default sort: newest first. */
export const DEFAULT_SORT: IRunSort = { column: 'started', descending: true };

/**
 * MLflow's `order_by` for a sort (empty: the server's default, newest first);
 * with `groupBy` (`params.x` / `tags.x`), runs of a group come together first.
 */
export function orderBy(sort: IRunSort, groupBy?: string | null): string[] {
  const key = orderKey(sort.column);
  const group = groupBy ? orderKey(groupBy) : null;
  return [
    ...(group ? [`${group} ASC`] : []),
    ...(key ? [`${key} ${sort.descending ? 'DESC' : 'ASC'}`] : [])
  ];
}

/** The filter of top-level runs (no `mlflow.parentRunId` tag). */
export const TOP_LEVEL_FILTER = `tags.\`${Tags.parentRunId}\` IS NULL`;

/** Most changed runs a live update applies in place (more: read pages). */
const CHANGES_LIMIT = 200;

/**
 * How far back each live update asks again (ms): a write committed just
 * after the last poll, or a writer whose clock is a little behind.
 */
const CHANGES_OVERLAP_MS = 2000;

/** A `since` no run has changed after: asks only for the server's clock. */
const FAR_FUTURE = 2 ** 52;

/** Most child runs read for one page of parents. */
export const MAX_CHILDREN_PER_PAGE = 5000;

/** Most keys of one kind `data_keys` may name (the server's limit). */
export const MAX_DATA_KEYS = 1000;

/** The system tags a runs table row reads (name, user, source, nesting). */
export const ROW_TAGS: readonly string[] = [
  Tags.runName,
  Tags.user,
  Tags.sourceName,
  Tags.parentRunId
];

/**
 * The run data a table of these columns reads (`params.x`, `metrics.y`,
 * `tags.z`, grouped by `groupBy`): its keys and the row's system tags.
 */
export function tableDataKeys(
  columns: readonly string[],
  groupBy?: string | null
): IDataKeys {
  const out: Required<IDataKeys> = {
    params: [],
    metrics: [],
    tags: [...ROW_TAGS]
  };
  for (const column of groupBy ? [...columns, groupBy] : columns) {
    const m = /^(params|metrics|tags)\.(.+)$/.exec(column);
    if (m && !out[m[1] as keyof IDataKeys].includes(m[2])) {
      out[m[1] as keyof IDataKeys].push(m[2]);
    }
  }
  // More keys of a kind than the server takes: all of that kind.
  const narrowed: IDataKeys = {};
  for (const kind of ['params', 'metrics', 'tags'] as const) {
    if (out[kind].length <= MAX_DATA_KEYS) {
      narrowed[kind] = out[kind];
    }
  }
  return narrowed;
}

/** Whether runs read with `have` carry every key of `want` (null: all keys). */
export function coversKeys(
  have: IDataKeys | null,
  want: IDataKeys | null
): boolean {
  if (have === null) {
    return true;
  }
  if (want === null) {
    return false;
  }
  return (['params', 'metrics', 'tags'] as const).every(kind => {
    const got = have[kind];
    const need = want[kind];
    if (got === undefined) {
      return true;
    }
    return need !== undefined && need.every(k => got.includes(k));
  });
}

/** One row of the table: a run, nested (depth 1) or not. */
export interface IRunRef {
  run: IRun;
  depth: 0 | 1;
  /** Loaded child runs (top-level rows of a nested list). */
  children: number;
}

/** A page: top-level runs (or all, flat) and the children of each. */
interface IPage {
  runs: IRun[];
  children: Map<string, IRun[]>;
}

/** The pages of one query (experiment, filter, sort). */
export class RunPages {
  constructor(options: RunPages.IOptions) {
    this._client = options.client;
    this.experimentId = options.experimentId;
    this.filter = options.filter;
    this.sort = options.sort;
    this.pageSize = Math.max(1, Math.floor(options.pageSize));
    this.nested = !options.filter;
    this.groupBy = options.groupBy ?? null;
    this.dataKeys = options.dataKeys ?? null;
    this._collapsed = options.collapsed ?? new Set();
    if (options.counted) {
      this._total = options.counted.total;
      this._topCount = options.counted.top;
    }
  }

  readonly experimentId: string;
  readonly filter: string;
  readonly sort: IRunSort;
  readonly pageSize: number;
  /** The `params.x` / `tags.x` column runs are grouped by, or null. */
  readonly groupBy: string | null;
  /** Whether child runs sit under their parent (no filter). */
  readonly nested: boolean;
  /** The keys the runs carry (null: all of them). */
  readonly dataKeys: IDataKeys | null;

  /** Runs matching the query (children included), or null before counted. */
  get total(): number | null {
    return this._total;
  }

  /** Rows the table has: loaded pages' rows plus the expected rest. */
  get rowCount(): number {
    return this._layout().rowCount;
  }

  /** Whether page 0 is in (the list has content to show). */
  get loaded(): boolean {
    return this._pages.has(0);
  }

  /** The row at `index`, or null while its page is not loaded. */
  rowAt(index: number): IRunRef | null {
    const layout = this._layout();
    // Pages are few (rows / page size): a linear walk is cheap.
    for (let k = 0; k < layout.offsets.length; k++) {
      const start = layout.offsets[k];
      const rows = layout.rows[k];
      const size = rows ? rows.length : this._expected(k);
      if (index < start + size) {
        return rows ? rows[index - start] : null;
      }
    }
    return null;
  }

  /** Every loaded run (parents and children), in table order. */
  loadedRuns(): IRun[] {
    const out: IRun[] = [];
    for (const k of [...this._pages.keys()].sort((a, b) => a - b)) {
      const page = this._pages.get(k)!;
      for (const run of page.runs) {
        out.push(run, ...(page.children.get(run.info.run_id) ?? []));
      }
    }
    return out;
  }

  /** Hide or show the children of a parent. */
  toggle(parentId: string): void {
    if (this._collapsed.has(parentId)) {
      this._collapsed.delete(parentId);
    } else {
      this._collapsed.add(parentId);
    }
    this._cache = null;
  }

  /** Whether a parent's children are hidden. */
  isCollapsed(parentId: string): boolean {
    return this._collapsed.has(parentId);
  }

  /** The collapsed parents (kept across queries by the model). */
  get collapsed(): Set<string> {
    return this._collapsed;
  }

  /** The pages holding rows `[first, end)`. */
  pagesOf(first: number, end: number): number[] {
    const layout = this._layout();
    const out: number[] = [];
    for (let k = 0; k < layout.offsets.length; k++) {
      const start = layout.offsets[k];
      const size = layout.rows[k]?.length ?? this._expected(k);
      if (start < end && start + size > first) {
        out.push(k);
      }
    }
    if (!out.length && layout.offsets.length === 0) {
      out.push(0);
    }
    return out;
  }

  /**
   * Read the pages holding rows `[first, end)` that are not in yet; true
   * when something was read. Pages before them whose token is unknown are
   * read first (a page token comes with the page before it).
   */
  async ensure(first: number, end: number): Promise<boolean> {
    const wanted = this.pagesOf(first, end).filter(k => !this._pages.has(k));
    if (!wanted.length) {
      return false;
    }
    for (const k of wanted) {
      await this._load(k);
    }
    return true;
  }

  /**
   * The live update. First ask the server which runs changed since the last
   * poll (`v1/runs/changes`): nothing changed, nothing is read; changed runs
   * the table shows are replaced in place when the order cannot move (newest
   * first, no filter or grouping). Otherwise (new or deleted runs, an order
   * or filter a change may affect, a server without the route) count again
   * and read page 0 and the pages holding rows `[first, end)` again, not the
   * whole list; when the count changed, other loaded pages are dropped
   * (their rows moved) and read again on scroll.
   */
  async refresh(first: number, end: number): Promise<void> {
    if (this._since !== null) {
      let answer: IChangedRuns | null = null;
      try {
        answer = await this._client.changedRuns({
          experiment_ids: [this.experimentId],
          since: this._since,
          max_results: CHANGES_LIMIT,
          ...this._keys()
        });
      } catch {
        this._since = null; // no such route: read pages from now on
      }
      if (answer && !answer.truncated) {
        this._since = Math.max(0, answer.now - CHANGES_OVERLAP_MS);
        const patch = this._patch(answer.runs);
        if (patch === 'done') {
          return;
        }
        if (patch === 'count') {
          // Changed runs out of view: the rows moved only if runs came or went.
          const counted = await this._count();
          if (counted.total === this._total && counted.top === this._topCount) {
            this._apply(answer.runs);
            return;
          }
        }
      }
    }
    const counted = await this._count();
    const wanted = new Set([0, ...this.pagesOf(first, end)]);
    const fresh = new Map<number, IPage>();
    for (const k of [...wanted].sort((a, b) => a - b)) {
      if (k === 0 || this._tokens.has(k)) {
        const page = await this._read(k, counted);
        if (page) {
          fresh.set(k, page);
        }
      }
    }
    const moved =
      counted.total !== this._total || counted.top !== this._topCount;
    if (moved) {
      this._pages = fresh;
    } else {
      for (const [k, page] of fresh) {
        this._pages.set(k, page);
      }
    }
    this._total = counted.total;
    this._topCount = counted.top;
    this._cache = null;
  }

  /**
   * Apply changed runs in place; false when the rows must be read again
   * (a new or deleted run, an order or filter a change may move).
   */
  private _patch(changed: IRun[]): 'done' | 'count' | 'read' {
    if (!changed.length) {
      return 'done';
    }
    const stable =
      !this.filter && !this.groupBy && this.sort.column === 'started';
    const loaded = new Map<string, { list: IRun[]; index: number }>();
    for (const page of this._pages.values()) {
      page.runs.forEach((r, index) =>
        loaded.set(r.info.run_id, { list: page.runs, index })
      );
      for (const kids of page.children.values()) {
        kids.forEach((r, index) =>
          loaded.set(r.info.run_id, { list: kids, index })
        );
      }
    }
    let unseen = false;
    for (const run of changed) {
      const active = (run.info.lifecycle_stage ?? 'active') === 'active';
      if (!stable || !active) {
        return 'read';
      }
      unseen = unseen || !loaded.has(run.info.run_id);
    }
    if (unseen) {
      // A new run, or one out of view: the count tells.
      return 'count';
    }
    this._apply(changed);
    return 'done';
  }

  /** Replace the loaded copies of changed runs. */
  private _apply(changed: IRun[]): void {
    const byId = new Map(changed.map(r => [r.info.run_id, r]));
    for (const page of this._pages.values()) {
      const swap = (list: IRun[]) =>
        list.forEach((r, i) => {
          const fresh = byId.get(r.info.run_id);
          if (fresh) {
            list[i] = fresh;
            this.patched++;
          }
        });
      swap(page.runs);
      page.children.forEach(swap);
    }
    this._cache = null;
  }

  /** Runs replaced in place by live updates (tests, diagnostics). */
  patched = 0;

  /** The counts of matching runs and of top-level rows, when known. */
  get counted(): { total: number; top: number } | null {
    return this._total === null || this._topCount === null
      ? null
      : { total: this._total, top: this._topCount };
  }

  /**
   * Read page 0 and the count: the first paint. Counts given to the
   * constructor (the same experiment and filter in another order) are kept.
   */
  async start(): Promise<void> {
    const clock = this._client
      .changedRuns({
        experiment_ids: [this.experimentId],
        since: FAR_FUTURE,
        max_results: 1
      })
      .then(answer => Math.max(0, answer.now - CHANGES_OVERLAP_MS))
      .catch(() => null);
    const known = this.counted;
    const [counted, page, since] = await Promise.all([
      known ? Promise.resolve(known) : this._count(),
      this._read(0),
      clock
    ]);
    this._since = since;
    this._total = counted.total;
    this._topCount = counted.top;
    if (page) {
      this._pages.set(0, page);
    }
    this._cache = null;
  }

  /** Read page `k` (after the pages before it whose token is unknown). */
  private _load(k: number): Promise<void> {
    const pending = this._inflight.get(k);
    if (pending) {
      return pending;
    }
    const work = (async () => {
      if (k > 0 && !this._tokens.has(k)) {
        if (this._lastPage !== null && k > this._lastPage) {
          return;
        }
        await this._load(k - 1);
        if (!this._tokens.has(k)) {
          return; // the list ended before page k
        }
      }
      const page = await this._read(k);
      if (page) {
        this._pages.set(k, page);
        this._cache = null;
      }
    })().finally(() => this._inflight.delete(k));
    this._inflight.set(k, work);
    return work;
  }

  /**
   * One page from the server (null: past the end); `counted`: the counts
   * as of this read, when known.
   */
  private async _read(
    k: number,
    counted: { total: number; top: number } | null = this.counted
  ): Promise<IPage | null> {
    const token = k === 0 ? undefined : this._tokens.get(k);
    if (k > 0 && !token) {
      return null;
    }
    const answer = await this._client.searchRuns({
      experiment_ids: [this.experimentId],
      run_view_type: 'ACTIVE_ONLY',
      filter: this.nested ? TOP_LEVEL_FILTER : this.filter || undefined,
      max_results: this.pageSize,
      order_by: orderBy(this.sort, this.groupBy),
      page_token: token,
      ...this._keys()
    });
    const runs = answer.runs ?? [];
    if (answer.next_page_token) {
      this._tokens.set(k + 1, answer.next_page_token);
      if (this._lastPage !== null && this._lastPage <= k) {
        this._lastPage = null;
      }
    } else {
      this._lastPage = k;
    }
    const children = new Map<string, IRun[]>();
    // As many runs as top-level ones: no run has a parent, no children to ask for.
    const childless = counted !== null && counted.total === counted.top;
    if (this.nested && runs.length && !childless) {
      const ids = runs.map(r => r.info.run_id);
      const kids = await this._client.listRuns(
        {
          experiment_ids: [this.experimentId],
          run_view_type: 'ACTIVE_ONLY',
          filter: `tags.\`${Tags.parentRunId}\` IN (${ids.map(quoteFilterValue).join(', ')})`,
          order_by: orderBy(this.sort),
          ...this._keys()
        },
        MAX_CHILDREN_PER_PAGE
      );
      for (const kid of kids) {
        const parent = tagValue(kid.data?.tags, Tags.parentRunId) ?? '';
        const list = children.get(parent) ?? [];
        list.push(kid);
        children.set(parent, list);
      }
    }
    return { runs, children };
  }

  /** The request field narrowing the runs' data, if any. */
  private _keys(): { data_keys?: IDataKeys } {
    return this.dataKeys ? { data_keys: this.dataKeys } : {};
  }

  /** The count of matching runs and of top-level rows. */
  private async _count(): Promise<{ total: number; top: number }> {
    const base = {
      experiment_ids: [this.experimentId],
      run_view_type: 'ACTIVE_ONLY' as const
    };
    if (!this.nested) {
      const total = await this._client.countRuns({
        ...base,
        filter: this.filter || undefined
      });
      return { total, top: total };
    }
    const [total, top] = await Promise.all([
      this._client.countRuns(base),
      this._client.countRuns({ ...base, filter: TOP_LEVEL_FILTER })
    ]);
    return { total, top };
  }

  /** Rows page `k` should have while it is not loaded. */
  private _expected(k: number): number {
    const top = this._topCount ?? 0;
    return Math.max(0, Math.min(this.pageSize, top - k * this.pageSize));
  }

  /** Row offsets and rows of every page. */
  private _layout(): {
    offsets: number[];
    rows: (IRunRef[] | undefined)[];
    rowCount: number;
  } {
    if (this._cache) {
      return this._cache;
    }
    const top = this._topCount ?? 0;
    let pages = Math.ceil(top / this.pageSize);
    for (const k of this._pages.keys()) {
      pages = Math.max(pages, k + 1);
    }
    const offsets: number[] = [];
    const rows: (IRunRef[] | undefined)[] = [];
    let at = 0;
    for (let k = 0; k < pages; k++) {
      offsets.push(at);
      const page = this._pages.get(k);
      if (page) {
        const list: IRunRef[] = [];
        for (const run of page.runs) {
          const kids = page.children.get(run.info.run_id) ?? [];
          list.push({ run, depth: 0, children: kids.length });
          if (!this._collapsed.has(run.info.run_id)) {
            for (const kid of kids) {
              list.push({ run: kid, depth: 1, children: 0 });
            }
          }
        }
        rows.push(list);
        at += list.length;
      } else {
        rows.push(undefined);
        at += this._expected(k);
      }
    }
    this._cache = { offsets, rows, rowCount: at };
    return this._cache;
  }

  private _client: MLOpsClient;
  /** Server time (ms) of the last poll, less an overlap; null: read pages. */
  private _since: number | null = null;
  private _pages = new Map<number, IPage>();
  private _tokens = new Map<number, string>();
  private _lastPage: number | null = null;
  private _inflight = new Map<number, Promise<void>>();
  private _total: number | null = null;
  private _topCount: number | null = null;
  private _collapsed: Set<string>;
  private _cache: {
    offsets: number[];
    rows: (IRunRef[] | undefined)[];
    rowCount: number;
  } | null = null;
}

/** Types of `RunPages`. */
export namespace RunPages {
  /** Constructor options. */
  export interface IOptions {
    client: MLOpsClient;
    experimentId: string;
    /** MLflow search filter, '' for none (nested list). */
    filter: string;
    sort: IRunSort;
    /** Runs read per request. */
    pageSize: number;
    /** Parents whose children are hidden. */
    collapsed?: Set<string>;
    /** Group runs by this `params.x` / `tags.x` column (sorted by it first). */
    groupBy?: string | null;
    /** Only these keys of the runs' data (default: all). */
    dataKeys?: IDataKeys | null;
    /** The counts, known from the same query in another order. */
    counted?: { total: number; top: number } | null;
  }
}
