/**
 * MLflow 3 tracing over REST (docs/tracing.md), on top of `MLOpsClient`:
 * search trace infos, read one trace's info and spans, log feedback.
 */
import { MLOpsClient, quoteFilterValue } from './client';
import {
  IAssessment,
  IRawSpan,
  ISearchTracesRequest,
  ISearchTracesResponse,
  ITraceInfo
} from './traceTypes';

const enc = encodeURIComponent;

/** The filter finding the traces linked to a run. */
export function runTracesFilter(runId: string): string {
  return `trace.run_id = ${quoteFilterValue(runId)}`;
}

/** The tracing routes. */
export class TracesApi {
  constructor(readonly client: MLOpsClient) {}

  /** One page of `traces/search` (MLflow's trace filter grammar). */
  async search(request: ISearchTracesRequest): Promise<ISearchTracesResponse> {
    const answer = await this.client.request<{
      traces?: ITraceInfo[];
      next_page_token?: string;
    }>('mlflow3', 'traces/search', {
      method: 'POST',
      body: {
        locations: request.experimentIds.map(id => ({
          type: 'MLFLOW_EXPERIMENT',
          mlflow_experiment: { experiment_id: id }
        })),
        filter: request.filter || undefined,
        order_by: request.orderBy?.length ? request.orderBy : undefined,
        max_results: request.maxResults ?? 50,
        page_token: request.pageToken || undefined
      }
    });
    return {
      traces: answer.traces ?? [],
      next_page_token: answer.next_page_token || undefined
    };
  }

  /** Every trace of a search, up to `limit`. */
  async searchAll(
    request: ISearchTracesRequest,
    limit: number
  ): Promise<ITraceInfo[]> {
    const out: ITraceInfo[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.search({
        ...request,
        pageToken,
        maxResults: Math.min(500, limit - out.length)
      });
      out.push(...page.traces);
      pageToken = page.next_page_token;
    } while (pageToken && out.length < limit);
    return out;
  }

  /** A trace's info with its assessments. */
  async info(traceId: string): Promise<ITraceInfo> {
    const answer = await this.client.request<{
      trace: { trace_info: ITraceInfo };
    }>('mlflow3', `traces/${enc(traceId)}`);
    return answer.trace.trace_info;
  }

  /** A trace's spans as MLflow stores them (`traces.json`). */
  async spans(traceId: string): Promise<IRawSpan[]> {
    const answer = await this.client.request<{ spans?: IRawSpan[] }>(
      'ajax',
      'get-trace-artifact',
      { query: { request_id: traceId } }
    );
    return answer.spans ?? [];
  }

  /** Log feedback (or an expectation) on a trace. */
  async createAssessment(
    traceId: string,
    assessment: IAssessment
  ): Promise<IAssessment> {
    const answer = await this.client.request<{ assessment: IAssessment }>(
      'mlflow3',
      `traces/${enc(traceId)}/assessments`,
      { method: 'POST', body: { assessment } }
    );
    return answer.assessment;
  }
}
