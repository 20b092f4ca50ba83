/**
 * What the Pipelines and Models sidebars share: reloading while shown (on a
 * timer the panel paces; stopped while hidden, detached or disposed), the
 * load error kept for a banner, and the heading row with its Refresh button.
 */
import { LabIcon, ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { describeError } from './api';
import { Placeholder } from './panels/states';

/** How a sidebar presents itself in the left area. */
export interface ISidebarOptions {
  id: string;
  className: string;
  icon: LabIcon;
  caption: string;
}

/** A sidebar that reloads its data while it is shown. */
export abstract class PollingSidebar extends ReactWidget {
  constructor(options: ISidebarOptions) {
    super();
    this.id = options.id;
    this.addClass(options.className);
    this.title.icon = options.icon;
    this.title.caption = options.caption;
  }

  /** Reload now; a failure is kept in `error` for the banner. */
  async refresh(): Promise<void> {
    try {
      await this.load();
      this.error = '';
    } catch (error) {
      this.error = describeError(error);
    }
    this.loaded = true;
    this.update();
  }

  dispose(): void {
    this._stop();
    super.dispose();
  }

  /** Fetch the panel's data into its fields (throws on failure). */
  protected abstract load(): Promise<void>;

  /** Milliseconds until the reload after the one just done; 0 or less: none. */
  protected abstract nextDelay(): number;

  /** Reload after `delay` ms, then at the pace of `nextDelay` while shown. */
  protected reloadIn(delay: number): void {
    this._stop();
    this._timer = window.setTimeout(async () => {
      await this.refresh();
      if (this.isDisposed || !this.isVisible) {
        return;
      }
      const next = this.nextDelay();
      if (next > 0) {
        this.reloadIn(next);
      }
    }, delay);
  }

  protected onAfterShow(): void {
    // Render now (the loading line), not only once the first load answers.
    this.update();
    this.reloadIn(0);
  }

  protected onAfterAttach(): void {
    this.update();
    if (this.isVisible) {
      this.reloadIn(0);
    }
  }

  protected onBeforeHide(): void {
    this._stop();
  }

  protected onBeforeDetach(): void {
    this._stop();
  }

  private _stop(): void {
    if (this._timer !== undefined) {
      window.clearTimeout(this._timer);
      this._timer = undefined;
    }
  }

  /** The last load's failure, or ''. */
  protected error = '';
  /** Whether a load has answered (empty lists say so only then). */
  protected loaded = false;
  private _timer: number | undefined = undefined;
}

/** A styled sidebar button; `className` names its role. */
export function ActionButton(props: {
  className: string;
  label: string;
  title?: string;
  onClick: () => void;
}): JSX.Element {
  return (
    <button
      type="button"
      className={`jp-mlops-Button jp-mod-styled ${props.className}`}
      onClick={props.onClick}
      title={props.title}
    >
      {props.label}
    </button>
  );
}

/** A titled list of a sidebar, with a line saying when it is empty. */
export function ListSection(props: {
  title: string;
  listClass: string;
  /** Shown as the only item when set (once loaded, with nothing to list). */
  empty: string | null;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <>
      <h3 className="jp-mlops-PipelinesPanel-section">{props.title}</h3>
      <ul className={props.listClass}>
        {props.empty ? (
          <li className="jp-mlops-PipelinesPanel-empty">{props.empty}</li>
        ) : null}
        {props.children}
      </ul>
    </>
  );
}

/** The heading row of a sidebar: its title and a Refresh button. */
export function SidebarHeader(props: {
  title: string;
  refreshLabel: string;
  /** Extra class of the Refresh button (tests and styles find it by it). */
  refreshClass: string;
  refreshTitle?: string;
  onRefresh: () => void;
}): JSX.Element {
  return (
    <div className="jp-mlops-PipelinesPanel-toolbar">
      <h2 className="jp-mlops-RunsPanel-heading">{props.title}</h2>
      <ActionButton
        className={props.refreshClass}
        label={props.refreshLabel}
        title={props.refreshTitle}
        onClick={props.onRefresh}
      />
    </div>
  );
}

/** A sidebar's error banner (nothing when there is no error). */
export function ErrorBanner(props: { error: string }): JSX.Element | null {
  return props.error ? (
    <div className="jp-mlops-Banner" role="alert">
      {props.error}
    </div>
  ) : null;
}

/** What a sidebar shows until its first load answers (as the runs panel does). */
export function LoadingLine(props: {
  loaded: boolean;
  error: string;
  text: string;
}): JSX.Element | null {
  return props.loaded || props.error ? null : (
    <Placeholder kind="loading" title={props.text} />
  );
}
