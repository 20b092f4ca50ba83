/**
 * The submit dialog's body: a form generated from the pipeline's parameters,
 * a target selector and a run name; errors are shown next to their field as
 * the user types, and the dialog refuses to submit while any remains.
 */
import { Dialog, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IPipelineTarget, IValidateResponse } from '../api';
import { formFields, IFormField, parseForm } from './form';

/** What the dialog gives back. */
export interface ISubmitValue {
  parameters: Record<string, unknown>;
  target: string;
  runName: string;
  errors: Record<string, string>;
}

function Field(props: {
  field: IFormField;
  text: string;
  error?: string;
  onChange: (text: string) => void;
}): JSX.Element {
  const { field, text, error, onChange } = props;
  const id = `jp-mlops-param-${field.name}`;
  let input: JSX.Element;
  if (field.widget === 'select') {
    input = (
      <select
        id={id}
        name={field.name}
        className="jp-mod-styled"
        value={text}
        onChange={e => onChange(e.target.value)}
      >
        {field.required && text === '' ? <option value="">—</option> : null}
        {field.options.map(o => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (field.widget === 'checkbox') {
    input = (
      <input
        id={id}
        name={field.name}
        type="checkbox"
        checked={text === 'true'}
        onChange={e => onChange(e.target.checked ? 'true' : 'false')}
      />
    );
  } else if (field.widget === 'json') {
    input = (
      <textarea
        id={id}
        name={field.name}
        className="jp-mod-styled"
        rows={2}
        value={text}
        onChange={e => onChange(e.target.value)}
      />
    );
  } else {
    input = (
      <input
        id={id}
        name={field.name}
        className="jp-mod-styled"
        type={field.widget === 'number' ? 'number' : 'text'}
        step={field.step}
        value={text}
        onChange={e => onChange(e.target.value)}
      />
    );
  }
  return (
    <div
      className={`jp-mlops-FormField${error ? ' jp-mod-invalid' : ''}`}
      data-param={field.name}
    >
      <label htmlFor={id}>
        {field.name}
        <span className="jp-mlops-FormField-type">
          {field.type}
          {field.required ? ' · required' : ''}
        </span>
      </label>
      {input}
      {field.description ? (
        <div className="jp-mlops-FormField-help">{field.description}</div>
      ) : null}
      {error ? (
        <div className="jp-mlops-FormField-error" role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

/** Dialog body of "Run pipeline". */
export class SubmitForm
  extends ReactWidget
  implements Dialog.IBodyWidget<ISubmitValue>
{
  constructor(
    readonly info: IValidateResponse,
    readonly targets: IPipelineTarget[],
    readonly trans: TranslationBundle,
    initial: Record<string, string> = {}
  ) {
    super();
    this.addClass('jp-mlops-SubmitForm');
    this._fields = formFields(info.pipeline?.parameters);
    for (const f of this._fields) {
      this._texts[f.name] = initial[f.name] ?? f.initial;
    }
    this._target =
      targets.find(t => t.default)?.name ?? targets[0]?.name ?? 'local';
  }

  /** Whether the user changed a field (errors show after the first edit or submit). */
  showAllErrors = false;

  /** The server's refusal of the last submission, shown above the fields. */
  serverError = '';

  getValue(): ISubmitValue {
    const { values, errors } = parseForm(this._fields, this._texts);
    return {
      parameters: values,
      errors,
      target: this._target,
      runName: this._runName.trim()
    };
  }

  /** Texts typed so far (to reopen the dialog with them). */
  get texts(): Record<string, string> {
    return { ...this._texts };
  }

  protected render(): JSX.Element {
    const { errors } = parseForm(this._fields, this._texts);
    const trans = this.trans;
    const p = this.info.pipeline;
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
        {p?.description ? (
          <p className="jp-mlops-SubmitForm-description">{p.description}</p>
        ) : null}
        {this._fields.length === 0 ? (
          <p className="jp-mlops-SubmitForm-none">
            {trans.__('This pipeline has no parameters.')}
          </p>
        ) : null}
        {this._fields.map(f => (
          <Field
            key={f.name}
            field={f}
            text={this._texts[f.name]}
            error={
              this.showAllErrors || this._touched.has(f.name)
                ? errors[f.name]
                : undefined
            }
            onChange={text => {
              this._texts[f.name] = text;
              this._touched.add(f.name);
              this.update();
            }}
          />
        ))}
        <div className="jp-mlops-FormField">
          <label htmlFor="jp-mlops-submit-target">{trans.__('Target')}</label>
          <select
            id="jp-mlops-submit-target"
            name="target"
            className="jp-mod-styled"
            value={this._target}
            onChange={e => {
              this._target = e.target.value;
              this.update();
            }}
          >
            {this.targets.map(t => (
              <option key={t.name} value={t.name}>
                {t.display_name ? `${t.display_name} (${t.name})` : t.name}
              </option>
            ))}
          </select>
        </div>
        <div className="jp-mlops-FormField">
          <label htmlFor="jp-mlops-submit-name">
            {trans.__('Run name (optional)')}
          </label>
          <input
            id="jp-mlops-submit-name"
            name="run_name"
            className="jp-mod-styled"
            value={this._runName}
            onChange={e => {
              this._runName = e.target.value;
              this.update();
            }}
          />
        </div>
      </form>
    );
  }

  private _fields: IFormField[];
  private _texts: Record<string, string> = {};
  private _touched = new Set<string>();
  private _target: string;
  private _runName = '';
}
