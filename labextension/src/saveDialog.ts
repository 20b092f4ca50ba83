/**
 * A "save as" file dialog: browse the workspace's folders (and make new
 * ones), type or pick a file name. JupyterLab's `FileDialog` only opens
 * files and folders; this is its save counterpart, built from the same
 * file browser.
 */
import { Dialog, showDialog, ToolbarButton } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import { FileBrowser, FilterFileBrowserModel } from '@jupyterlab/filebrowser';
import { TranslationBundle } from '@jupyterlab/translation';
import { newFolderIcon } from '@jupyterlab/ui-components';
import { PanelLayout, Widget } from '@lumino/widgets';

/** Where the file goes: `folder` (the browser's) joined with a typed `name`. */
export function savePath(folder: string, name: string): string {
  const clean = name.trim().replace(/^\/+/, '');
  return clean ? PathExt.join(folder, clean) : '';
}

let dialogs = 0;

/** The dialog's body: a file browser over a name field. */
class SaveFileBody extends Widget implements Dialog.IBodyWidget<string> {
  constructor(
    manager: IDocumentManager,
    trans: TranslationBundle,
    name: string,
    folder: string
  ) {
    super();
    this.addClass('jp-mlops-SaveFileDialog');
    this._model = new FilterFileBrowserModel({ manager });
    this._browser = new FileBrowser({
      id: `jp-mlops-save-file-${++dialogs}`,
      model: this._model,
      restore: false,
      // A double-clicked file is the name to save under, not one to open.
      handleOpenFile: path => {
        this._input.value = PathExt.basename(path);
      }
    });
    this._browser.toolbar.addItem(
      'new-folder',
      new ToolbarButton({
        icon: newFolderIcon,
        tooltip: trans.__('New folder'),
        onClick: () => void this._browser.createNewDirectory()
      })
    );
    this._browser.node.addEventListener('click', () => {
      // A file picked in the listing: save over it (asked before replacing).
      const first = this._browser.selectedItems().next();
      const item = first && !first.done ? first.value : undefined;
      if (item && item.type !== 'directory') {
        this._input.value = item.name;
      }
    });
    const row = new Widget();
    row.addClass('jp-mlops-SaveFileDialog-name');
    const label = document.createElement('label');
    label.textContent = trans.__('File name');
    this._input = document.createElement('input');
    this._input.className = 'jp-mod-styled';
    this._input.name = 'save-name';
    this._input.value = name;
    label.appendChild(this._input);
    row.node.appendChild(label);
    const layout = new PanelLayout();
    layout.addWidget(this._browser);
    layout.addWidget(row);
    this.layout = layout;
    void this._model.cd(folder).catch(() => undefined);
  }

  /** The path to save to ('' when no name is typed). */
  getValue(): string {
    return savePath(this._model.path, this._input.value);
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._model.dispose();
    }
    super.dispose();
  }

  /** Focus the name, with its stem selected (the extension kept). */
  protected onAfterAttach(): void {
    const dot = this._input.value.lastIndexOf('.');
    this._input.focus();
    this._input.setSelectionRange(0, dot > 0 ? dot : this._input.value.length);
  }

  private _model: FilterFileBrowserModel;
  private _browser: FileBrowser;
  private _input: HTMLInputElement;
}

/**
 * Ask where to save a file: the chosen path, or null when cancelled or no
 * name was given.
 */
export async function getSaveFile(options: {
  manager: IDocumentManager;
  trans: TranslationBundle;
  title: string;
  /** The name the field starts with. */
  name: string;
  /** The folder the browser starts in (default: the workspace's root). */
  folder?: string;
}): Promise<string | null> {
  const { trans } = options;
  const result = await showDialog({
    title: options.title,
    body: new SaveFileBody(
      options.manager,
      trans,
      options.name,
      options.folder ?? ''
    ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Save') })
    ],
    // Enter in the name field saves; the listing has its own keys.
    focusNodeSelector: 'input[name="save-name"]'
  });
  return result.button.accept && result.value ? result.value : null;
}
