/**
 * What every plugin of the extension does on activation: place its sidebar
 * with its Open and Refresh commands, put its commands in the palette under
 * one category, apply its settings now and on change, and open its views in
 * the main area one tab per object.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import type { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { PollingSidebar } from './sidebar';

/** Palette category of all the extension's commands. */
export const PALETTE_CATEGORY = 'MLOps';

/** Where a sidebar goes and how its commands read. */
export interface ISidebarPlacement {
  rank: number;
  /** The left area's `type` of the widget. */
  type: string;
  open: { id: string; label: string; caption: string };
  refresh: { id: string; label: string };
}

/**
 * Put `panel` in the left area (restored with the layout under its id) and
 * add its "Open" and "Refresh" commands.
 */
export function addSidebar(
  app: JupyterFrontEnd,
  restorer: ILayoutRestorer | null,
  panel: PollingSidebar,
  placement: ISidebarPlacement
): void {
  const { commands, shell } = app;
  const { open, refresh } = placement;
  shell.add(panel, 'left', { rank: placement.rank, type: placement.type });
  restorer?.add(panel, panel.id);
  commands.addCommand(open.id, {
    label: open.label,
    caption: open.caption,
    execute: () => shell.activateById(panel.id)
  });
  commands.addCommand(refresh.id, {
    label: refresh.label,
    execute: () => panel.refresh()
  });
}

/** Add `commands` to the palette (when there is one). */
export function addToPalette(
  palette: ICommandPalette | null,
  commands: readonly string[]
): void {
  for (const command of commands) {
    palette?.addItem({ command, category: PALETTE_CATEGORY });
  }
}

/**
 * Load the settings of `pluginId` and `apply` them, again on every change;
 * without a registry, or when loading fails (logged), the defaults stay.
 */
export function followSettings(
  registry: ISettingRegistry | null,
  pluginId: string,
  apply: (settings: ISettingRegistry.ISettings) => void
): void {
  registry
    ?.load(pluginId)
    .then(settings => {
      apply(settings);
      settings.changed.connect(() => apply(settings));
    })
    .catch(reason => {
      console.warn(
        `jupyter-mlops: could not load the settings of ${pluginId}`,
        reason
      );
    });
}

/**
 * Bring forward the main-area widget `isIt` picks (after `found`, e.g. a
 * reload), or add and show the one `create` makes: one tab per object,
 * however often it is opened.
 */
export function showInMain<T extends Widget>(
  shell: JupyterFrontEnd.IShell,
  isIt: (widget: Widget) => widget is T,
  create: () => T,
  found?: (widget: T) => void
): T {
  for (const widget of shell.widgets('main')) {
    if (isIt(widget)) {
      found?.(widget);
      shell.activateById(widget.id);
      return widget;
    }
  }
  const widget = create();
  shell.add(widget, 'main');
  shell.activateById(widget.id);
  return widget;
}

/** How `MainTabs` reopens its tabs after a reload. */
export interface IMainTabsOptions<T extends Widget> {
  /** The layout restorer's namespace of these tabs (unique per kind). */
  namespace: string;
  /** The command that opens a tab... */
  command: string;
  /** ...with these arguments (what identifies the tab's object). */
  args: (widget: T) => ReadonlyPartialJSONObject;
}

/**
 * Main-area tabs of one kind, one per object (`showInMain`), that
 * JupyterLab's layout restorer reopens where they were after a reload, by
 * running `command` with each tab's `args`.
 */
export class MainTabs<T extends Widget> {
  constructor(
    private _shell: JupyterFrontEnd.IShell,
    restorer: ILayoutRestorer | null,
    options: IMainTabsOptions<T>
  ) {
    this.tracker = new WidgetTracker<T>({ namespace: options.namespace });
    void restorer?.restore(this.tracker, {
      command: options.command,
      args: options.args,
      name: w => JSON.stringify(options.args(w))
    });
  }

  /** The open tabs. */
  readonly tracker: WidgetTracker<T>;

  /** `showInMain`, and a new tab is remembered for the next reload. */
  show(
    isIt: (widget: Widget) => widget is T,
    create: () => T,
    found?: (widget: T) => void
  ): T {
    return showInMain(
      this._shell,
      isIt,
      () => {
        const widget = create();
        void this.tracker.add(widget);
        return widget;
      },
      found
    );
  }
}

/** The first file selected in the file browser that `accept`s, if any. */
export function selectedFile(
  browsers: IFileBrowserFactory | null,
  accept: (path: string) => boolean
): string | null {
  const browser = browsers?.tracker.currentWidget;
  if (!browser) {
    return null;
  }
  for (const item of browser.selectedItems()) {
    if (item.type !== 'directory' && accept(item.path)) {
      return item.path;
    }
  }
  return null;
}

/**
 * The file a command on files acts on: its `path` argument, else the file
 * browser's selection, else (unless run from the browser's menu) the
 * document in the current tab, when `accept`ed; null when none.
 */
export function commandFile(
  shell: JupyterFrontEnd.IShell,
  browsers: IFileBrowserFactory | null,
  args: ReadonlyPartialJSONObject,
  accept: (path: string) => boolean
): string | null {
  if (typeof args.path === 'string') {
    return args.path;
  }
  const selected = selectedFile(browsers, accept);
  if (selected || args.fromBrowser) {
    return selected;
  }
  const open = (shell.currentWidget as { context?: { path?: unknown } } | null)
    ?.context?.path;
  return typeof open === 'string' && accept(open) ? open : null;
}

/** Ask which of `items` (one label each, e.g. the latest runs): the one chosen, or null. */
export async function pickOne<T>(
  title: string,
  items: readonly T[],
  label: (item: T) => string
): Promise<T | null> {
  if (!items.length) {
    return null;
  }
  const labels = items.map(label);
  const choice = await InputDialog.getItem({ title, items: labels });
  if (!choice.button.accept || !choice.value) {
    return null;
  }
  return items[labels.indexOf(choice.value)] ?? null;
}
