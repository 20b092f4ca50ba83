/** Shared placeholders of the panels: loading, empty, error. */
import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import type { LoadState } from '../model';

/** Props of `Placeholder`. */
export interface IPlaceholderProps {
  /** `loading`, `empty` or `error`: sets the class and ARIA role. */
  kind: 'loading' | 'empty' | 'error';
  /** Main line. */
  title: string;
  /** Optional details under the title. */
  children?: React.ReactNode;
  /** When given, a button that calls it. */
  onRetry?: () => void;
  /** Label of the retry button. */
  retryLabel?: string;
}

/** A centred message that fills an empty list or table. */
export function Placeholder(props: IPlaceholderProps): JSX.Element {
  return (
    <div
      className={`jp-mlops-Placeholder jp-mlops-Placeholder-${props.kind}`}
      role={props.kind === 'error' ? 'alert' : 'status'}
    >
      <div className="jp-mlops-Placeholder-title">{props.title}</div>
      {props.children ? (
        <div className="jp-mlops-Placeholder-body">{props.children}</div>
      ) : null}
      {props.onRetry ? (
        <button
          className="jp-mlops-Button jp-mod-styled"
          onClick={props.onRetry}
          type="button"
        >
          {props.retryLabel ?? 'Retry'}
        </button>
      ) : null}
    </div>
  );
}

/** A one-line warning above data that could not be refreshed. */
export function StaleBanner(props: { message: string }): JSX.Element {
  return (
    <div className="jp-mlops-Banner" role="alert" title={props.message}>
      {props.message}
    </div>
  );
}

/** What a detail view shows before its data is in: the error, or a loading line. */
export function DetailPending(props: {
  error: string | null;
  loading: string;
}): JSX.Element {
  return (
    <div className="jp-mlops-Detail">
      {props.error ? (
        <div className="jp-mlops-Error" role="alert">
          {props.error}
        </div>
      ) : (
        <div className="jp-mlops-Muted">{props.loading}</div>
      )}
    </div>
  );
}

/** Texts and retry action of `pendingList`. */
export interface IPendingListOptions {
  /** Load state of the list. */
  state: LoadState;
  /** Error of the last load, shown under the title. */
  error: string | null | undefined;
  /** Title when the load failed. */
  errorTitle: string;
  /** Title while it loads. */
  loadingTitle: string;
  /** Loads again. */
  onRetry: () => void;
  trans: TranslationBundle;
}

/**
 * What an empty list shows while it is not loaded: its error with a retry
 * button, or a loading line; `null` once loaded (the list is really empty).
 */
export function pendingList(opts: IPendingListOptions): JSX.Element | null {
  if (opts.state === 'error') {
    return (
      <Placeholder
        kind="error"
        title={opts.errorTitle}
        onRetry={opts.onRetry}
        retryLabel={opts.trans.__('Retry')}
      >
        {opts.error}
      </Placeholder>
    );
  }
  if (opts.state !== 'ready') {
    return <Placeholder kind="loading" title={opts.loadingTitle} />;
  }
  return null;
}
