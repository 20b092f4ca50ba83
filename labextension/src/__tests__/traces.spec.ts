import { alignTraces, mergeKeys } from '../traces/align';
import {
  durationMs,
  evaluationResults,
  formatDiff,
  formatLatency,
  previewText,
  tokenUsage
} from '../traces/data';
import {
  isFailed,
  ISpan,
  layoutWaterfall,
  readSpan,
  spanTree,
  spanTypeClass,
  visibleRows
} from '../traces/spans';
import type { IAssessment, ITraceInfo } from '../api/traceTypes';

const MS = 1_000_000;
const T0 = 1_700_000_000_000 * MS;

/** A span in MLflow 3's stored shape, times in ms after T0. */
function raw(
  id: string,
  parent: string | null,
  name: string,
  start: number,
  end: number | null,
  extra: Record<string, unknown> = {}
) {
  return {
    span_id: id,
    parent_span_id: parent,
    name,
    start_time_unix_nano: T0 + start * MS,
    end_time_unix_nano: end === null ? null : T0 + end * MS,
    status: { code: 'STATUS_CODE_OK', message: '' },
    attributes: { 'mlflow.spanType': '"CHAIN"' },
    ...extra
  };
}

function span(
  id: string,
  parent: string | null,
  name: string,
  start: number,
  end: number | null
): ISpan {
  return readSpan(raw(id, parent, name, start, end));
}

describe('readSpan', () => {
  it("parses MLflow's JSON attribute values and keeps its fields apart", () => {
    const s = readSpan(
      raw('a', null, 'answer', 0, 10, {
        attributes: {
          'mlflow.spanType': '"TOOL"',
          'mlflow.spanInputs': '{"q": "hi"}',
          'mlflow.spanOutputs': '"doc1"',
          'mlflow.traceRequestId': '"tr-1"',
          k: '3',
          plain: 'not json'
        },
        status: { code: 'STATUS_CODE_ERROR', message: 'ValueError: x' },
        events: [
          {
            name: 'exception',
            time_unix_nano: T0 + 9 * MS,
            attributes: { 'exception.type': 'ValueError' }
          }
        ]
      })
    );
    expect(s.type).toBe('TOOL');
    expect(s.inputs).toEqual({ q: 'hi' });
    expect(s.outputs).toBe('doc1');
    expect(s.attributes).toEqual({ k: 3, plain: 'not json' });
    expect(s.status).toBe('ERROR');
    expect(s.statusMessage).toBe('ValueError: x');
    expect(isFailed(s)).toBe(true);
    expect(s.events[0].attributes['exception.type']).toBe('ValueError');
  });

  it("reads MLflow 2's shape (context, parent_id, status_code)", () => {
    const s = readSpan({
      name: 'old',
      context: { span_id: '0x01', trace_id: 't' },
      parent_id: '0x00',
      start_time: 5,
      end_time: 9,
      status_code: 'OK',
      attributes: {}
    });
    expect([s.id, s.parentId, s.startNs, s.endNs]).toEqual([
      '0x01',
      '0x00',
      5,
      9
    ]);
    expect(s.status).toBe('OK');
    expect(s.type).toBe('UNKNOWN');
    expect(isFailed(s)).toBe(false);
  });
});

describe('layoutWaterfall', () => {
  const spans = [
    span('c2', 'b', 'leaf', 60, 90),
    span('a', null, 'root', 0, 100),
    span('b', 'a', 'middle', 10, 95),
    span('c1', 'b', 'leaf', 20, 50),
    span('d', 'a', 'running', 96, null)
  ];

  it('orders rows depth-first, siblings by start, with depths and ancestors', () => {
    const w = layoutWaterfall(spans);
    expect(w.rows.map(r => [r.span.id, r.depth])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c1', 2],
      ['c2', 2],
      ['d', 1]
    ]);
    expect(w.rows[2].ancestors).toEqual(['a', 'b']);
    expect(w.rows[0].hasChildren).toBe(true);
    expect(w.rows[2].hasChildren).toBe(false);
    expect(w.totalMs).toBe(100);
  });

  it('places bars by start and end as fractions of the trace', () => {
    const rows = layoutWaterfall(spans).rows;
    const c1 = rows.find(r => r.span.id === 'c1')!;
    expect(c1.offset).toBeCloseTo(0.2);
    expect(c1.width).toBeCloseTo(0.3);
    expect(c1.durationMs).toBeCloseTo(30);
    // A running span lasts to the trace's end.
    const d = rows.find(r => r.span.id === 'd')!;
    expect(d.offset + d.width).toBeCloseTo(1);
    expect(d.durationMs).toBeCloseTo(4);
  });

  it('hides the subtrees of collapsed spans', () => {
    const rows = layoutWaterfall(spans).rows;
    expect(visibleRows(rows, new Set(['b'])).map(r => r.span.id)).toEqual([
      'a',
      'b',
      'd'
    ]);
    expect(visibleRows(rows, new Set()).length).toBe(5);
  });

  it('makes roots of orphans and survives empty and zero-length traces', () => {
    expect(layoutWaterfall([]).rows).toEqual([]);
    const w = layoutWaterfall([
      span('x', 'missing', 'orphan', 0, 0),
      span('y', 'y', 'self-parent', 0, 0)
    ]);
    expect(w.rows.map(r => r.depth)).toEqual([0, 0]);
    expect(w.rows.every(r => r.offset === 0 && r.width === 0)).toBe(true);
    expect(spanTree([span('p', null, 'p', 0, 1)])[0].children).toEqual([]);
  });

  it('colours known span types and groups the rest', () => {
    expect(spanTypeClass('LLM')).toBe('jp-mlops-SpanType-LLM');
    expect(spanTypeClass('MY_TYPE')).toBe('jp-mlops-SpanType-OTHER');
  });
});

describe('alignTraces', () => {
  it('merges keys keeping the left order, right-only after their predecessor', () => {
    expect(mergeKeys(['a', 'b', 'c'], ['a', 'x', 'c', 'y'])).toEqual([
      'a',
      'x',
      'b',
      'c',
      'y'
    ]);
    expect(mergeKeys([], ['p', 'q'])).toEqual(['p', 'q']);
  });

  it('aligns spans by name path, repeats by occurrence, with latency diffs', () => {
    const left = [
      span('r', null, 'agent', 0, 100),
      span('t1', 'r', 'tool', 10, 30),
      span('t2', 'r', 'tool', 40, 60),
      span('l', 'r', 'llm', 70, 90)
    ];
    const right = [
      span('R', null, 'agent', 0, 200),
      span('T1', 'R', 'tool', 10, 20),
      span('S', 'R', 'search', 25, 60),
      span('L', 'R', 'llm', 70, 190)
    ];
    const rows = alignTraces(left, right);
    expect(rows.map(r => [r.path, r.depth])).toEqual([
      ['agent', 0],
      ['agent/tool', 1],
      ['agent/search', 1],
      ['agent/tool#2', 1],
      ['agent/llm', 1]
    ]);
    const by = new Map(rows.map(r => [r.path, r]));
    expect(by.get('agent')!.diffMs).toBeCloseTo(100);
    expect(by.get('agent/tool')!.diffMs).toBeCloseTo(-10);
    expect(by.get('agent/search')!.left).toBeNull();
    expect(by.get('agent/search')!.diffMs).toBeNull();
    expect(by.get('agent/tool#2')!.right).toBeNull();
    expect(by.get('agent/tool#2')!.leftMs).toBeCloseTo(20);
    expect(by.get('agent/llm')!.rightMs).toBeCloseTo(120);
  });
});

describe('trace data helpers', () => {
  it('reads durations and formats latencies', () => {
    expect(durationMs('1.250s')).toBe(1250);
    expect(durationMs(undefined)).toBeNull();
    expect(durationMs('bad')).toBeNull();
    expect(formatLatency(0.5)).toBe('500 µs');
    expect(formatLatency(0)).toBe('0 ms');
    expect(formatLatency(850)).toBe('850 ms');
    expect(formatLatency(1250)).toBe('1.25 s');
    expect(formatLatency(125_000)).toBe('2 min 5 s');
    expect(formatDiff(12)).toBe('+12 ms');
    expect(formatDiff(-1200)).toBe('−1.20 s');
    expect(formatDiff(null)).toBe('');
  });

  it('shows previews on one line, a one-key object by its value', () => {
    expect(previewText('{"question": "what\\nis it"}')).toBe('what is it');
    expect(previewText('{"a": 1, "b": 2}')).toBe('{"a": 1, "b": 2}');
    expect(previewText('"text"')).toBe('text');
    expect(previewText('{"cut": "abc')).toBe('{"cut": "abc');
    expect(previewText('x'.repeat(50), 10)).toBe('xxxxxxxxx…');
  });
});

describe('tokenUsage', () => {
  const info = (meta?: Record<string, string>): ITraceInfo => ({
    trace_id: 't',
    request_time: '2026-01-01T00:00:00Z',
    state: 'OK',
    trace_metadata: meta
  });
  it("reads MLflow's token usage metadata", () => {
    const key = 'mlflow.trace.tokenUsage';
    expect(tokenUsage(info({ [key]: '{"total_tokens": 42}' }))).toBe(42);
    expect(
      tokenUsage(info({ [key]: '{"input_tokens": 3, "output_tokens": 4}' }))
    ).toBe(7);
    expect(tokenUsage(info({ [key]: 'not json' }))).toBeNull();
    expect(tokenUsage(info())).toBeNull();
  });
});

describe('evaluationResults', () => {
  const feedback = (
    name: string,
    value: unknown,
    extra: Partial<IAssessment> = {}
  ): IAssessment => ({ assessment_name: name, feedback: { value }, ...extra });
  const trace = (
    id: string,
    time: string,
    assessments: IAssessment[]
  ): ITraceInfo => ({
    trace_id: id,
    request_time: time,
    state: 'OK',
    execution_duration: '0.010s',
    request_preview: '{"question": "q"}',
    response_preview: '"a"',
    assessments
  });

  it('makes one row per trace in time order, one column per scorer, and aggregates', () => {
    const results = evaluationResults([
      trace('t2', '2026-01-01T00:00:02Z', [
        feedback('exact_match', false),
        feedback('length', 3),
        { assessment_name: 'answer', expectation: { value: 'A' } }
      ]),
      trace('t1', '2026-01-01T00:00:01Z', [
        feedback('exact_match', true),
        feedback('length', 5),
        feedback('exact_match', false, { valid: false })
      ]),
      trace('t3', '2026-01-01T00:00:03Z', [
        feedback('exact_match', 'yes'),
        {
          assessment_name: 'length',
          feedback: { error: { error_message: 'boom' } }
        }
      ])
    ]);
    expect(results.rows.map(r => r.traceId)).toEqual(['t1', 't2', 't3']);
    expect(results.scorers).toEqual(['exact_match', 'length']);
    expect(results.expectations).toEqual(['answer']);
    expect(results.rows[0].scores.exact_match).toBe(true);
    expect(results.rows[1].expectations.answer).toBe('A');
    expect(results.rows[0].request).toBe('q');
    expect(results.rows[0].latencyMs).toBe(10);
    const [exact, length] = results.summaries;
    expect(exact.count).toBe(3);
    expect(exact.mean).toBeCloseTo(2 / 3);
    expect(exact.passRate).toBeCloseTo(2 / 3);
    expect(length.mean).toBe(4);
    expect(length.passRate).toBeNull();
    expect(length.errors).toBe(1);
  });
});
