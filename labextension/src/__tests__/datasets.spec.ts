import { IRun } from '../api';
import {
  datasetMatrix,
  datasetRows,
  schemaColumns,
  sourceLocation
} from '../panels/Datasets';

const input = (name: string, digest: string, context?: string) => ({
  dataset: {
    name,
    digest,
    source_type: 'local',
    source: JSON.stringify({ uri: `/data/${name}.csv` }),
    schema: JSON.stringify({
      mlflow_colspec: [
        { name: 'a', type: 'long', required: true },
        { name: 'b', type: 'double', required: true }
      ]
    }),
    profile: JSON.stringify({ num_rows: 2, num_elements: 4 })
  },
  tags: context ? [{ key: 'mlflow.data.context', value: context }] : []
});

const run = (id: string, inputs: ReturnType<typeof input>[]): IRun => ({
  info: { run_id: id, experiment_id: '1' } as IRun['info'],
  inputs: { dataset_inputs: inputs }
});

describe('datasets', () => {
  it('reads source, schema and profile', () => {
    const [row] = datasetRows([input('train', 'f0f3e026', 'training')]);
    expect(row).toEqual({
      id: 'train@f0f3e026',
      name: 'train',
      digest: 'f0f3e026',
      context: 'training',
      sourceType: 'local',
      source: '/data/train.csv',
      columns: ['a: long', 'b: double'],
      profile: [
        ['num_rows', '2'],
        ['num_elements', '4']
      ]
    });
  });

  it('keeps what it cannot parse as it is', () => {
    expect(sourceLocation('not json')).toBe('not json');
    expect(schemaColumns('{')).toEqual([]);
    expect(datasetRows(undefined)).toEqual([]);
  });

  it('tells which runs used which data', () => {
    const rows = datasetMatrix([
      run('r1', [
        input('train', 'd1', 'training'),
        input('test', 'd2', 'eval')
      ]),
      run('r2', [input('train', 'd9', 'training')]),
      run('r3', [])
    ]);
    expect(rows.map(r => [r.label, r.cells])).toEqual([
      ['train (d1)', ['training', undefined, undefined]],
      ['test (d2)', ['eval', undefined, undefined]],
      ['train (d9)', [undefined, 'training', undefined]]
    ]);
  });
});
