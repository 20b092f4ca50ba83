/**
 * Two traces side by side: their span trees aligned by name path (a span's
 * name after its ancestors', the n-th sibling of a name as `name#n`), so the
 * same step of two requests shares a row and a step only one made has a row
 * with one side empty.
 */
import { ISpan, ISpanNode, spanTree } from './spans';

/** One row of the comparison. */
export interface IAlignedRow {
  /** `root/child/child#2`: the row's key. */
  path: string;
  name: string;
  depth: number;
  left: ISpan | null;
  right: ISpan | null;
  leftMs: number | null;
  rightMs: number | null;
  /** right − left in ms, when both sides have the span. */
  diffMs: number | null;
}

interface IKeyed {
  key: string;
  node: ISpanNode;
}

/** Children keyed by name, the n-th (from 2) repeat of a name as `name#n`. */
function keyed(nodes: readonly ISpanNode[]): IKeyed[] {
  const seen = new Map<string, number>();
  return nodes.map(node => {
    const n = (seen.get(node.span.name) ?? 0) + 1;
    seen.set(node.span.name, n);
    return { key: n > 1 ? `${node.span.name}#${n}` : node.span.name, node };
  });
}

/** Keys of both lists: the left's order, a right-only key after its predecessor. */
export function mergeKeys(
  left: readonly string[],
  right: readonly string[]
): string[] {
  const out = [...left];
  let last = -1;
  for (const key of right) {
    const at = out.indexOf(key);
    if (at >= 0) {
      last = at;
    } else {
      out.splice(last + 1, 0, key);
      last += 1;
    }
  }
  return out;
}

function durationMs(span: ISpan | null, fallbackEnd: number): number | null {
  if (!span) {
    return null;
  }
  return Math.max((span.endNs ?? fallbackEnd) - span.startNs, 0) / 1e6;
}

function lastEnd(spans: readonly ISpan[]): number {
  return spans.reduce((m, s) => Math.max(m, s.endNs ?? s.startNs), 0);
}

/** The aligned rows of two traces' spans, depth-first. */
export function alignTraces(
  left: readonly ISpan[],
  right: readonly ISpan[]
): IAlignedRow[] {
  const rows: IAlignedRow[] = [];
  const endL = lastEnd(left);
  const endR = lastEnd(right);
  const walk = (
    a: readonly ISpanNode[],
    b: readonly ISpanNode[],
    prefix: string,
    depth: number
  ) => {
    const ka = keyed(a);
    const kb = keyed(b);
    const byA = new Map(ka.map(k => [k.key, k.node]));
    const byB = new Map(kb.map(k => [k.key, k.node]));
    for (const key of mergeKeys(
      ka.map(k => k.key),
      kb.map(k => k.key)
    )) {
      const na = byA.get(key) ?? null;
      const nb = byB.get(key) ?? null;
      const l = na?.span ?? null;
      const r = nb?.span ?? null;
      const leftMs = durationMs(l, endL);
      const rightMs = durationMs(r, endR);
      const path = prefix ? `${prefix}/${key}` : key;
      rows.push({
        path,
        name: (l ?? r)?.name ?? key,
        depth,
        left: l,
        right: r,
        leftMs,
        rightMs,
        diffMs: leftMs !== null && rightMs !== null ? rightMs - leftMs : null
      });
      walk(na?.children ?? [], nb?.children ?? [], path, depth + 1);
    }
  };
  walk(spanTree(left), spanTree(right), '', 0);
  return rows;
}
