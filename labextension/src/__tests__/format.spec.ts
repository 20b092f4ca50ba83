import {
  formatDateTime,
  formatDuration,
  formatMetricValue,
  formatRelative,
  formatTimestamp,
  isActiveStatus,
  runDuration,
  statusLabel
} from '../format';

// Local-time dates, so the tests pass in any time zone.
const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) =>
  new Date(y, mo - 1, d, h, mi, s).getTime();

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [1000, '1s'],
    [12_345, '12s'],
    [9_999, '9.9s'],
    [59_999, '59s'],
    [60_000, '1m 00s'],
    [245_000, '4m 05s'],
    [3_600_000, '1h 00m'],
    [7_380_000, '2h 03m'],
    [86_400_000 * 3 + 3_600_000 * 4 + 59_000, '3d 4h']
  ])('%p ms -> %p', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('shows a dash for missing or impossible durations', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(undefined)).toBe('—');
    expect(formatDuration(-5)).toBe('—');
    expect(formatDuration(NaN)).toBe('—');
  });
});

describe('runDuration', () => {
  it('uses the end time when there is one', () => {
    expect(runDuration(1000, 4000, 99_000)).toBe(3000);
  });
  it('counts to now while running', () => {
    expect(runDuration(1000, undefined, 5000)).toBe(4000);
    expect(runDuration(1000, 0, 5000)).toBe(4000);
  });
  it('is unknown without a start time', () => {
    expect(runDuration(undefined, 4000, 5000)).toBeNull();
    expect(runDuration(0, 4000, 5000)).toBeNull();
  });
});

describe('formatTimestamp', () => {
  const now = at(2026, 11, 27, 15, 0, 0);
  it('shows the time for today', () => {
    expect(formatTimestamp(at(2026, 11, 27, 9, 5, 3), now)).toBe('09:05:03');
  });
  it('shows month and day earlier this year', () => {
    expect(formatTimestamp(at(2026, 3, 2, 18, 30), now)).toBe('Mar 2 18:30');
  });
  it('shows the date for other years', () => {
    expect(formatTimestamp(at(2025, 12, 31, 23, 59), now)).toBe('2025-12-31');
  });
  it('shows a dash when unknown', () => {
    expect(formatTimestamp(0, now)).toBe('—');
    expect(formatTimestamp(undefined, now)).toBe('—');
  });
});

describe('formatDateTime', () => {
  it('is zero padded local time', () => {
    expect(formatDateTime(at(2026, 1, 2, 3, 4, 5))).toBe('2026-01-02 03:04:05');
  });
});

describe('formatRelative', () => {
  const now = at(2026, 11, 27, 15, 0, 0);
  it.each([
    [now - 10_000, 'just now'],
    [now + 10_000, 'just now'],
    [now - 5 * 60_000, '5 min ago'],
    [now - 3 * 3_600_000, '3 h ago'],
    [now - 2 * 86_400_000, '2 d ago']
  ])('%p -> %p', (ms, text) => {
    expect(formatRelative(ms, now)).toBe(text);
  });
});

describe('status helpers', () => {
  it('labels every MLflow status and passes unknown ones through', () => {
    expect(statusLabel('RUNNING')).toBe('Running');
    expect(statusLabel('SCHEDULED')).toBe('Scheduled');
    expect(statusLabel('FINISHED')).toBe('Finished');
    expect(statusLabel('FAILED')).toBe('Failed');
    expect(statusLabel('KILLED')).toBe('Killed');
    expect(statusLabel('PAUSED')).toBe('PAUSED');
    expect(statusLabel(undefined)).toBe('Unknown');
  });
  it('knows which runs are still active', () => {
    expect(isActiveStatus('RUNNING')).toBe(true);
    expect(isActiveStatus('SCHEDULED')).toBe(true);
    expect(isActiveStatus('FINISHED')).toBe(false);
    expect(isActiveStatus('FAILED')).toBe(false);
  });
});

describe('formatMetricValue', () => {
  it.each([
    [3, '3'],
    [0.123456, '0.1235'],
    [12.5, '12.5'],
    [0.00001234, '1.234e-5'],
    [12345678.9, '1.235e+7'],
    ['NaN', 'NaN'],
    ['0.5', '0.5'],
    [Infinity, 'Infinity']
  ])('%p -> %p', (value, text) => {
    expect(formatMetricValue(value)).toBe(text);
  });
});
