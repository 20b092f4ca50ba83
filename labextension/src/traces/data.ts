/**
 * Pure helpers of the trace views: times of MLflow's trace JSON, previews,
 * assessment values, and a run's evaluation results (one row per trace, one
 * column per scorer, the scorers' aggregates).
 */
import type { IAssessment, ITraceInfo } from '../api/traceTypes';

/** Milliseconds of a protobuf JSON Duration (`"1.5s"`); `null` when absent. */
export function durationMs(value: string | undefined | null): number | null {
  if (!value) {
    return null;
  }
  const n = Number(value.endsWith('s') ? value.slice(0, -1) : value);
  return Number.isFinite(n) ? n * 1000 : null;
}

/** Epoch ms of a protobuf JSON Timestamp (RFC 3339 text). */
export function timestampMs(value: string | undefined | null): number | null {
  if (!value) {
    return null;
  }
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : null;
}

/** A latency for people: `850 ms`, `1.25 s`, `2 min 5 s`. */
export function formatLatency(ms: number | null): string {
  if (ms === null) {
    return '';
  }
  if (ms === 0) {
    return '0 ms';
  }
  if (ms < 1) {
    return `${Math.round(ms * 1000)} µs`;
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  if (ms < 60_000) {
    return `${(ms / 1000).toFixed(2)} s`;
  }
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** A signed latency difference: `+12 ms`, `−1.20 s`. */
export function formatDiff(ms: number | null): string {
  if (ms === null) {
    return '';
  }
  const sign = ms > 0 ? '+' : ms < 0 ? '−' : '±';
  return sign + formatLatency(Math.abs(ms));
}

/**
 * A request/response preview on one line: MLflow stores JSON text; a
 * one-key object (`{"question": "…"}`) shows its value.
 */
export function previewText(preview: string | undefined, max = 200): string {
  if (!preview) {
    return '';
  }
  let text = preview;
  try {
    const value: unknown = JSON.parse(preview);
    if (typeof value === 'string') {
      text = value;
    } else if (
      value &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      Object.keys(value).length === 1
    ) {
      const only = Object.values(value)[0];
      text = typeof only === 'string' ? only : JSON.stringify(only);
    }
  } catch {
    // A preview cut at 1000 characters is no longer JSON: show it as it is.
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** An assessment's value (feedback or expectation). */
export function assessmentValue(a: IAssessment): unknown {
  if (a.feedback) {
    return a.feedback.value;
  }
  if (a.expectation) {
    if ('value' in a.expectation) {
      return a.expectation.value;
    }
    const text = a.expectation.serialized_value?.value;
    try {
      return text === undefined ? undefined : JSON.parse(text);
    } catch {
      return text;
    }
  }
  return undefined;
}

/** A value on one line: strings as they are, the rest as JSON. */
export function valueText(value: unknown): string {
  if (value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The assessments in force: an overridden or invalid one is left out. */
export function validAssessments(info: ITraceInfo): IAssessment[] {
  return (info.assessments ?? []).filter(a => a.valid !== false);
}

/** A trace's tags without MLflow's own (`mlflow.*`). */
export function userTags(info: ITraceInfo): [string, string][] {
  return Object.entries(info.tags ?? {})
    .filter(([k]) => !k.startsWith('mlflow.'))
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * Tokens the trace used (MLflow's `mlflow.trace.tokenUsage` metadata, set by
 * its LLM integrations: `{"input_tokens", "output_tokens", "total_tokens"}`).
 */
export function tokenUsage(info: ITraceInfo): number | null {
  const raw = info.trace_metadata?.['mlflow.trace.tokenUsage'];
  if (!raw) {
    return null;
  }
  try {
    const usage = JSON.parse(raw) as Record<string, unknown>;
    const total = Number(usage.total_tokens);
    if (Number.isFinite(total)) {
      return total;
    }
    const sum =
      Number(usage.input_tokens ?? 0) + Number(usage.output_tokens ?? 0);
    return Number.isFinite(sum) ? sum : null;
  } catch {
    return null;
  }
}

/** The trace's name (its root span's). */
export function traceName(info: ITraceInfo): string {
  return info.tags?.['mlflow.traceName'] ?? '';
}

/** Aggregates of one scorer over a run's rows. */
export interface IScorerSummary {
  name: string;
  /** Rows with a value. */
  count: number;
  /** Mean of numeric values (booleans as 1/0, `yes`/`no` as 1/0). */
  mean: number | null;
  /** Share of true/`yes`/`pass` among boolean-like values. */
  passRate: number | null;
  /** Rows whose scorer failed (feedback with an error). */
  errors: number;
}

/** One evaluated row. */
export interface IEvalRow {
  traceId: string;
  request: string;
  response: string;
  state: string;
  latencyMs: number | null;
  /** Feedback values by scorer name. */
  scores: Record<string, unknown>;
  /** Expectations by name. */
  expectations: Record<string, unknown>;
}

/** A run's evaluation: rows, scorer names, aggregates. */
export interface IEvalResults {
  rows: IEvalRow[];
  scorers: string[];
  expectations: string[];
  summaries: IScorerSummary[];
}

const TRUE = new Set(['yes', 'true', 'pass', 'passed', 'correct']);
const FALSE = new Set(['no', 'false', 'fail', 'failed', 'incorrect']);

/** A value as a number for the mean, `null` when it is not one. */
function asNumber(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return value;
  }
  if (typeof value === 'boolean') {
    return value ? 1 : 0;
  }
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (TRUE.has(v)) {
      return 1;
    }
    if (FALSE.has(v)) {
      return 0;
    }
  }
  return null;
}

function isBooleanLike(value: unknown): boolean {
  if (typeof value === 'boolean') {
    return true;
  }
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    return TRUE.has(v) || FALSE.has(v);
  }
  return false;
}

/** The evaluation results of a run's traces (oldest first, as evaluated). */
export function evaluationResults(traces: readonly ITraceInfo[]): IEvalResults {
  const scorers = new Set<string>();
  const expectationNames = new Set<string>();
  const errors = new Map<string, number>();
  const rows: IEvalRow[] = [];
  const sorted = [...traces].sort(
    (a, b) =>
      (timestampMs(a.request_time) ?? 0) - (timestampMs(b.request_time) ?? 0)
  );
  for (const info of sorted) {
    const scores: Record<string, unknown> = {};
    const expectations: Record<string, unknown> = {};
    for (const a of validAssessments(info)) {
      if (a.feedback) {
        scorers.add(a.assessment_name);
        if (a.feedback.error) {
          errors.set(
            a.assessment_name,
            (errors.get(a.assessment_name) ?? 0) + 1
          );
        } else {
          scores[a.assessment_name] = assessmentValue(a);
        }
      } else if (a.expectation) {
        expectationNames.add(a.assessment_name);
        expectations[a.assessment_name] = assessmentValue(a);
      }
    }
    rows.push({
      traceId: info.trace_id,
      request: previewText(info.request_preview),
      response: previewText(info.response_preview),
      state: info.state,
      latencyMs: durationMs(info.execution_duration),
      scores,
      expectations
    });
  }
  const names = [...scorers].sort();
  const summaries = names.map(name => {
    const values = rows
      .map(r => r.scores[name])
      .filter(v => v !== undefined && v !== null);
    const numbers = values.map(asNumber).filter((n): n is number => n !== null);
    const bools = values.filter(isBooleanLike);
    return {
      name,
      count: values.length,
      mean: numbers.length
        ? numbers.reduce((s, n) => s + n, 0) / numbers.length
        : null,
      passRate: bools.length
        ? bools.filter(v => asNumber(v) === 1).length / bools.length
        : null,
      errors: errors.get(name) ?? 0
    };
  });
  return {
    rows,
    scorers: names,
    expectations: [...expectationNames].sort(),
    summaries
  };
}
