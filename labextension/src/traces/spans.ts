/**
 * Pure logic of the trace views: spans read from MLflow's JSON (both its
 * MLflow 3 and MLflow 2 shapes), their tree, and the waterfall's layout
 * (one row per span, depth-first, bars placed by start and end).
 */
import type { IRawSpan } from '../api/traceTypes';

/** Attributes MLflow keeps its span fields in. */
export const ATTR_TYPE = 'mlflow.spanType';
export const ATTR_INPUTS = 'mlflow.spanInputs';
export const ATTR_OUTPUTS = 'mlflow.spanOutputs';
const HIDDEN_ATTRS = new Set([
  ATTR_TYPE,
  ATTR_INPUTS,
  ATTR_OUTPUTS,
  'mlflow.traceRequestId'
]);

/** A span event (e.g. `exception`). */
export interface ISpanEvent {
  name: string;
  timeNs: number;
  attributes: Record<string, unknown>;
}

/** A span as the views use it: ids as given, times in ns, values parsed. */
export interface ISpan {
  id: string;
  parentId: string | null;
  name: string;
  type: string;
  status: 'OK' | 'ERROR' | 'UNSET';
  statusMessage: string;
  startNs: number;
  /** `null` while the span runs. */
  endNs: number | null;
  inputs: unknown;
  outputs: unknown;
  /** The other attributes, JSON values parsed. */
  attributes: Record<string, unknown>;
  events: ISpanEvent[];
}

/** An attribute value: MLflow stores JSON text; other producers plain values. */
export function parseValue(value: unknown): unknown {
  if (typeof value !== 'string') {
    return value;
  }
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function toNumber(value: unknown): number | null {
  if (value === null || value === undefined || value === '') {
    return null;
  }
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function statusOf(raw: IRawSpan): { status: ISpan['status']; message: string } {
  let code = '';
  let message = raw.status_message ?? '';
  if (typeof raw.status === 'string') {
    code = raw.status;
  } else if (raw.status) {
    code = raw.status.code ?? '';
    message = raw.status.message ?? message;
  }
  code = (code || raw.status_code || '').toUpperCase();
  if (code.endsWith('ERROR')) {
    return { status: 'ERROR', message };
  }
  if (code.endsWith('OK')) {
    return { status: 'OK', message };
  }
  return { status: 'UNSET', message };
}

function parsedValues(
  values: Record<string, unknown>
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    out[key] = parseValue(value);
  }
  return out;
}

/** One stored span for the views. */
export function readSpan(raw: IRawSpan, index = 0): ISpan {
  const attrs = raw.attributes ?? {};
  const attributes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(attrs)) {
    if (!HIDDEN_ATTRS.has(key)) {
      attributes[key] = parseValue(value);
    }
  }
  const type = parseValue(attrs[ATTR_TYPE]);
  const { status, message } = statusOf(raw);
  const start =
    toNumber(raw.start_time_unix_nano) ?? toNumber(raw.start_time) ?? 0;
  const end = toNumber(raw.end_time_unix_nano) ?? toNumber(raw.end_time);
  return {
    id: raw.span_id ?? raw.context?.span_id ?? `span-${index}`,
    parentId: raw.parent_span_id ?? raw.parent_id ?? null,
    name: raw.name ?? '',
    type: typeof type === 'string' && type ? type : 'UNKNOWN',
    status,
    statusMessage: message,
    startNs: start,
    endNs: end,
    inputs: parseValue(attrs[ATTR_INPUTS]),
    outputs: parseValue(attrs[ATTR_OUTPUTS]),
    attributes,
    events: (raw.events ?? []).map(e => ({
      name: e.name ?? '',
      timeNs: toNumber(e.time_unix_nano) ?? toNumber(e.timestamp) ?? 0,
      attributes: parsedValues(e.attributes ?? {})
    }))
  };
}

/** Did the span fail (an error status or an `exception` event)? */
export function isFailed(span: ISpan): boolean {
  return (
    span.status === 'ERROR' || span.events.some(e => e.name === 'exception')
  );
}

/** A span with its children (sorted by start). */
export interface ISpanNode {
  span: ISpan;
  children: ISpanNode[];
}

/**
 * The span tree: roots are spans without a parent or whose parent is not
 * among the spans (a partial trace); siblings in start order.
 */
export function spanTree(spans: readonly ISpan[]): ISpanNode[] {
  const nodes = new Map<string, ISpanNode>();
  for (const span of spans) {
    nodes.set(span.id, { span, children: [] });
  }
  const roots: ISpanNode[] = [];
  for (const node of nodes.values()) {
    const parent =
      node.span.parentId !== null && node.span.parentId !== node.span.id
        ? nodes.get(node.span.parentId)
        : undefined;
    (parent ? parent.children : roots).push(node);
  }
  const byStart = (a: ISpanNode, b: ISpanNode) =>
    a.span.startNs - b.span.startNs || a.span.name.localeCompare(b.span.name);
  const sort = (list: ISpanNode[]) => {
    list.sort(byStart);
    list.forEach(n => sort(n.children));
  };
  sort(roots);
  return roots;
}

/** One row of the waterfall. */
export interface IWaterfallRow {
  span: ISpan;
  depth: number;
  /** Where the bar starts, a fraction of the trace's time span (0..1). */
  offset: number;
  /** The bar's width, a fraction (0..1); a zero-length span gets 0. */
  width: number;
  /** Duration in ms (to the trace's end for a span still running). */
  durationMs: number;
  hasChildren: boolean;
  /** Ids of the ancestors, root first (for collapsing). */
  ancestors: string[];
}

/** The waterfall: rows depth-first, and the trace's time range. */
export interface IWaterfall {
  rows: IWaterfallRow[];
  startNs: number;
  endNs: number;
  totalMs: number;
}

/** Lay out the waterfall of a trace's spans. */
export function layoutWaterfall(spans: readonly ISpan[]): IWaterfall {
  if (!spans.length) {
    return { rows: [], startNs: 0, endNs: 0, totalMs: 0 };
  }
  const startNs = Math.min(...spans.map(s => s.startNs));
  const endNs = Math.max(...spans.map(s => s.endNs ?? s.startNs));
  const total = Math.max(endNs - startNs, 0);
  const rows: IWaterfallRow[] = [];
  const visit = (node: ISpanNode, depth: number, ancestors: string[]) => {
    const { span } = node;
    const end = span.endNs ?? endNs;
    const offset = total > 0 ? (span.startNs - startNs) / total : 0;
    const width = total > 0 ? Math.max(end - span.startNs, 0) / total : 0;
    rows.push({
      span,
      depth,
      offset: Math.min(Math.max(offset, 0), 1),
      width: Math.min(Math.max(width, 0), 1 - Math.min(Math.max(offset, 0), 1)),
      durationMs: Math.max(end - span.startNs, 0) / 1e6,
      hasChildren: node.children.length > 0,
      ancestors
    });
    const next = [...ancestors, span.id];
    node.children.forEach(child => visit(child, depth + 1, next));
  };
  spanTree(spans).forEach(root => visit(root, 0, []));
  return { rows, startNs, endNs, totalMs: total / 1e6 };
}

/** The rows still shown when the spans in `collapsed` hide their subtrees. */
export function visibleRows(
  rows: readonly IWaterfallRow[],
  collapsed: ReadonlySet<string>
): IWaterfallRow[] {
  if (!collapsed.size) {
    return [...rows];
  }
  return rows.filter(r => !r.ancestors.some(id => collapsed.has(id)));
}

/** The span types MLflow knows, each with its colour class. */
export const SPAN_TYPES = [
  'LLM',
  'CHAT_MODEL',
  'CHAIN',
  'AGENT',
  'TOOL',
  'RETRIEVER',
  'RERANKER',
  'EMBEDDING',
  'PARSER',
  'UNKNOWN'
] as const;

/** The CSS class colouring a span type's bars (unknown types share one). */
export function spanTypeClass(type: string): string {
  const known = (SPAN_TYPES as readonly string[]).includes(type);
  return `jp-mlops-SpanType-${known ? type : 'OTHER'}`;
}
