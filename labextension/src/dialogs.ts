/**
 * The two dialog habits of the extension's commands: do something and show
 * why it failed, and ask before a destructive action.
 */
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { describeError } from './api';

/**
 * Run `work`; a failure is shown in an error dialog titled `title` (with the
 * server's message). Resolves to whether `work` succeeded.
 */
export async function attempt(
  title: string,
  work: () => Promise<unknown>
): Promise<boolean> {
  try {
    await work();
    return true;
  } catch (error) {
    await showErrorMessage(title, describeError(error));
    return false;
  }
}

/** Ask "Cancel or `action`?" with a warning-styled button; resolves to whether to go on. */
export async function confirmDanger(
  trans: TranslationBundle,
  title: string,
  body: string,
  action: string
): Promise<boolean> {
  const answer = await showDialog({
    title,
    body,
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: action })
    ]
  });
  return answer.button.accept;
}
