/**
 * Pure formatting helpers for the panels: durations, timestamps, statuses.
 *
 * No DOM and no locale surprises: output is stable across browsers so it can
 * be unit tested, and the full value goes into a tooltip.
 */
import { RunStatus } from './api/types';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * A compact duration: `850ms`, `12.3s`, `4m 05s`, `2h 03m`, `3d 4h`.
 *
 * Negative or non-finite input (clock skew, missing times) gives `—`.
 */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) {
    return '—';
  }
  if (ms < SECOND) {
    return `${Math.round(ms)}ms`;
  }
  if (ms < MINUTE) {
    // One decimal below 10 s, whole seconds above; never round up to "60s".
    const s = ms / SECOND;
    return s < 10 ? `${Math.floor(s * 10) / 10}s` : `${Math.floor(s)}s`;
  }
  if (ms < HOUR) {
    const m = Math.floor(ms / MINUTE);
    const s = Math.floor((ms % MINUTE) / SECOND);
    return `${m}m ${pad2(s)}s`;
  }
  if (ms < DAY) {
    const h = Math.floor(ms / HOUR);
    const m = Math.floor((ms % HOUR) / MINUTE);
    return `${h}h ${pad2(m)}m`;
  }
  const d = Math.floor(ms / DAY);
  const h = Math.floor((ms % DAY) / HOUR);
  return `${d}d ${h}h`;
}

/** A run's duration: end − start, or now − start while it has no end. */
export function runDuration(
  startTime: number | undefined,
  endTime: number | undefined,
  now: number
): number | null {
  if (!startTime) {
    return null;
  }
  const end = endTime ? endTime : now;
  return end - startTime;
}

/** `YYYY-MM-DD HH:MM:SS` in local time. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/**
 * A start time for a table cell, relative to `now`: `HH:MM:SS` today,
 * `Mon DD HH:MM` this year, `YYYY-MM-DD` before; `—` when unknown.
 */
export function formatTimestamp(
  ms: number | null | undefined,
  now: number
): string {
  if (!ms || !Number.isFinite(ms)) {
    return '—';
  }
  const d = new Date(ms);
  const today = new Date(now);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (
    d.getFullYear() === today.getFullYear() &&
    d.getMonth() === today.getMonth() &&
    d.getDate() === today.getDate()
  ) {
    return `${hm}:${pad2(d.getSeconds())}`;
  }
  if (d.getFullYear() === today.getFullYear()) {
    const month = MONTHS[d.getMonth()];
    return `${month} ${d.getDate()} ${hm}`;
  }
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

const MONTHS = [
  'Jan',
  'Feb',
  'Mar',
  'Apr',
  'May',
  'Jun',
  'Jul',
  'Aug',
  'Sep',
  'Oct',
  'Nov',
  'Dec'
];

/** A time relative to `now`: `just now`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function formatRelative(
  ms: number | null | undefined,
  now: number
): string {
  if (!ms || !Number.isFinite(ms)) {
    return '—';
  }
  const delta = now - ms;
  if (delta < 0) {
    return 'just now';
  }
  if (delta < 45 * SECOND) {
    return 'just now';
  }
  if (delta < HOUR) {
    return `${Math.max(1, Math.round(delta / MINUTE))} min ago`;
  }
  if (delta < DAY) {
    return `${Math.round(delta / HOUR)} h ago`;
  }
  return `${Math.round(delta / DAY)} d ago`;
}

/** Display label of a run status (MLflow sends the enum name). */
export function statusLabel(status: RunStatus | string | undefined): string {
  switch (status) {
    case 'RUNNING':
      return 'Running';
    case 'SCHEDULED':
      return 'Scheduled';
    case 'FINISHED':
      return 'Finished';
    case 'FAILED':
      return 'Failed';
    case 'KILLED':
      return 'Killed';
    default:
      return status ? String(status) : 'Unknown';
  }
}

/** Whether a run may still change (so its duration keeps growing). */
export function isActiveStatus(
  status: RunStatus | string | undefined
): boolean {
  return status === 'RUNNING' || status === 'SCHEDULED';
}

/** A metric value for a cell: up to 4 significant decimals, `NaN` kept. */
export function formatMetricValue(value: number | string): string {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof value === 'string' && Number.isNaN(n)) {
    return value;
  }
  if (!Number.isFinite(n)) {
    return String(n);
  }
  if (Number.isInteger(n)) {
    return String(n);
  }
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return n.toExponential(3);
  }
  return String(Number(n.toPrecision(4)));
}
