/**
 * What every plugin of the extension does on activation: place its sidebar
 * with its Open and Refresh commands, put its commands in the palette under
 * one category, apply its settings now and on change, and open its views in
 * the main area one tab per object.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
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
