import {
  aliasProblem,
  isModelFolder,
  modelSummary,
  normalizeStage,
  sortModels,
  suggestModelName,
  versionRows
} from '../models/data';

describe('versionRows', () => {
  it('sorts versions numerically, newest first, and merges aliases', () => {
    const rows = versionRows(
      [
        { name: 'm', version: '2', current_stage: 'production', run_id: 'r2' },
        { name: 'm', version: '10', aliases: ['canary'], run_id: 'r10' },
        { name: 'm', version: '1', current_stage: 'Archived', source: 's1' }
      ],
      {
        name: 'm',
        aliases: [
          { alias: 'champion', version: '2' },
          { alias: 'canary', version: '10' }
        ]
      }
    );
    expect(rows.map(r => r.version)).toEqual(['10', '2', '1']);
    expect(rows.map(r => r.stage)).toEqual(['None', 'Production', 'Archived']);
    expect(rows[0].aliases).toEqual(['canary']);
    expect(rows[1].aliases).toEqual(['champion']);
    expect(rows[1].runId).toBe('r2');
    expect(rows[2].source).toBe('s1');
    expect(rows[2].runId).toBe('');
  });

  it('works without the model', () => {
    expect(versionRows([{ name: 'm', version: '1' }])[0]).toMatchObject({
      stage: 'None',
      aliases: [],
      status: 'READY'
    });
  });
});

describe('modelSummary', () => {
  it('lists staged versions in stage order and aliases', () => {
    const s = modelSummary({
      name: 'churn',
      latest_versions: [
        { name: 'churn', version: '3', current_stage: 'None' },
        { name: 'churn', version: '2', current_stage: 'Production' },
        { name: 'churn', version: '1', current_stage: 'Staging' }
      ],
      aliases: [
        { alias: 'prod', version: '2' },
        { alias: 'beta', version: '3' }
      ]
    });
    expect(s.latest).toBe('3');
    expect(s.stages).toEqual([
      { stage: 'Staging', version: '1' },
      { stage: 'Production', version: '2' }
    ]);
    expect(s.aliases).toEqual(['beta@v3', 'prod@v2']);
  });

  it('handles a model without versions', () => {
    expect(modelSummary({ name: 'empty' })).toEqual({
      name: 'empty',
      latest: '',
      stages: [],
      aliases: [],
      updated: undefined
    });
  });
});

describe('helpers', () => {
  it('normalises stage names', () => {
    expect(normalizeStage('staging')).toBe('Staging');
    expect(normalizeStage('PRODUCTION')).toBe('Production');
    expect(normalizeStage(undefined)).toBe('None');
    expect(normalizeStage('weird')).toBe('None');
  });

  it('tells a model folder by its MLmodel file', () => {
    expect(
      isModelFolder([
        { path: 'model/MLmodel', is_dir: false },
        { path: 'model/model.pkl', is_dir: false }
      ])
    ).toBe(true);
    expect(isModelFolder([{ path: 'plots/MLmodel', is_dir: true }])).toBe(
      false
    );
    expect(isModelFolder([{ path: 'x/MLmodel.txt', is_dir: false }])).toBe(
      false
    );
    expect(isModelFolder([])).toBe(false);
  });

  it('checks aliases as the registry does', () => {
    expect(aliasProblem('champion')).toBe('');
    expect(aliasProblem('blue-green_2')).toBe('');
    expect(aliasProblem('')).not.toBe('');
    expect(aliasProblem('has space')).not.toBe('');
    expect(aliasProblem('latest')).toBe("'latest' is reserved.");
    expect(aliasProblem('v3')).toBe("'v3' is reserved.");
    expect(aliasProblem('x'.repeat(256))).not.toBe('');
  });

  it('sorts models by last update, then name; suggests names', () => {
    expect(
      sortModels([
        { name: 'b', last_updated_timestamp: 1 },
        { name: 'a', last_updated_timestamp: 1 },
        { name: 'c', last_updated_timestamp: 5 }
      ]).map(m => m.name)
    ).toEqual(['c', 'a', 'b']);
    expect(suggestModelName('models/clf/')).toBe('clf');
    expect(suggestModelName('model')).toBe('model');
  });
});
