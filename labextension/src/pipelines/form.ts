/**
 * The submit form of a pipeline, generated from its declared parameters:
 * one field per parameter (a select for enums and booleans, a number input
 * for numbers, a text area for lists and dicts), and the parsing of what was
 * typed back into typed values, with one message per bad field.
 */
import { IPipelineParam, PipelineParamType } from '../api';

/** How a field is edited. */
export type FieldWidget = 'text' | 'number' | 'select' | 'checkbox' | 'json';

/** One field of the form. */
export interface IFormField {
  name: string;
  type: PipelineParamType;
  widget: FieldWidget;
  /** The text the field starts with. */
  initial: string;
  required: boolean;
  description: string;
  /** Choices of a select (as text). */
  options: string[];
  /** `step` of a number input. */
  step?: string;
}

/** A value as text in a field. */
export function valueToText(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}

/** The fields of a pipeline's parameters, in declaration order. */
export function formFields(
  parameters: Record<string, IPipelineParam> | undefined
): IFormField[] {
  return Object.entries(parameters ?? {}).map(([name, p]) => {
    const type: PipelineParamType = p.type ?? 'string';
    const hasDefault = Object.prototype.hasOwnProperty.call(p, 'default');
    let widget: FieldWidget = 'text';
    let options: string[] = [];
    if (p.enum && p.enum.length) {
      widget = 'select';
      options = p.enum.map(valueToText);
    } else if (type === 'boolean') {
      widget = 'checkbox';
    } else if (type === 'integer' || type === 'float') {
      widget = 'number';
    } else if (type === 'list' || type === 'dict') {
      widget = 'json';
    }
    let initial = hasDefault ? valueToText(p.default) : '';
    if (widget === 'checkbox') {
      initial = hasDefault && p.default === true ? 'true' : 'false';
    } else if (widget === 'select' && !hasDefault) {
      initial = '';
    }
    return {
      name,
      type,
      widget,
      initial,
      required: !hasDefault,
      description: p.description ?? '',
      options,
      step: type === 'integer' ? '1' : type === 'float' ? 'any' : undefined
    };
  });
}

/** Typed values, or messages per field. */
export interface IParsedForm {
  values: Record<string, unknown>;
  errors: Record<string, string>;
}

/** Parse one field's text; throws an `Error` with the message. */
export function parseField(field: IFormField, text: string): unknown {
  const raw = text.trim();
  if (raw === '') {
    if (field.required) {
      throw new Error('required');
    }
    return undefined;
  }
  let value: unknown;
  switch (field.type) {
    case 'integer':
      if (!/^[-+]?\d+$/.test(raw)) {
        throw new Error(`'${raw}' is not an integer`);
      }
      value = Number(raw);
      break;
    case 'float':
      value = Number(raw);
      if (!Number.isFinite(value as number)) {
        throw new Error(`'${raw}' is not a number`);
      }
      break;
    case 'boolean':
      if (/^(true|yes|1)$/i.test(raw)) {
        value = true;
      } else if (/^(false|no|0)$/i.test(raw)) {
        value = false;
      } else {
        throw new Error(`'${raw}' is not true or false`);
      }
      break;
    case 'list':
    case 'dict': {
      try {
        value = JSON.parse(raw);
      } catch {
        throw new Error(`not valid JSON`);
      }
      const isList = Array.isArray(value);
      const isDict =
        typeof value === 'object' && value !== null && !Array.isArray(value);
      if (field.type === 'list' ? !isList : !isDict) {
        throw new Error(
          field.type === 'list'
            ? 'expects a JSON list, e.g. [1, 2]'
            : 'expects a JSON object, e.g. {"a": 1}'
        );
      }
      break;
    }
    default:
      value = text;
  }
  if (field.options.length && !field.options.includes(valueToText(value))) {
    throw new Error(`must be one of ${field.options.join(', ')}`);
  }
  return value;
}

/**
 * Parse the form: values for fields that were filled (empty optional fields
 * are left out so the pipeline's default applies) and a message for each
 * field that is wrong.
 */
export function parseForm(
  fields: IFormField[],
  texts: Record<string, string>
): IParsedForm {
  const values: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    try {
      const value = parseField(field, texts[field.name] ?? field.initial);
      if (value !== undefined) {
        values[field.name] = value;
      }
    } catch (error) {
      errors[field.name] = (error as Error).message;
    }
  }
  return { values, errors };
}

/** Format a duration in ms as `1m 05s` / `3.2 s`. */
export function formatElapsed(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return '';
  }
  if (ms < 60_000) {
    return `${(ms / 1000).toFixed(1)} s`;
  }
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}h ${String(m).padStart(2, '0')}m ${sec}s` : `${m}m ${sec}s`;
}

/** Two digits. */
function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * The run name the Run form starts with: the pipeline's name and the local
 * time ("train 2026-12-05 21:40"), so runs of one pipeline tell apart; the
 * same pattern as scheduled runs ("<schedule> <due time>").
 */
export function defaultRunName(pipeline: string, at: Date): string {
  const day = `${at.getFullYear()}-${pad2(at.getMonth() + 1)}-${pad2(at.getDate())}`;
  return `${pipeline} ${day} ${pad2(at.getHours())}:${pad2(at.getMinutes())}`;
}

/** How a pipeline run is labelled: its run name, else its pipeline's name. */
export function pipelineRunLabel(run: {
  name: string;
  run_name?: string | null;
}): string {
  return run.run_name || run.name;
}
