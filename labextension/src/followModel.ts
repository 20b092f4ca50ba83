/**
 * `FollowModel`: the state behind a view of something that runs on the
 * server and writes logs as it goes (a pipeline run and its steps, a
 * training job and its ranks). It polls the object and follows the selected
 * part's log with a `@lumino/polling` `Poll` until the object has ended and
 * that log is read to its end; views listen to `changed` and read the
 * getters. Subclasses say how to read the object and a part's log.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError } from './api';
import type { ILogChunk, ILogRead } from './api/client';

/** Most log text kept. */
export const MAX_LOG_CHARS = 200_000;
/** First read of a log: its last bytes. */
const LOG_TAIL = 64 * 1024;

/** A polled object with logs; `K` names a part (a step, a rank). */
export abstract class FollowModel<
  T,
  K extends string | number
> implements IDisposable {
  constructor(options: FollowModel.IOptions<K>) {
    this._none = options.none;
    this._part = options.none;
    this._poll = new Poll({
      auto: false,
      factory: () => this._tick(),
      frequency: { interval: options.pollMs ?? 1000, backoff: false },
      name: options.name,
      standby: () => this.ended || 'when-hidden'
    });
  }

  /** Emitted after any change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The object, or null before it is in. */
  get current(): T | null {
    return this._current;
  }

  /** Why the last read of the object failed, '' when it did not. */
  get error(): string {
    return this._error;
  }

  /** The part whose log is shown (`none` for none). */
  get part(): K {
    return this._part;
  }

  /** The shown part of the log (its end, at most `MAX_LOG_CHARS`). */
  get log(): string {
    return this._log;
  }

  /** Whether the shown log is complete. */
  get logEnded(): boolean {
    return this._logEnded;
  }

  /** Why the last read of the log failed, '' when it did not. */
  get logError(): string {
    return this._logError;
  }

  /** Whether the object still runs (cancel applies; retry does not). */
  get active(): boolean {
    return this._current !== null && this.isActive(this._current);
  }

  /** Whether the object has ended and the shown log is complete: no more polls. */
  get ended(): boolean {
    return this._current !== null && !this.active && this._logEnded;
  }

  /** Whether a cancel or retry is under way. */
  get busy(): boolean {
    return this._busy;
  }

  /** Read the object and follow it. */
  start(): Promise<void> {
    if (!this._started && !this.isDisposed) {
      this._started = true;
      return this._poll.start();
    }
    return Promise.resolve();
  }

  /** Show a part's log (followed while the object runs). */
  select(part: K): void {
    if (part === this._part) {
      return;
    }
    this._part = part;
    this._log = '';
    this._logOffset = -1;
    this._logEnded = false;
    this._logError = '';
    this._changed.emit();
    void this._readLog();
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

  /** Read the object. */
  protected abstract fetch(): Promise<T>;
  /** Whether the object still runs. */
  protected abstract isActive(value: T): boolean;
  /** Read part of a log. */
  protected abstract readLog(part: K, read: ILogRead): Promise<ILogChunk>;
  /** The part shown first once the object is in (`none`: none yet). */
  protected abstract firstPart(value: T): K;

  /** Whether a chunk holds the rest of its log. */
  protected logComplete(chunk: ILogChunk): boolean {
    return chunk.ended;
  }

  /** Set the object (an action's answer), telling views. */
  protected setCurrent(value: T): void {
    this._current = value;
    this._changed.emit();
  }

  /** Do `work` as busy (views disable their buttons), then poll at once. */
  protected async busyWith<R>(work: () => Promise<R>): Promise<R> {
    this._busy = true;
    this._changed.emit();
    try {
      return await work();
    } finally {
      this._busy = false;
      if (!this.isDisposed) {
        this._changed.emit();
        // Follow what the change started (a cancel in progress).
        void this._poll.refresh();
      }
    }
  }

  /** One poll: the object, then the new part of the selected log. */
  private async _tick(): Promise<void> {
    try {
      const value = await this.fetch();
      if (this.isDisposed) {
        return;
      }
      this._current = value;
      this._error = '';
      if (this._part === this._none) {
        this._part = this.firstPart(value);
      }
      this._changed.emit();
      await this._readLog();
    } catch (error) {
      if (!this.isDisposed) {
        this._error = describeError(error);
        this._changed.emit();
      }
    }
  }

  private async _readLog(): Promise<void> {
    const part = this._part;
    // One read of a log at a time: two at one offset would repeat its text.
    if (part === this._none || this._logEnded || this._reading === part) {
      return;
    }
    this._reading = part;
    try {
      const first = this._logOffset < 0;
      const chunk = await this.readLog(
        part,
        first ? { tail: LOG_TAIL } : { offset: this._logOffset }
      );
      if (part !== this._part || this.isDisposed) {
        return; // another part was selected meanwhile
      }
      this._log = (this._log + chunk.text).slice(-MAX_LOG_CHARS);
      this._logOffset = chunk.nextOffset;
      this._logEnded = this.logComplete(chunk);
      this._logError = '';
    } catch (error) {
      if (part !== this._part || this.isDisposed) {
        return;
      }
      this._logError = describeError(error);
    } finally {
      if (this._reading === part) {
        this._reading = null;
      }
    }
    this._changed.emit();
  }

  private _none: K;
  private _poll: Poll;
  private _started = false;
  private _current: T | null = null;
  private _error = '';
  private _part: K;
  private _log = '';
  private _logOffset = -1;
  private _logEnded = false;
  private _logError = '';
  private _reading: K | null = null;
  private _busy = false;
  private _changed = new Signal<this, void>(this);
}

/** Types of `FollowModel`. */
export namespace FollowModel {
  /** Constructor options. */
  export interface IOptions<K> {
    /** The poll's name (for debugging). */
    name: string;
    /** The part value meaning "none selected" ('' or -1). */
    none: K;
    /** Poll period, ms; default 1000. */
    pollMs?: number;
  }
}
