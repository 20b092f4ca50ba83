import { IRun } from '../api/types';
import { runColorOf } from '../charts';
import { pickerEntries } from '../panels/KeyPicker';
import { groupFilter, keyValue, startsGroup } from '../rows';
import { orderBy, orderKey } from '../runPages';

function run(id: string, params: Record<string, string>): IRun {
  return {
    info: {
      run_id: id,
      run_uuid: id,
      experiment_id: '1',
      status: 'FINISHED',
      lifecycle_stage: 'active'
    },
    data: {
      params: Object.entries(params).map(([key, value]) => ({ key, value })),
      metrics: [{ key: 'acc', value: 0.5, timestamp: 0, step: 0 }],
      tags: [{ key: 'team', value: 'a' }]
    }
  } as IRun;
}

describe('grouping', () => {
  it('sorts by the group column first, then by the chosen sort', () => {
    const sort = { column: 'metrics.acc', descending: true };
    expect(orderBy(sort, 'params.opt')).toEqual([
      'params.`opt` ASC',
      'metrics.`acc` DESC'
    ]);
    expect(orderBy(sort, 'tags.team')[0]).toBe('tags.`team` ASC');
    expect(orderBy(sort)).toEqual(['metrics.`acc` DESC']);
    expect(orderKey('tags.a b')).toBe('tags.`a b`');
  });

  it('filters one group, within the table filter', () => {
    expect(groupFilter('params.opt', "o'k", '')).toBe("params.`opt` = 'o\\'k'");
    expect(groupFilter('tags.team', undefined, 'metrics.acc > 1')).toBe(
      'tags.`team` IS NULL AND metrics.acc > 1'
    );
  });

  it('starts a group where the value changes', () => {
    const a = run('a', { opt: 'adam' });
    const b = run('b', { opt: 'adam' });
    const c = run('c', { opt: 'sgd' });
    const d = run('d', {});
    expect(startsGroup(a, null, 'params.opt')).toBe(true);
    expect(startsGroup(b, a, 'params.opt')).toBe(false);
    expect(startsGroup(c, b, 'params.opt')).toBe(true);
    expect(startsGroup(d, c, 'params.opt')).toBe(true);
    expect(startsGroup(d, d, 'params.opt')).toBe(false);
  });

  it('reads params, metrics and tags of a run', () => {
    const r = run('a', { opt: 'adam' });
    expect(keyValue(r, 'params.opt')).toBe('adam');
    expect(keyValue(r, 'metrics.acc')).toBe(0.5);
    expect(keyValue(r, 'tags.team')).toBe('a');
    expect(keyValue(r, 'params.none')).toBeUndefined();
    expect(keyValue(r, 'name')).toBeUndefined();
  });
});

describe('key picker', () => {
  it('lists the chosen keys first, then the matches of each kind', () => {
    const keys = { params: ['lr', 'opt'], metrics: ['acc', 'loss'], tags: [] };
    const entries = pickerEntries(
      keys,
      ['metrics', 'params', 'tags'],
      ['metrics.loss', 'params.zzz'],
      ''
    );
    expect(entries.map(e => e.kind)).toEqual(['metrics', 'params', 'tags']);
    expect(entries[0].columns).toEqual(['metrics.loss', 'metrics.acc']);
    // A chosen key the server did not send (beyond its limit) stays listed.
    expect(entries[1].columns).toEqual([
      'params.zzz',
      'params.lr',
      'params.opt'
    ]);
    expect(entries[2].columns).toEqual([]);
    expect(entries.some(e => e.more)).toBe(false);
  });

  it('keeps only chosen keys matching the search', () => {
    const entries = pickerEntries(
      { params: ['lr'], metrics: [], tags: [] },
      ['params'],
      ['params.zzz', 'params.LR2'],
      'lr'
    );
    expect(entries[0].columns).toEqual(['params.LR2', 'params.lr']);
  });

  it('says when a kind has more keys than it lists', () => {
    const many = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const [entry] = pickerEntries(
      { params: many, metrics: [], tags: [] },
      ['params'],
      [],
      ''
    );
    expect(entry.more).toBe(true);
  });
});

describe('run colours', () => {
  it('gives a run the same colour in every view, runs different ones', () => {
    const id = 'f2ec1f1c3d1e4d2a9c1b0a9f8e7d6c5b';
    expect(runColorOf(id)).toBe(runColorOf(id));
    const colours = new Set(
      Array.from({ length: 20 }, (_, i) =>
        runColorOf(`${i.toString(16).padStart(32, '0')}`)
      )
    );
    expect(colours.size).toBeGreaterThan(15);
  });
});
