import { parseMlflowLink } from '../links';

describe('parseMlflowLink', () => {
  it('reads the run and experiment links the mlflow client prints', () => {
    expect(parseMlflowLink('#/experiments/3/runs/abc123')).toEqual({
      kind: 'run',
      experimentId: '3',
      runId: 'abc123'
    });
    expect(parseMlflowLink('#/experiments/3')).toEqual({
      kind: 'experiment',
      experimentId: '3'
    });
    expect(parseMlflowLink('#/experiments/3/')).toEqual({
      kind: 'experiment',
      experimentId: '3'
    });
  });

  it('reads model links, names decoded', () => {
    expect(parseMlflowLink('#/models/my%20model/versions/2')).toEqual({
      kind: 'model',
      name: 'my model',
      version: '2'
    });
    expect(parseMlflowLink('#/models/iris')).toEqual({
      kind: 'model',
      name: 'iris',
      version: null
    });
  });

  it('ignores other fragments', () => {
    expect(parseMlflowLink('')).toBeNull();
    expect(parseMlflowLink('#')).toBeNull();
    expect(parseMlflowLink('#/compare-runs?runs=[]')).toBeNull();
    expect(parseMlflowLink('#section-2')).toBeNull();
  });
});
