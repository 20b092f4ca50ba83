/**
 * Data shaping for recurring runs: a short human hint for a cron expression,
 * the browser's time zone as the form's default, the next fire time as text,
 * an existing schedule in and out of the edit form, and where it runs. The server stays the
 * judge of what a valid cron is; the hint only reads the common shapes and
 * falls back to the expression itself.
 */
import {
  IPipelineSchedule,
  IPipelineTarget,
  IUpdateScheduleRequest
} from '../api';
import { valueToText } from './form';

const DAYS = [
  'Sunday',
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday'
];

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December'
];

const NUMBER = /^\d+$/;

/** Whether every comma-separated number of a field lies in [lo, hi]. */
function within(field: string, lo: number, hi: number): boolean {
  return field
    .split(/[,-]/)
    .every(n => NUMBER.test(n) && Number(n) >= lo && Number(n) <= hi);
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** "Monday", "Monday–Friday" or "Monday, Wednesday" for a day-of-week field (or null). */
function dayNames(field: string): string | null {
  const parts: string[] = [];
  for (const part of field.split(',')) {
    const range = /^(\d)-(\d)$/.exec(part);
    if (range) {
      const [a, b] = [Number(range[1]) % 7, Number(range[2]) % 7];
      parts.push(`${DAYS[a]}–${DAYS[b]}`);
    } else if (/^\d$/.test(part)) {
      parts.push(DAYS[Number(part) % 7]);
    } else {
      return null;
    }
  }
  return parts.join(', ');
}

/** "at 06:00", "every hour at :15", … for the minute and hour fields (or null). */
function timeOfDay(minute: string, hour: string): string | null {
  if (minute === '*' && hour === '*') {
    return 'every minute';
  }
  const step = /^\*\/(\d+)$/.exec(minute);
  if (step && hour === '*') {
    return `every ${step[1]} minutes`;
  }
  if (NUMBER.test(minute) && hour === '*') {
    return `every hour at :${pad(Number(minute))}`;
  }
  const hourStep = /^\*\/(\d+)$/.exec(hour);
  if (NUMBER.test(minute) && hourStep) {
    return `every ${hourStep[1]} hours at :${pad(Number(minute))}`;
  }
  if (NUMBER.test(minute) && /^\d+(,\d+)*$/.test(hour)) {
    return `at ${hour
      .split(',')
      .map(h => `${pad(Number(h))}:${pad(Number(minute))}`)
      .join(', ')}`;
  }
  return null;
}

/**
 * A short English hint for a five-field cron expression, e.g.
 * `0 6 * * 1-5` → "at 06:00, Monday–Friday". Unusual shapes give `null`
 * (the expression is shown alone); an `@daily`-style alias is named.
 */
export function describeCron(cron: string): string | null {
  const text = cron.trim();
  const aliases: Record<string, string> = {
    '@hourly': 'every hour',
    '@daily': 'every day at 00:00',
    '@midnight': 'every day at 00:00',
    '@weekly': 'every Sunday at 00:00',
    '@monthly': 'on day 1 of every month at 00:00',
    '@yearly': 'every 1 January at 00:00',
    '@annually': 'every 1 January at 00:00'
  };
  if (aliases[text]) {
    return aliases[text];
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 5) {
    return null;
  }
  const [minute, hour, dom, month, dow] = fields;
  // numbers out of range: leave the verdict to the server, give no hint
  if (
    (NUMBER.test(minute) && !within(minute, 0, 59)) ||
    (/^[\d,]+$/.test(hour) && !within(hour, 0, 23)) ||
    (/^[\d,]+$/.test(dom) && !within(dom, 1, 31)) ||
    (/^[\d,-]+$/.test(dow) && !within(dow, 0, 7))
  ) {
    return null;
  }
  const time = timeOfDay(minute, hour);
  if (!time) {
    return null;
  }
  const when: string[] = [time];
  if (dom !== '*') {
    if (!/^\d+(,\d+)*$/.test(dom)) {
      return null;
    }
    when.push(`on day ${dom.split(',').join(', ')}`);
  }
  if (month !== '*') {
    if (!/^\d+$/.test(month) || Number(month) < 1 || Number(month) > 12) {
      return null;
    }
    when.push(`in ${MONTHS[Number(month) - 1]}`);
  }
  if (dow !== '*') {
    const days = dayNames(dow);
    if (!days) {
      return null;
    }
    when.push(days);
  } else if (dom === '*' && month === '*' && !time.startsWith('every')) {
    when.push('every day');
  }
  return when.join(', ');
}

/** The browser's IANA time zone (the schedule form's default), or `UTC`. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/**
 * A schedule's next fire time as text in its own time zone, e.g.
 * "2026-11-28 06:00 (Europe/Paris)"; "—" when there is none.
 */
export function formatNextRun(
  epochMs: number | null | undefined,
  timeZone: string
): string {
  if (epochMs === null || epochMs === undefined) {
    return '—';
  }
  const date = new Date(epochMs);
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23'
    }).formatToParts(date);
  } catch {
    return `${date.toISOString().slice(0, 16).replace('T', ' ')} (UTC)`;
  }
  const get = (type: string): string =>
    parts.find(p => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get(
    'minute'
  )} (${timeZone})`;
}

/** What the schedule form starts with when it edits a schedule. */
export interface IScheduleFormStart {
  /** The schedule's parameter values as field texts, by name. */
  texts: Record<string, string>;
  schedule: { cron: string; timezone: string };
  name: string;
  /** Where its runs go now. */
  target: string;
}

/** The form's starting values for editing `schedule`. */
export function scheduleFormStart(
  schedule: IPipelineSchedule
): IScheduleFormStart {
  const texts: Record<string, string> = {};
  for (const [name, value] of Object.entries(schedule.parameters ?? {})) {
    texts[name] = valueToText(value);
  }
  return {
    texts,
    schedule: { cron: schedule.cron, timezone: schedule.timezone },
    name: schedule.name,
    target: schedule.target || 'local'
  };
}

/**
 * The PATCH that saves the edit form: cron, time zone, the parameters (they
 * replace the stored ones) and the name; an emptied name goes back to the
 * pipeline's own, as when the schedule was created without one. The target is
 * sent only when it changed, so a schedule whose target left the server's
 * configuration can still be re-timed or paused.
 */
export function scheduleChange(
  value: {
    cron: string;
    timezone: string;
    parameters: Record<string, unknown>;
    runName: string;
    target?: string;
  },
  pipelineName: string,
  currentTarget = 'local'
): IUpdateScheduleRequest {
  const change: IUpdateScheduleRequest = {
    cron: value.cron,
    timezone: value.timezone,
    parameters: value.parameters
  };
  const name = value.runName.trim() || pipelineName;
  if (name) {
    change.name = name;
  }
  if (value.target && value.target !== currentTarget) {
    change.target = value.target;
  }
  return change;
}

/**
 * The choices of the form's Target selector: the server's targets, plus the
 * one the form starts with when the server no longer lists it (a schedule
 * whose target left the configuration shows it rather than silently moving).
 */
export function targetChoices(
  targets: IPipelineTarget[],
  current?: string,
  missingLabel = 'not configured'
): IPipelineTarget[] {
  if (!current || targets.some(t => t.name === current)) {
    return targets;
  }
  return [...targets, { name: current, display_name: missingLabel }];
}

/** Whether the schedule form offers a target: only when more than `local` exists. */
export function schedulesHaveTargets(targets: IPipelineTarget[]): boolean {
  return targets.some(t => t.name !== 'local');
}

/** The target a schedule's list item names, or null for this server's own runs. */
export function scheduleTargetLabel(
  schedule: IPipelineSchedule
): string | null {
  return schedule.target && schedule.target !== 'local'
    ? schedule.target
    : null;
}
