import { IPipelineSchedule } from '../api';
import { formFields, parseForm } from '../pipelines/form';
import {
  browserTimeZone,
  describeCron,
  formatNextRun,
  scheduleChange,
  scheduleFormStart,
  schedulesHaveTargets,
  scheduleTargetLabel,
  targetChoices
} from '../pipelines/schedules';

describe('describeCron', () => {
  it('reads the common shapes', () => {
    expect(describeCron('0 6 * * 1-5')).toBe('at 06:00, Monday–Friday');
    expect(describeCron('30 2 * * *')).toBe('at 02:30, every day');
    expect(describeCron('*/15 * * * *')).toBe('every 15 minutes');
    expect(describeCron('* * * * *')).toBe('every minute');
    expect(describeCron('5 * * * *')).toBe('every hour at :05');
    expect(describeCron('0 */6 * * *')).toBe('every 6 hours at :00');
    expect(describeCron('0 9,17 * * 1,3')).toBe(
      'at 09:00, 17:00, Monday, Wednesday'
    );
    expect(describeCron('0 0 1 * *')).toBe('at 00:00, on day 1');
    expect(describeCron('0 0 1 7 *')).toBe('at 00:00, on day 1, in July');
    expect(describeCron('0 12 * * 0')).toBe('at 12:00, Sunday');
    expect(describeCron(' @daily ')).toBe('every day at 00:00');
  });

  it('gives null for what it cannot read, never a wrong hint', () => {
    expect(describeCron('not a cron')).toBeNull();
    expect(describeCron('0 6 * *')).toBeNull();
    expect(describeCron('0-10/2 6 * * *')).toBeNull();
    expect(describeCron('0 6 * 13 *')).toBeNull();
    expect(describeCron('0 6 * * MON')).toBeNull();
    expect(describeCron('61 25 * * *')).toBeNull();
    expect(describeCron('0 24 * * *')).toBeNull();
    expect(describeCron('0 6 32 * *')).toBeNull();
    expect(describeCron('0 6 * * 1-9')).toBeNull();
  });
});

describe('formatNextRun', () => {
  const t = Date.UTC(2026, 2, 29, 4, 0); // 2026-03-29 04:00 UTC

  it('shows the time in the schedule own time zone', () => {
    expect(formatNextRun(t, 'UTC')).toBe('2026-03-29 04:00 (UTC)');
    // Paris is on summer time (UTC+2) from 01:00 UTC that day.
    expect(formatNextRun(t, 'Europe/Paris')).toBe(
      '2026-03-29 06:00 (Europe/Paris)'
    );
  });

  it('handles no time and an unknown zone', () => {
    expect(formatNextRun(null, 'UTC')).toBe('—');
    expect(formatNextRun(undefined, 'UTC')).toBe('—');
    expect(formatNextRun(t, 'Not/AZone')).toBe('2026-03-29 04:00 (UTC)');
  });
});

describe('browserTimeZone', () => {
  it('is a non-empty zone name', () => {
    const tz = browserTimeZone();
    expect(typeof tz).toBe('string');
    expect(tz.length).toBeGreaterThan(0);
    expect(() => formatNextRun(0, tz)).not.toThrow();
  });
});

describe('editing a schedule', () => {
  const params = {
    who: { type: 'string' as const },
    epochs: { type: 'integer' as const, default: 3 },
    lr: { type: 'float' as const, default: 0.1 },
    shuffle: { type: 'boolean' as const, default: true },
    mode: { type: 'string' as const, enum: ['fast', 'slow'], default: 'fast' },
    layers: { type: 'list' as const, default: [1] },
    extra: { type: 'dict' as const, default: {} }
  };
  const stored = {
    who: 'owl',
    epochs: 7,
    lr: 0.25,
    shuffle: false,
    mode: 'slow',
    layers: [64, 32],
    extra: { seed: 1 }
  };
  const schedule: IPipelineSchedule = {
    schedule_id: 's1',
    name: 'nightly',
    pipeline_path: 'a/train.pipeline.yaml',
    parameters: stored,
    cron: '0 6 * * 1-5',
    timezone: 'Europe/Paris',
    paused: false
  };

  it('starts the form with the schedule values, which parse back unchanged', () => {
    const start = scheduleFormStart(schedule);
    expect(start.schedule).toEqual({
      cron: '0 6 * * 1-5',
      timezone: 'Europe/Paris'
    });
    expect(start.name).toBe('nightly');
    expect(start.texts).toEqual({
      who: 'owl',
      epochs: '7',
      lr: '0.25',
      shuffle: 'false',
      mode: 'slow',
      layers: '[64,32]',
      extra: '{"seed":1}'
    });
    const parsed = parseForm(formFields(params), start.texts);
    expect(parsed.errors).toEqual({});
    expect(parsed.values).toEqual(stored);
  });

  it('leaves fields the schedule does not set to their defaults', () => {
    const start = scheduleFormStart({ ...schedule, parameters: { who: 'x' } });
    expect(start.texts).toEqual({ who: 'x' });
  });

  it('saves cron, zone, parameters and name; an emptied name is the pipeline one', () => {
    const value = {
      cron: '30 7 * * *',
      timezone: 'UTC',
      parameters: { who: 'cat' },
      runName: 'renamed'
    };
    expect(scheduleChange(value, 'train')).toEqual({
      cron: '30 7 * * *',
      timezone: 'UTC',
      parameters: { who: 'cat' },
      name: 'renamed'
    });
    expect(scheduleChange({ ...value, runName: '  ' }, 'train').name).toBe(
      'train'
    );
    expect(scheduleChange({ ...value, runName: '' }, '')).not.toHaveProperty(
      'name'
    );
  });
});

describe('where a schedule runs', () => {
  const local = { name: 'local', kind: 'local' as const, default: true };
  const cluster = { name: 'cluster', kind: 'kubeflow' as const };
  const base: IPipelineSchedule = {
    schedule_id: 's2',
    name: 'nightly',
    pipeline_path: 'train.pipeline.yaml',
    parameters: {},
    cron: '0 6 * * *',
    timezone: 'UTC',
    paused: false
  };

  it('offers a target only when more than this server exists', () => {
    expect(schedulesHaveTargets([local])).toBe(false);
    expect(schedulesHaveTargets([local, cluster])).toBe(true);
  });

  it('starts the edit form on the schedule target (older servers: local)', () => {
    expect(scheduleFormStart({ ...base, target: 'cluster' }).target).toBe(
      'cluster'
    );
    expect(scheduleFormStart(base).target).toBe('local');
  });

  it('sends the target only when it changed', () => {
    const value = {
      cron: '0 6 * * *',
      timezone: 'UTC',
      parameters: {},
      runName: 'nightly'
    };
    expect(
      scheduleChange({ ...value, target: 'cluster' }, 'p', 'local').target
    ).toBe('cluster');
    expect(
      scheduleChange({ ...value, target: 'cluster' }, 'p', 'cluster')
    ).not.toHaveProperty('target');
    expect(scheduleChange(value, 'p', 'cluster')).not.toHaveProperty('target');
  });

  it('keeps a target that left the configuration visible in the choices', () => {
    expect(targetChoices([local, cluster], 'cluster')).toEqual([
      local,
      cluster
    ]);
    expect(targetChoices([local], 'gone', 'missing')).toEqual([
      local,
      { name: 'gone', display_name: 'missing' }
    ]);
    expect(targetChoices([local])).toEqual([local]);
  });

  it('names a non-local target in the list', () => {
    expect(scheduleTargetLabel({ ...base, target: 'cluster' })).toBe('cluster');
    expect(scheduleTargetLabel({ ...base, target: 'local' })).toBeNull();
    expect(scheduleTargetLabel(base)).toBeNull();
  });
});
