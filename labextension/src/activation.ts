/**
 * What every plugin of the extension does on activation: put its commands in
 * the palette under one category, and apply its settings now and on change.
 */
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

/** Palette category of all the extension's commands. */
export const PALETTE_CATEGORY = 'MLOps';

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
