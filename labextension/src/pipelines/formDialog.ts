/**
 * The pipeline form as a dialog loop, shared by "Run", "Schedule" and
 * "Edit schedule": read the pipeline (refusing an invalid one with its
 * issues), ask, and save; wrong fields or the server's 400 bring the dialog
 * back with everything typed so far and the server's message on top.
 */
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import {
  describeError,
  IPipelineTarget,
  IValidateResponse,
  MLOpsApiError,
  MLOpsClient
} from '../api';
import { IScheduleFields, ISubmitValue, SubmitForm } from './SubmitForm';

/** A valid pipeline's description and where its runs can go. */
export interface IPipelineForForm {
  info: IValidateResponse;
  targets: IPipelineTarget[];
}

/**
 * The pipeline at `path` and the run targets, or `null` once the reason
 * (unreadable, or its issues with file, line and field) has been shown.
 */
export async function readPipeline(
  client: MLOpsClient,
  trans: TranslationBundle,
  path: string
): Promise<IPipelineForForm | null> {
  let info: IValidateResponse;
  let targets: IPipelineTarget[];
  try {
    [info, targets] = await Promise.all([
      client.validatePipeline({ path }),
      client.listPipelineTargets()
    ]);
  } catch (error) {
    await showErrorMessage(
      trans.__('Could not read the pipeline'),
      describeError(error)
    );
    return null;
  }
  if (!info.valid) {
    await showErrorMessage(
      trans.__('The pipeline is not valid'),
      info.issues
        .map(
          i =>
            `${i.file ?? path}${i.line ? `:${i.line}` : ''}: ${
              i.field ? `${i.field}: ` : ''
            }${i.message}`
        )
        .join('\n')
    );
    return null;
  }
  return { info, targets };
}

/** What the dialog shows and what saving does. */
export interface IFormDialogOptions extends IPipelineForForm {
  trans: TranslationBundle;
  title: string;
  /** Label of the accept button. */
  accept: string;
  /** Title of the error dialog when saving fails for another reason than bad values. */
  failure: string;
  /** Texts the parameter fields start with, by name (else the defaults). */
  texts?: Record<string, string>;
  /** Cron and time zone the form starts with: a schedule form. */
  schedule?: IScheduleFields;
  /** The run or schedule name the form starts with. */
  name?: string;
  /** The target the form starts with (else the server's default). */
  target?: string;
  /** Send the values; a 400 `MLOpsApiError` reopens the dialog with its message. */
  save: (value: ISubmitValue) => Promise<void>;
}

/** Ask until the values are saved (`true`) or the user cancels (`false`). */
export async function askUntilSaved(
  options: IFormDialogOptions
): Promise<boolean> {
  const { info, targets, trans } = options;
  let texts = options.texts ?? {};
  let schedule = options.schedule;
  let name = options.name ?? '';
  let target = options.target;
  let serverError = '';
  let attempted = false;
  for (;;) {
    const body = new SubmitForm(
      info,
      targets,
      trans,
      texts,
      schedule,
      name,
      target
    );
    body.showAllErrors = attempted;
    body.serverError = serverError;
    const result = await showDialog({
      title: options.title,
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: options.accept })
      ]
    });
    if (!result.button.accept || !result.value) {
      return false;
    }
    texts = body.texts;
    name = body.runName;
    target = body.target;
    if (schedule) {
      schedule = body.scheduleFields;
    }
    attempted = true;
    serverError = '';
    if (Object.keys(result.value.errors).length) {
      continue;
    }
    try {
      await options.save(result.value);
      return true;
    } catch (error) {
      if (error instanceof MLOpsApiError && error.status === 400) {
        serverError = describeError(error);
        continue;
      }
      await showErrorMessage(options.failure, describeError(error));
      return false;
    }
  }
}
