import { assignLayers, DEFAULT_METRICS, layoutDag } from '../pipelines/dag';

/** `Object.fromEntries` (the test tsconfig targets an older library). */
function entries<T>(
  pairs: Iterable<[string, T]> | Array<[string, T]>
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Array.from(pairs as Iterable<[string, T]>)) {
    out[k] = v;
  }
  return out;
}

describe('assignLayers', () => {
  it('puts each step one column after its deepest dependency', () => {
    const layers = assignLayers([
      { name: 'evaluate', depends_on: ['train', 'prepare'] },
      { name: 'train', depends_on: ['prepare'] },
      { name: 'prepare', depends_on: [] },
      { name: 'report', depends_on: [] }
    ]);
    expect(entries(layers)).toEqual({
      prepare: 0,
      train: 1,
      evaluate: 2,
      report: 0
    });
  });

  it('ignores unknown dependencies and survives a cycle', () => {
    const layers = assignLayers([
      { name: 'a', depends_on: ['ghost'] },
      { name: 'b', depends_on: ['c'] },
      { name: 'c', depends_on: ['b'] }
    ]);
    expect(layers.get('a')).toBe(0);
    expect(layers.has('b')).toBe(true);
    expect(layers.has('c')).toBe(true);
  });
});

describe('layoutDag', () => {
  const diamond = [
    { name: 'split', depends_on: [] },
    { name: 'fit_b', depends_on: ['split'] },
    { name: 'fit_a', depends_on: ['split'] },
    { name: 'pick', depends_on: ['fit_a', 'fit_b'] }
  ];

  it('places layers left to right without overlapping boxes', () => {
    const layout = layoutDag(diamond);
    const by = entries(
      layout.nodes.map(n => [n.name, n] as [string, typeof n])
    );
    expect(by.split.x).toBeLessThan(by.fit_a.x);
    expect(by.fit_a.x).toBe(by.fit_b.x);
    expect(by.fit_a.x).toBeLessThan(by.pick.x);
    const { nodeWidth, nodeHeight } = DEFAULT_METRICS;
    for (const a of layout.nodes) {
      for (const b of layout.nodes) {
        if (a === b) {
          continue;
        }
        const apart =
          a.x + nodeWidth <= b.x ||
          b.x + nodeWidth <= a.x ||
          a.y + nodeHeight <= b.y ||
          b.y + nodeHeight <= a.y;
        expect(apart).toBe(true);
      }
      // Inside the drawing.
      expect(a.x).toBeGreaterThanOrEqual(0);
      expect(a.y).toBeGreaterThanOrEqual(0);
      expect(a.x + nodeWidth).toBeLessThanOrEqual(layout.width);
      expect(a.y + nodeHeight).toBeLessThanOrEqual(layout.height);
    }
  });

  it('draws one edge per known dependency, from parent to child', () => {
    const layout = layoutDag(diamond);
    expect(layout.edges.map(e => `${e.from}->${e.to}`).sort()).toEqual([
      'fit_a->pick',
      'fit_b->pick',
      'split->fit_a',
      'split->fit_b'
    ]);
    const by = entries(
      layout.nodes.map(n => [n.name, n] as [string, typeof n])
    );
    const edge = layout.edges.find(e => e.to === 'pick')!;
    const start = edge.d.match(/^M([\d.]+),([\d.]+)/)!;
    const from = by[edge.from];
    expect(Number(start[1])).toBe(from.x + DEFAULT_METRICS.nodeWidth);
    expect(
      edge.d.endsWith(
        `${by.pick.x},${by.pick.y + DEFAULT_METRICS.nodeHeight / 2}`
      )
    ).toBe(true);
  });

  it('orders a column by its parents to avoid crossings', () => {
    const layout = layoutDag([
      { name: 'a', depends_on: [] },
      { name: 'b', depends_on: [] },
      { name: 'after_b', depends_on: ['b'] },
      { name: 'after_a', depends_on: ['a'] }
    ]);
    const by = entries(
      layout.nodes.map(n => [n.name, n] as [string, typeof n])
    );
    expect(by.after_a.y).toBeLessThan(by.after_b.y);
  });

  it('gives an empty pipeline an empty drawing', () => {
    const layout = layoutDag([]);
    expect(layout.nodes).toEqual([]);
    expect(layout.edges).toEqual([]);
  });
});
