/**
 * The typed error every failed REST call turns into.
 *
 * jupyter-mlops answers client errors with MLflow's JSON, `{"error_code",
 * "message"}`. Other failures (the server extension not loaded, a proxy's HTML
 * page, a dropped connection) still become an `MLOpsApiError` with a code, so
 * panels need only one kind of error to explain.
 */

/** Code used when the request never got an HTTP answer. */
export const NETWORK_ERROR = 'NETWORK_ERROR';

/** Code used when the answer was not the MLOps API at all (e.g. HTML 404). */
export const ENDPOINT_NOT_FOUND = 'ENDPOINT_NOT_FOUND';

/** A REST call that failed, with MLflow's error code. */
export class MLOpsApiError extends Error {
  /**
   * @param message - human-readable explanation (MLflow's `message`)
   * @param errorCode - MLflow's `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST`
   * @param status - HTTP status, 0 when there was no answer
   * @param url - the request URL, for logs
   */
  constructor(
    message: string,
    readonly errorCode: string,
    readonly status: number,
    readonly url = ''
  ) {
    super(message);
    this.name = 'MLOpsApiError';
    // Keep `instanceof` working when compiled down to ES5-style classes.
    Object.setPrototypeOf(this, MLOpsApiError.prototype);
  }

  /** Whether the thing asked for does not exist (404-class codes). */
  get isNotFound(): boolean {
    return (
      this.errorCode === 'RESOURCE_DOES_NOT_EXIST' ||
      this.errorCode === 'NOT_FOUND' ||
      this.errorCode === ENDPOINT_NOT_FOUND
    );
  }

  /** Whether retrying later may help (network, 429, 5xx). */
  get isTransient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** MLflow's error code for an HTTP status, when the body names none. */
export function errorCodeForStatus(status: number): string {
  switch (status) {
    case 0:
      return NETWORK_ERROR;
    case 400:
      return 'BAD_REQUEST';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return ENDPOINT_NOT_FOUND;
    case 409:
      return 'RESOURCE_CONFLICT';
    case 429:
      return 'REQUEST_LIMIT_EXCEEDED';
    case 501:
      return 'NOT_IMPLEMENTED';
    case 503:
      return 'TEMPORARILY_UNAVAILABLE';
    case 504:
      return 'DEADLINE_EXCEEDED';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST';
  }
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/**
 * Build the error for a non-2xx answer from its status and raw body.
 *
 * Understands MLflow's `{"error_code","message"}`, Jupyter server's
 * `{"message","reason"}` and non-JSON bodies.
 */
export function errorFromResponse(
  status: number,
  bodyText: string,
  url = ''
): MLOpsApiError {
  let body: Record<string, unknown> | null = null;
  try {
    body = asRecord(JSON.parse(bodyText));
  } catch {
    body = null;
  }
  if (body) {
    const code =
      typeof body.error_code === 'string' && body.error_code
        ? body.error_code
        : errorCodeForStatus(status);
    const message =
      (typeof body.message === 'string' && body.message) ||
      (typeof body.reason === 'string' && body.reason) ||
      `HTTP ${status}`;
    return new MLOpsApiError(message, code, status, url);
  }
  const code = errorCodeForStatus(status);
  let message: string;
  if (status === 404) {
    message =
      'The MLOps API is not available on this Jupyter server ' +
      '(is the jupyter_mlops server extension installed and enabled?)';
  } else if (status === 401 || status === 403) {
    message = `Not allowed to use the MLOps API (HTTP ${status}); try reloading the page`;
  } else {
    const snippet = bodyText.trim().slice(0, 200);
    message = snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`;
  }
  return new MLOpsApiError(message, code, status, url);
}

/** The error for a request that got no HTTP answer. */
export function networkError(cause: unknown, url = ''): MLOpsApiError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new MLOpsApiError(
    `Could not reach the Jupyter server: ${detail}`,
    NETWORK_ERROR,
    0,
    url
  );
}

/** A one-line explanation of any thrown value, for the UI. */
export function describeError(error: unknown): string {
  if (error instanceof MLOpsApiError) {
    return error.errorCode === NETWORK_ERROR ||
      error.errorCode === ENDPOINT_NOT_FOUND
      ? error.message
      : `${error.message} (${error.errorCode})`;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
