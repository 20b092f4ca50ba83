import { loggedModelRows, runModelsFilter } from '../models/data';

describe('loggedModelRows', () => {
  it('lists a run’s logged models newest first with their registrations', () => {
    const rows = loggedModelRows([
      {
        info: {
          model_id: 'm-old',
          name: 'clf',
          status: 'LOGGED_MODEL_READY',
          creation_timestamp_ms: 1,
          registrations: [{ name: 'churn', version: '2' }]
        }
      },
      {
        info: {
          model_id: 'm-new',
          name: 'clf',
          status: 'LOGGED_MODEL_UPLOAD_FAILED',
          creation_timestamp_ms: 5
        }
      },
      { info: { model_id: 'm-x', name: 'x' } }
    ]);
    expect(rows.map(r => r.modelId)).toEqual(['m-new', 'm-old', 'm-x']);
    expect(rows.map(r => r.status)).toEqual([
      'UPLOAD_FAILED',
      'READY',
      'UNKNOWN'
    ]);
    expect(rows[1].registrations).toEqual(['churn v2']);
    expect(rows[0].registrations).toEqual([]);
  });

  it('quotes the run id in the search filter as the registry’s parser reads it', () => {
    expect(runModelsFilter('abc123')).toBe("source_run_id = 'abc123'");
    expect(runModelsFilter("a'b\\c")).toBe("source_run_id = 'a\\'b\\\\c'");
  });
});
