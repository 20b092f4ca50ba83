/**
 * A layered layout of a pipeline's DAG: each step goes in the column after
 * its deepest dependency; rows within a column follow the order of the
 * previous column's parents (a barycentre pass) to keep edges short.
 */

/** A node to lay out. */
export interface IDagNode {
  name: string;
  depends_on: string[];
}

/** A placed node (top-left corner, in pixels). */
export interface IPlacedNode {
  name: string;
  layer: number;
  row: number;
  x: number;
  y: number;
}

/** An edge between placed nodes, as a path from the parent's right side. */
export interface IPlacedEdge {
  from: string;
  to: string;
  /** SVG path data. */
  d: string;
}

/** The layout: nodes, edges, overall size. */
export interface IDagLayout {
  nodes: IPlacedNode[];
  edges: IPlacedEdge[];
  width: number;
  height: number;
}

/** Box size and gaps. */
export interface IDagMetrics {
  nodeWidth: number;
  nodeHeight: number;
  gapX: number;
  gapY: number;
  margin: number;
}

export const DEFAULT_METRICS: IDagMetrics = {
  nodeWidth: 150,
  nodeHeight: 40,
  gapX: 50,
  gapY: 18,
  margin: 10
};

/**
 * Each node's layer: 0 without (known) dependencies, else one more than its
 * deepest dependency. Unknown dependencies are ignored; a cycle (which the
 * server refuses anyway) puts its nodes after everything else instead of
 * looping.
 */
export function assignLayers(nodes: IDagNode[]): Map<string, number> {
  const byName = new Map(nodes.map(n => [n.name, n]));
  const layers = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (name: string): number => {
    const known = layers.get(name);
    if (known !== undefined) {
      return known;
    }
    if (visiting.has(name)) {
      return nodes.length; // cycle: push it to the end
    }
    visiting.add(name);
    let layer = 0;
    for (const dep of byName.get(name)?.depends_on ?? []) {
      if (byName.has(dep)) {
        layer = Math.max(layer, visit(dep) + 1);
      }
    }
    visiting.delete(name);
    layers.set(name, layer);
    return layer;
  };
  for (const n of nodes) {
    visit(n.name);
  }
  return layers;
}

/** Lay out `nodes` left to right. */
export function layoutDag(
  nodes: IDagNode[],
  metrics: IDagMetrics = DEFAULT_METRICS
): IDagLayout {
  const layers = assignLayers(nodes);
  const columns: string[][] = [];
  for (const n of nodes) {
    const l = layers.get(n.name) ?? 0;
    (columns[l] ??= []).push(n.name);
  }
  const dense = columns.filter(c => c && c.length);
  const byName = new Map(nodes.map(n => [n.name, n]));
  const rowOf = new Map<string, number>();
  dense.forEach((column, ci) => {
    if (ci > 0) {
      // Order by the mean row of the parents (stable for ties).
      const key = (name: string): number => {
        const rows = (byName.get(name)?.depends_on ?? [])
          .map(d => rowOf.get(d))
          .filter((r): r is number => r !== undefined);
        return rows.length
          ? rows.reduce((a, b) => a + b, 0) / rows.length
          : Infinity;
      };
      const order = column.map((name, i) => ({ name, i, k: key(name) }));
      order.sort((a, b) => a.k - b.k || a.i - b.i);
      column.splice(0, column.length, ...order.map(o => o.name));
    }
    column.forEach((name, row) => rowOf.set(name, row));
  });
  const { nodeWidth, nodeHeight, gapX, gapY, margin } = metrics;
  const tallest = Math.max(0, ...dense.map(c => c.length));
  const height =
    tallest > 0
      ? 2 * margin + tallest * nodeHeight + (tallest - 1) * gapY
      : 2 * margin;
  const placed = new Map<string, IPlacedNode>();
  dense.forEach((column, layer) => {
    // Centre shorter columns vertically.
    const columnHeight =
      column.length * nodeHeight + (column.length - 1) * gapY;
    const top = (height - columnHeight) / 2;
    column.forEach((name, row) => {
      placed.set(name, {
        name,
        layer,
        row,
        x: margin + layer * (nodeWidth + gapX),
        y: top + row * (nodeHeight + gapY)
      });
    });
  });
  const edges: IPlacedEdge[] = [];
  for (const n of nodes) {
    const to = placed.get(n.name)!;
    for (const dep of n.depends_on) {
      const from = placed.get(dep);
      if (!from) {
        continue;
      }
      const x1 = from.x + nodeWidth;
      const y1 = from.y + nodeHeight / 2;
      const x2 = to.x;
      const y2 = to.y + nodeHeight / 2;
      const mx = (x1 + x2) / 2;
      edges.push({
        from: dep,
        to: n.name,
        d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`
      });
    }
  }
  const width =
    dense.length > 0
      ? 2 * margin + dense.length * nodeWidth + (dense.length - 1) * gapX
      : 2 * margin;
  return {
    nodes: nodes.map(n => placed.get(n.name)!),
    edges,
    width,
    height
  };
}
