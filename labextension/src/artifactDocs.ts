/**
 * Artifacts as read-only documents: the `mlops-artifacts:` drive registered
 * with the contents manager, opening an artifact from it (no kernel: it is a
 * record of what ran), and "MLOps: Save a copy of artifact…", the one way a
 * copy lands in the user's workspace.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, ToolbarButton } from '@jupyterlab/apputils';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import type { IDocumentWidget } from '@jupyterlab/docregistry';
import { TranslationBundle } from '@jupyterlab/translation';
import { saveIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { MLOpsClient } from './api';
import {
  ARTIFACTS_DRIVE,
  artifactPath,
  ArtifactSource,
  ArtifactsDrive
} from './artifactsDrive';
import { attempt, confirmDanger } from './dialogs';
import { getSaveFile, savePath } from './saveDialog';

/** Command id of "Save a copy…". */
export const SAVE_ARTIFACT_COPY = 'jupyter-mlops:save-artifact-copy';

/** Open an artifact: its name, the text already read, where it lives. */
export type OpenArtifact = (
  name: string,
  content: string,
  source?: ArtifactSource
) => Promise<void>;

/** Whether a widget shows a document of the artifacts drive. */
function artifactWidget(widget: Widget | null): IDocumentWidget | null {
  const context = (widget as IDocumentWidget | null)?.context;
  return context?.path?.startsWith(`${ARTIFACTS_DRIVE}:`)
    ? (widget as IDocumentWidget)
    : null;
}

/** A name for a copy in the workspace: the artifact's base name. */
export function copyName(drivePath: string): string {
  return drivePath.split('/').pop() || 'artifact.ipynb';
}

/**
 * Register the drive and the "Save a copy…" command; the function that
 * opens an artifact read-only.
 */
export function addArtifactDocuments(
  app: JupyterFrontEnd,
  client: MLOpsClient,
  trans: TranslationBundle,
  docManager: IDocumentManager | null
): OpenArtifact {
  const { commands, shell } = app;
  const contents = app.serviceManager.contents;
  const drive = new ArtifactsDrive({ client });
  contents.addDrive(drive);

  /** Where the copy goes: a save dialog (a path to type without a document manager). */
  const askPath = async (name: string): Promise<string | null> => {
    if (docManager) {
      return getSaveFile({
        manager: docManager,
        trans,
        title: trans.__('Save a copy'),
        name
      });
    }
    const result = await InputDialog.getText({
      title: trans.__('Save a copy'),
      label: trans.__('Path of the copy in your workspace'),
      text: name,
      okLabel: trans.__('Save')
    });
    return result.button.accept ? savePath('', result.value ?? '') : null;
  };

  const saveCopy = async (widget: IDocumentWidget) => {
    const dest = await askPath(copyName(widget.context.path));
    if (!dest) {
      return;
    }
    await attempt(trans.__('Could not save a copy'), async () => {
      // The folder's listing (asking for a missing file would log a 404).
      const cut = dest.lastIndexOf('/');
      const folder = await contents.get(cut >= 0 ? dest.slice(0, cut) : '', {
        content: true
      });
      const exists = (folder.content as { path: string }[]).some(
        item => item.path === dest
      );
      if (
        exists &&
        !(await confirmDanger(
          trans,
          trans.__('Replace file'),
          trans.__('%1 exists. Replace it?', dest),
          trans.__('Replace')
        ))
      ) {
        return;
      }
      const model = widget.context.model;
      const notebook = widget.context.contentsModel?.type === 'notebook';
      await contents.save(dest, {
        type: notebook ? 'notebook' : 'file',
        format: notebook ? 'json' : 'text',
        content: notebook ? model.toJSON() : model.toString()
      });
      await commands.execute('docmanager:open', { path: dest });
    });
  };

  commands.addCommand(SAVE_ARTIFACT_COPY, {
    label: trans.__('MLOps: Save a copy of artifact…'),
    caption: trans.__(
      'Save the read-only artifact in this tab as a file of your workspace'
    ),
    icon: args => (args.isPalette ? undefined : saveIcon),
    isEnabled: () => artifactWidget(shell.currentWidget) !== null,
    execute: () => {
      const widget = artifactWidget(shell.currentWidget);
      return widget ? saveCopy(widget) : undefined;
    }
  });
  app.contextMenu.addItem({
    command: SAVE_ARTIFACT_COPY,
    selector: '.jp-mlops-ArtifactDocument',
    rank: 0
  });

  return async (name, content, source) => {
    const local = source
      ? artifactPath(source)
      : `runs/unknown/${copyName(name)}`;
    drive.remember(local, content);
    const path = `${ARTIFACTS_DRIVE}:${local}`;
    await attempt(trans.__('Could not open the notebook'), async () => {
      // A record of what ran: no kernel starts for it.
      const widget = (
        docManager
          ? docManager.openOrReveal(path, 'default', undefined, undefined, {
              shouldStart: false,
              canStart: false
            })
          : await commands.execute('docmanager:open', { path })
      ) as IDocumentWidget | undefined;
      if (!widget || widget.hasClass('jp-mlops-ArtifactDocument')) {
        return;
      }
      widget.addClass('jp-mlops-ArtifactDocument');
      widget.title.caption = trans.__(
        'Read-only artifact %1 (Save a copy… to edit)',
        local
      );
      widget.toolbar?.insertItem(
        0,
        'jupyter-mlops-save-copy',
        new ToolbarButton({
          icon: saveIcon,
          label: trans.__('Save a copy…'),
          tooltip: trans.__('Save an editable copy in your workspace'),
          className: 'jp-mlops-SaveCopy',
          onClick: () => void saveCopy(widget)
        })
      );
    });
  };
}
