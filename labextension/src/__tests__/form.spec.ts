import {
  defaultRunName,
  pipelineRunLabel,
  formatElapsed,
  formFields,
  parseForm,
  valueToText
} from '../pipelines/form';

const params = {
  C: { type: 'float' as const, default: 1.0, description: 'regularisation' },
  epochs: { type: 'integer' as const, default: 3 },
  dataset: { type: 'string' as const },
  mode: { type: 'string' as const, default: 'fast', enum: ['fast', 'full'] },
  shuffle: { type: 'boolean' as const, default: true },
  layers: { type: 'list' as const, default: [64, 32] },
  extra: { type: 'dict' as const, default: {} }
};

/** `Object.fromEntries` (the test tsconfig targets an older library). */
function entries<T>(
  pairs: Iterable<[string, T]> | Array<[string, T]>
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Array.from(pairs as Iterable<[string, T]>)) {
    out[k] = v;
  }
  return out;
}

describe('formFields', () => {
  it('makes one field per parameter with a widget for its type', () => {
    const fields = formFields(params);
    const by = entries(fields.map(f => [f.name, f] as [string, typeof f]));
    expect(fields.map(f => f.name)).toEqual(Object.keys(params));
    expect(by.C).toMatchObject({
      widget: 'number',
      initial: '1',
      step: 'any',
      required: false,
      description: 'regularisation'
    });
    expect(by.epochs).toMatchObject({
      widget: 'number',
      initial: '3',
      step: '1'
    });
    expect(by.dataset).toMatchObject({
      widget: 'text',
      initial: '',
      required: true
    });
    expect(by.mode).toMatchObject({
      widget: 'select',
      options: ['fast', 'full'],
      initial: 'fast'
    });
    expect(by.shuffle).toMatchObject({ widget: 'checkbox', initial: 'true' });
    expect(by.layers).toMatchObject({ widget: 'json', initial: '[64,32]' });
    expect(by.extra).toMatchObject({ widget: 'json', initial: '{}' });
  });

  it('has no fields for a pipeline without parameters', () => {
    expect(formFields(undefined)).toEqual([]);
  });
});

describe('parseForm', () => {
  const fields = formFields(params);

  it('parses typed values and leaves empty optional fields to the default', () => {
    const { values, errors } = parseForm(fields, {
      C: '0.5',
      epochs: '',
      dataset: 'iris',
      shuffle: 'false',
      layers: '[8]'
    });
    expect(errors).toEqual({});
    expect(values).toEqual({
      C: 0.5,
      dataset: 'iris',
      mode: 'fast',
      shuffle: false,
      layers: [8],
      extra: {}
    });
  });

  it('names every wrong field with a reason', () => {
    const { errors } = parseForm(fields, {
      C: 'high',
      epochs: '2.5',
      dataset: '  ',
      mode: 'slow',
      layers: '{"a": 1}',
      extra: '{oops'
    });
    expect(errors).toEqual({
      C: "'high' is not a number",
      epochs: "'2.5' is not an integer",
      dataset: 'required',
      mode: 'must be one of fast, full',
      layers: 'expects a JSON list, e.g. [1, 2]',
      extra: 'not valid JSON'
    });
  });

  it('checks enums of numbers by their text', () => {
    const f = formFields({ k: { type: 'integer', enum: [1, 3, 5] } });
    expect(parseForm(f, { k: '3' })).toEqual({ values: { k: 3 }, errors: {} });
    expect(parseForm(f, { k: '4' }).errors.k).toBe('must be one of 1, 3, 5');
    expect(parseForm(f, {}).errors.k).toBe('required');
  });
});

describe('helpers', () => {
  it('formats values and durations', () => {
    expect(valueToText(null)).toBe('');
    expect(valueToText({ a: 1 })).toBe('{"a":1}');
    expect(formatElapsed(3200)).toBe('3.2 s');
    expect(formatElapsed(65_000)).toBe('1m 05s');
    expect(formatElapsed(3_726_000)).toBe('1h 02m 06s');
    expect(formatElapsed(null)).toBe('');
  });
});

describe('pipeline run names', () => {
  it('starts the Run form with the pipeline and the local time', () => {
    const at = new Date(2026, 0, 5, 7, 3);
    expect(defaultRunName('train', at)).toBe('train 2026-01-05 07:03');
  });

  it('labels a run by its own name, else its pipeline', () => {
    expect(pipelineRunLabel({ name: 'train', run_name: 'nightly x' })).toBe(
      'nightly x'
    );
    expect(pipelineRunLabel({ name: 'train', run_name: null })).toBe('train');
    expect(pipelineRunLabel({ name: 'train' })).toBe('train');
  });
});
