import {
  describeError,
  ENDPOINT_NOT_FOUND,
  errorCodeForStatus,
  errorFromResponse,
  MLOpsApiError,
  NETWORK_ERROR,
  networkError
} from '../api/errors';

describe('errorFromResponse', () => {
  it("keeps MLflow's error_code and message", () => {
    const error = errorFromResponse(
      404,
      JSON.stringify({
        error_code: 'RESOURCE_DOES_NOT_EXIST',
        message: 'Run with id=deadbeef not found',
        sqlstate: 'KAM00'
      }),
      '/mlops/api/2.0/mlflow/runs/get?run_id=deadbeef'
    );
    expect(error).toBeInstanceOf(MLOpsApiError);
    expect(error).toBeInstanceOf(Error);
    expect(error.errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(error.message).toBe('Run with id=deadbeef not found');
    expect(error.status).toBe(404);
    expect(error.url).toContain('runs/get');
    expect(error.isNotFound).toBe(true);
    expect(error.isTransient).toBe(false);
  });

  it("reads Jupyter server's {message, reason} errors", () => {
    const error = errorFromResponse(
      403,
      JSON.stringify({ message: 'Forbidden', reason: null })
    );
    expect(error.errorCode).toBe('PERMISSION_DENIED');
    expect(error.message).toBe('Forbidden');
  });

  it('explains an HTML 404 as a missing server extension', () => {
    const error = errorFromResponse(
      404,
      '<html><body>404 Not Found</body></html>'
    );
    expect(error.errorCode).toBe(ENDPOINT_NOT_FOUND);
    expect(error.message).toMatch(/server extension/);
    expect(error.isNotFound).toBe(true);
  });

  it('keeps a short snippet of other non-JSON bodies', () => {
    const error = errorFromResponse(502, 'Bad gateway ' + 'x'.repeat(500));
    expect(error.errorCode).toBe('INTERNAL_ERROR');
    expect(error.message.startsWith('HTTP 502: Bad gateway')).toBe(true);
    expect(error.message.length).toBeLessThan(220);
    expect(error.isTransient).toBe(true);
  });

  it('handles an empty body and JSON that is not an object', () => {
    expect(errorFromResponse(500, '').message).toBe('HTTP 500');
    const fromArray = errorFromResponse(400, '[1,2]');
    expect(fromArray.errorCode).toBe('BAD_REQUEST');
    expect(fromArray.message).toBe('HTTP 400: [1,2]');
  });

  it('falls back to the status code when error_code is empty', () => {
    const error = errorFromResponse(
      429,
      JSON.stringify({ error_code: '', message: 'slow down' })
    );
    expect(error.errorCode).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(error.isTransient).toBe(true);
  });
});

describe('errorCodeForStatus', () => {
  it.each([
    [0, NETWORK_ERROR],
    [400, 'BAD_REQUEST'],
    [401, 'UNAUTHENTICATED'],
    [409, 'RESOURCE_CONFLICT'],
    [418, 'BAD_REQUEST'],
    [501, 'NOT_IMPLEMENTED'],
    [503, 'TEMPORARILY_UNAVAILABLE'],
    [504, 'DEADLINE_EXCEEDED'],
    [599, 'INTERNAL_ERROR']
  ])('%p -> %p', (status, code) => {
    expect(errorCodeForStatus(status)).toBe(code);
  });
});

describe('describeError', () => {
  it('adds the code to API errors but not to connection problems', () => {
    expect(
      describeError(
        new MLOpsApiError('bad name', 'INVALID_PARAMETER_VALUE', 400)
      )
    ).toBe('bad name (INVALID_PARAMETER_VALUE)');
    const offline = networkError(new TypeError('Failed to fetch'));
    expect(offline.status).toBe(0);
    expect(offline.isTransient).toBe(true);
    expect(describeError(offline)).toBe(
      'Could not reach the Jupyter server: Failed to fetch'
    );
  });
  it('describes other thrown values', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError('plain')).toBe('plain');
  });
});
