/**
 * The submit dialog's body: a form generated from the pipeline's parameters,
 * a target selector (for schedules only when more than `local` exists) and a
 * run name; errors are shown next to their field as
 * the user types, and the dialog refuses to submit while any remains.
 */
import { Dialog, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IPipelineTarget, IValidateResponse } from '../api';
import { formFields, IFormField, parseForm } from './form';
import { describeCron, schedulesHaveTargets, targetChoices } from './schedules';

/** What the dialog gives back. */
export interface ISubmitValue {
  parameters: Record<string, unknown>;
  target: string;
  runName: string;
  errors: Record<string, string>;
  /** Cron expression and time zone (schedule mode only). */
  cron: string;
  timezone: string;
}

/** The recurrence fields of the dialog in schedule mode. */
export interface IScheduleFields {
  cron: string;
  timezone: string;
}

/**
 * One labelled row of the form: the label (with an optional note such as the
 * type), the input, a help line and the field's error.
 */
export function FormRow(props: {
  inputId: string;
  label: string;
  note?: string;
  help?: string;
  helpClass?: string;
  error?: string;
  param?: string;
  children: React.ReactNode;
}): JSX.Element {
  const { inputId, label, note, help, helpClass, error, param } = props;
  return (
    <div
      className={`jp-mlops-FormField${error ? ' jp-mod-invalid' : ''}`}
      data-param={param}
    >
      <label htmlFor={inputId}>
        {label}
        {note ? <span className="jp-mlops-FormField-type">{note}</span> : null}
      </label>
      {props.children}
      {help ? (
        <div
          className={`jp-mlops-FormField-help${helpClass ? ` ${helpClass}` : ''}`}
        >
          {help}
        </div>
      ) : null}
      {error ? (
        <div className="jp-mlops-FormField-error" role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

/** A one-line text input bound to a value. */
export function TextInput(props: {
  id: string;
  name: string;
  value: string;
  onChange: (text: string) => void;
  placeholder?: string;
}): JSX.Element {
  const { id, name, value, onChange, placeholder } = props;
  return (
    <input
      id={id}
      name={name}
      className="jp-mod-styled"
      placeholder={placeholder}
      value={value}
      onChange={e => onChange(e.target.value)}
    />
  );
}

/** The input of one pipeline parameter, by its widget. */
function ParamInput(props: {
  id: string;
  field: IFormField;
  text: string;
  onChange: (text: string) => void;
}): JSX.Element {
  const { id, field, text, onChange } = props;
  switch (field.widget) {
    case 'select':
      return (
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
    case 'checkbox':
      return (
        <input
          id={id}
          name={field.name}
          type="checkbox"
          checked={text === 'true'}
          onChange={e => onChange(e.target.checked ? 'true' : 'false')}
        />
      );
    case 'json':
      return (
        <textarea
          id={id}
          name={field.name}
          className="jp-mod-styled"
          rows={2}
          value={text}
          onChange={e => onChange(e.target.value)}
        />
      );
    default:
      return (
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
}

function Field(props: {
  field: IFormField;
  text: string;
  error?: string;
  onChange: (text: string) => void;
}): JSX.Element {
  const { field, text, error, onChange } = props;
  const id = `jp-mlops-param-${field.name}`;
  return (
    <FormRow
      inputId={id}
      label={field.name}
      note={`${field.type}${field.required ? ' · required' : ''}`}
      help={field.description}
      error={error}
      param={field.name}
    >
      <ParamInput id={id} field={field} text={text} onChange={onChange} />
    </FormRow>
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
    initial: Record<string, string> = {},
    /** When given, the form creates a schedule: cron and time zone fields. */
    readonly schedule?: IScheduleFields,
    runName = '',
    /** The target the selector starts on (else the server's default). */
    target?: string
  ) {
    super();
    this.addClass('jp-mlops-SubmitForm');
    this._runName = runName;
    this._cron = schedule?.cron ?? '';
    this._timezone = schedule?.timezone ?? 'UTC';
    this._fields = formFields(info.pipeline?.parameters);
    for (const f of this._fields) {
      this._texts[f.name] = initial[f.name] ?? f.initial;
    }
    this._target =
      target ||
      (targets.find(t => t.default)?.name ?? targets[0]?.name ?? 'local');
    this._choices = targetChoices(
      targets,
      this._target,
      trans.__('not configured')
    );
  }

  /** Whether the user changed a field (errors show after the first edit or submit). */
  showAllErrors = false;

  /** The server's refusal of the last submission, shown above the fields. */
  serverError = '';

  getValue(): ISubmitValue {
    const { values, errors } = parseForm(this._fields, this._texts);
    if (this.schedule) {
      if (!this._cron.trim()) {
        errors['__cron'] = this.trans.__('A cron expression is required.');
      }
      if (!this._timezone.trim()) {
        errors['__timezone'] = this.trans.__('A time zone is required.');
      }
    }
    return {
      parameters: values,
      errors,
      target: this._target,
      runName: this._runName.trim(),
      cron: this._cron.trim(),
      timezone: this._timezone.trim()
    };
  }

  /** Texts typed so far (to reopen the dialog with them). */
  get texts(): Record<string, string> {
    return { ...this._texts };
  }

  /** Cron and time zone typed so far (schedule mode). */
  get scheduleFields(): IScheduleFields {
    return { cron: this._cron, timezone: this._timezone };
  }

  /** The run or schedule name typed so far. */
  get runName(): string {
    return this._runName;
  }

  /** The target chosen so far. */
  get target(): string {
    return this._target;
  }

  /** Runs always choose; schedules only when there is more than this server. */
  private _showTarget(): boolean {
    return !this.schedule || schedulesHaveTargets(this.targets);
  }

  /** An input handler that stores the new text through `store`, then re-renders. */
  private _edit(store: (text: string) => void): (text: string) => void {
    return text => {
      store(text);
      this.update();
    };
  }

  private _renderSchedule(): JSX.Element {
    const trans = this.trans;
    const hint = describeCron(this._cron);
    const cronError =
      this.showAllErrors && !this._cron.trim()
        ? trans.__('A cron expression is required.')
        : '';
    return (
      <>
        <FormRow
          inputId="jp-mlops-schedule-cron"
          label={trans.__('Cron expression')}
          note={trans.__('minute hour day month weekday')}
          help={hint ?? trans.__('e.g. 0 6 * * 1-5 (06:00, Monday–Friday)')}
          helpClass="jp-mlops-CronHint"
          error={cronError}
        >
          <TextInput
            id="jp-mlops-schedule-cron"
            name="cron"
            placeholder="0 6 * * 1-5"
            value={this._cron}
            onChange={this._edit(text => (this._cron = text))}
          />
        </FormRow>
        <FormRow
          inputId="jp-mlops-schedule-timezone"
          label={trans.__('Time zone')}
        >
          <TextInput
            id="jp-mlops-schedule-timezone"
            name="timezone"
            value={this._timezone}
            onChange={this._edit(text => (this._timezone = text))}
          />
        </FormRow>
      </>
    );
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
            onChange={this._edit(text => {
              this._texts[f.name] = text;
              this._touched.add(f.name);
            })}
          />
        ))}
        {this.schedule ? this._renderSchedule() : null}
        {!this._showTarget() ? null : (
          <FormRow
            inputId="jp-mlops-submit-target"
            label={trans.__('Target')}
            help={this._targetHelp()}
          >
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
              {this._choices.map(t => (
                <option key={t.name} value={t.name}>
                  {t.display_name ? `${t.display_name} (${t.name})` : t.name}
                </option>
              ))}
            </select>
          </FormRow>
        )}
        <FormRow
          inputId="jp-mlops-submit-name"
          label={
            this.schedule
              ? trans.__('Schedule name (optional)')
              : trans.__('Run name (optional)')
          }
        >
          <TextInput
            id="jp-mlops-submit-name"
            name="run_name"
            value={this._runName}
            onChange={this._edit(text => (this._runName = text))}
          />
        </FormRow>
      </form>
    );
  }

  private _fields: IFormField[];
  private _texts: Record<string, string> = {};
  private _touched = new Set<string>();
  private _target: string;
  private _choices: IPipelineTarget[];

  /** What choosing a Kubeflow target means (nothing to say for this server). */
  private _targetHelp(): string | undefined {
    const t = this.targets.find(x => x.name === this._target);
    if (t?.kind !== 'kubeflow') {
      return undefined;
    }
    return t.namespace
      ? this.trans.__(
          'Runs on Kubeflow Pipelines in namespace %1; its steps log into tracked runs here.',
          t.namespace
        )
      : this.trans.__(
          'Runs on Kubeflow Pipelines; its steps log into tracked runs here.'
        );
  }
  private _runName = '';
  private _cron: string;
  private _timezone: string;
}
