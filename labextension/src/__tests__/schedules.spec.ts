import {
  browserTimeZone,
  describeCron,
  formatNextRun
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
