/**
 * The parts the views of a `FollowModel` share (a pipeline run, a training
 * job): the placeholder until the object is in, and the log panel of the
 * selected part (its status, "following…" while it runs, its error, the text).
 */
import React from 'react';

/** Until the object is in: its read error, else "Loading…". */
export function FollowPending(props: {
  className: string;
  error: string;
  loading: string;
}): JSX.Element {
  return (
    <div className={props.className}>
      {props.error ? (
        <div className="jp-mlops-Banner" role="alert">
          {props.error}
        </div>
      ) : (
        <div className="jp-mlops-Placeholder">{props.loading}</div>
      )}
    </div>
  );
}

/** The log of the selected part, followed while it runs. */
export function LogPanel(props: {
  /** Extra class of the panel (`jp-mlops-JobLog`). */
  className?: string;
  /** "Log of …", or what to select. */
  title: string;
  /** The part's status, when one is selected. */
  status?: string;
  /** Shown while the log is still written ("following…"). */
  following?: string;
  /** Why the part failed. */
  error?: string | null;
  /** Why the last read of the log failed. */
  logError?: string;
  log: string;
  /** Class and data attributes of the text (tests and styles find it by them). */
  textClass: string;
  textData: Record<string, string | number>;
  /** Buttons after the header's text (open the notebook, the tracked run). */
  children?: React.ReactNode;
}): JSX.Element {
  const data: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(props.textData)) {
    data[`data-${k}`] = v;
  }
  return (
    <div
      className={`jp-mlops-PipelineLog${props.className ? ` ${props.className}` : ''}`}
    >
      <div className="jp-mlops-PipelineLog-header">
        <span>{props.title}</span>
        {props.status ? (
          <span
            className={`jp-mlops-PipelineStatus jp-mlops-status-${props.status}`}
          >
            {props.status}
          </span>
        ) : null}
        {props.following ? (
          <span className="jp-mlops-PipelineLog-follow">{props.following}</span>
        ) : null}
        {props.children}
      </div>
      {props.error ? (
        <div className="jp-mlops-PipelineLog-error">{props.error}</div>
      ) : null}
      {props.logError ? (
        <div className="jp-mlops-Banner" role="alert">
          {props.logError}
        </div>
      ) : null}
      <pre className={props.textClass} {...data}>
        {props.log}
      </pre>
    </div>
  );
}
