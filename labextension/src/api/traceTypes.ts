/**
 * MLflow 3 tracing's JSON (docs/tracing.md): trace infos (`TraceInfoV3`),
 * spans as MLflow's `Span.to_dict()` writes them (`traces.json`) and
 * assessments (feedback, expectations).
 */

/** A trace's info (times are protobuf JSON: RFC 3339 text, `"1.5s"`). */
export interface ITraceInfo {
  trace_id: string;
  trace_location?: {
    type?: string;
    mlflow_experiment?: { experiment_id: string };
  };
  request_time: string;
  execution_duration?: string;
  state: 'OK' | 'ERROR' | 'IN_PROGRESS' | 'STATE_UNSPECIFIED' | string;
  client_request_id?: string;
  request_preview?: string;
  response_preview?: string;
  trace_metadata?: Record<string, string>;
  tags?: Record<string, string>;
  assessments?: IAssessment[];
}

/** Who made an assessment. */
export interface IAssessmentSource {
  source_type: 'HUMAN' | 'LLM_JUDGE' | 'CODE' | string;
  source_id?: string;
}

/** Feedback (a judgement) or an expectation (ground truth) on a trace. */
export interface IAssessment {
  assessment_id?: string;
  assessment_name: string;
  trace_id?: string;
  span_id?: string;
  source?: IAssessmentSource;
  create_time?: string;
  last_update_time?: string;
  feedback?: { value?: unknown; error?: { error_message?: string } };
  expectation?: { value?: unknown; serialized_value?: { value?: string } };
  rationale?: string;
  metadata?: Record<string, string>;
  overrides?: string;
  valid?: boolean;
}

/**
 * A span as stored (MLflow 3's `Span.to_dict()`); MLflow 2's older shape
 * (`context`, `parent_id`, `start_time`, `status_code`) is read too.
 */
export interface IRawSpan {
  name?: string;
  span_id?: string;
  trace_id?: string;
  parent_span_id?: string | null;
  start_time_unix_nano?: number | string;
  end_time_unix_nano?: number | string | null;
  status?: { code?: string; message?: string } | string;
  attributes?: Record<string, unknown>;
  events?: Array<{
    name?: string;
    time_unix_nano?: number | string;
    timestamp?: number | string;
    attributes?: Record<string, unknown>;
  }>;
  // MLflow 2
  context?: { span_id?: string; trace_id?: string };
  parent_id?: string | null;
  start_time?: number | string;
  end_time?: number | string | null;
  status_code?: string;
  status_message?: string;
}

/** `traces/search` (v3) request. */
export interface ISearchTracesRequest {
  experimentIds: string[];
  filter?: string;
  orderBy?: string[];
  maxResults?: number;
  pageToken?: string;
}

/** One page of traces. */
export interface ISearchTracesResponse {
  traces: ITraceInfo[];
  next_page_token?: string;
}
