/**
 * The Jobs panel's submit form (a dialog body): entry point, framework,
 * shape, resources, parameters, environment and target; each field's problem
 * shows next to it, the server's refusal above them all. `askJobUntilSubmitted`
 * is the dialog loop: a 400 brings the form back as typed, with the message.
 */
import {
  Dialog,
  ReactWidget,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import {
  describeError,
  IJob,
  IJobTarget,
  JobsApi,
  MLOpsApiError
} from '../api';
import { FormRow, TextInput } from '../pipelines/SubmitForm';
import { formToSpec, IFormSpec, IJobFormValues } from './grid';

export { emptyJobForm } from './grid';

/** The frameworks a job can have (the environment its ranks get). */
export const FRAMEWORKS = ['generic', 'pytorch', 'tensorflow'];

/** Dialog body of "Submit training job". */
export class JobForm
  extends ReactWidget
  implements Dialog.IBodyWidget<IFormSpec & { values: IJobFormValues }>
{
  constructor(
    readonly trans: TranslationBundle,
    readonly targets: IJobTarget[],
    values: IJobFormValues
  ) {
    super();
    this.addClass('jp-mlops-SubmitForm');
    this.addClass('jp-mlops-JobForm');
    this._values = { ...values };
  }

  /** Show every field's problem (after a submission attempt). */
  showAllErrors = false;
  /** The server's refusal of the last submission. */
  serverError = '';

  getValue(): IFormSpec & { values: IJobFormValues } {
    return { ...formToSpec(this._values), values: { ...this._values } };
  }

  private _set(key: keyof IJobFormValues): (text: string) => void {
    return text => {
      this._values[key] = text;
      this._touched.add(key);
      this.update();
    };
  }

  protected render(): JSX.Element {
    const trans = this.trans;
    const v = this._values;
    const { errors } = formToSpec(v);
    const err = (key: string) =>
      this.showAllErrors || this._touched.has(key) ? errors[key] : undefined;
    const text = (
      key: keyof IJobFormValues,
      label: string,
      extra: { note?: string; help?: string; placeholder?: string } = {}
    ) => (
      <FormRow
        inputId={`jp-mlops-job-${key}`}
        label={label}
        note={extra.note}
        help={extra.help}
        error={err(key)}
        param={key}
      >
        <TextInput
          id={`jp-mlops-job-${key}`}
          name={key}
          value={v[key]}
          placeholder={extra.placeholder}
          onChange={this._set(key)}
        />
      </FormRow>
    );
    const lines = (key: 'params' | 'env', label: string, help: string) => (
      <FormRow
        inputId={`jp-mlops-job-${key}`}
        label={label}
        help={help}
        error={err(key)}
        param={key}
      >
        <textarea
          id={`jp-mlops-job-${key}`}
          name={key}
          className="jp-mod-styled"
          rows={2}
          value={v[key]}
          onChange={e => this._set(key)(e.target.value)}
        />
      </FormRow>
    );
    return (
      <form
        className="jp-mlops-SubmitForm-form"
        onSubmit={e => e.preventDefault()}
      >
        {this.serverError ? (
          <div className="jp-mlops-SubmitForm-serverError" role="alert">
            {this.serverError}
          </div>
        ) : null}
        {text('entry', trans.__('Entry point'), {
          note: trans.__('required'),
          help: trans.__(
            'A .py or .sh script or a notebook, relative to the workspace'
          ),
          placeholder: 'train.py'
        })}
        {text('name', trans.__('Job name (optional)'), {
          placeholder: trans.__('the entry point’s name')
        })}
        <FormRow inputId="jp-mlops-job-framework" label={trans.__('Framework')}>
          <select
            id="jp-mlops-job-framework"
            name="framework"
            className="jp-mod-styled"
            value={v.framework}
            onChange={e => this._set('framework')(e.target.value)}
          >
            {FRAMEWORKS.map(f => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </FormRow>
        <div className="jp-mlops-JobForm-pair">
          {text('nodes', trans.__('Nodes'))}
          {text('procsPerNode', trans.__('Processes per node'))}
        </div>
        <div className="jp-mlops-JobForm-pair">
          {text('gpu', trans.__('GPUs per node'), { placeholder: '0' })}
          {text('cpu', trans.__('CPUs per node'), { placeholder: '4' })}
          {text('memory', trans.__('Memory per node'), { placeholder: '16Gi' })}
        </div>
        {lines(
          'params',
          trans.__('Parameters'),
          trans.__('One NAME=value a line; scripts get them as --NAME=value')
        )}
        {lines(
          'env',
          trans.__('Environment'),
          trans.__('One NAME=value a line, added to every rank')
        )}
        {this.targets.some(t => t.name !== 'local' && t.name === v.target)
          ? text('image', trans.__('Image'), {
              help: trans.__(
                'The container image the ranks run in on this target (else the target’s default)'
              ),
              placeholder: 'registry.example/train:1'
            })
          : null}
        <FormRow inputId="jp-mlops-job-target" label={trans.__('Target')}>
          <select
            id="jp-mlops-job-target"
            name="target"
            className="jp-mod-styled"
            value={v.target}
            onChange={e => this._set('target')(e.target.value)}
          >
            {(this.targets.length ? this.targets : [{ name: 'local' }]).map(
              t => (
                <option key={t.name} value={t.name}>
                  {t.display_name ? `${t.display_name} (${t.name})` : t.name}
                </option>
              )
            )}
          </select>
        </FormRow>
      </form>
    );
  }

  private _values: IJobFormValues;
  private _touched = new Set<string>();
}

/**
 * Ask for a job until it is submitted (the job) or the user cancels (null);
 * wrong fields or the server's 400 bring the form back as typed.
 */
export async function askJobUntilSubmitted(
  api: JobsApi,
  trans: TranslationBundle,
  start: IJobFormValues
): Promise<IJob | null> {
  let targets: IJobTarget[] = [];
  try {
    targets = await api.targets();
  } catch (error) {
    await showErrorMessage(
      trans.__('Could not list the job targets'),
      describeError(error)
    );
    return null;
  }
  let values = start;
  let serverError = '';
  let attempted = false;
  for (;;) {
    const body = new JobForm(trans, targets, values);
    body.showAllErrors = attempted;
    body.serverError = serverError;
    const result = await showDialog({
      title: trans.__('Submit training job'),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Submit') })
      ]
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    values = result.value.values;
    attempted = true;
    serverError = '';
    if (Object.keys(result.value.errors).length) {
      continue;
    }
    try {
      return await api.submit({
        spec: result.value.spec,
        base_dir: result.value.baseDir || undefined,
        target: values.target || undefined
      });
    } catch (error) {
      if (error instanceof MLOpsApiError && error.status === 400) {
        serverError = describeError(error);
        continue;
      }
      await showErrorMessage(
        trans.__('Could not submit the job'),
        describeError(error)
      );
      return null;
    }
  }
}
