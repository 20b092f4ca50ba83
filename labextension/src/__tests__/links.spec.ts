import {
  linkFragment,
  linkOfWidgetId,
  linkUrl,
  MlflowLink,
  parseMlflowLink
} from '../links';

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

  it('reads the job and deployment links of notifications', () => {
    expect(parseMlflowLink('#/jobs/0a1b')).toEqual({
      kind: 'job',
      jobId: '0a1b'
    });
    expect(parseMlflowLink('#/deployments/churn-api')).toEqual({
      kind: 'deployment',
      name: 'churn-api'
    });
  });

  it('ignores other fragments', () => {
    expect(parseMlflowLink('')).toBeNull();
    expect(parseMlflowLink('#')).toBeNull();
    expect(parseMlflowLink('#/compare-runs?runs=[]')).toBeNull();
    expect(parseMlflowLink('#section-2')).toBeNull();
  });
});

describe('copied links', () => {
  it('read back as the view they were copied from', () => {
    const links: MlflowLink[] = [
      { kind: 'run', experimentId: '3', runId: 'abc' },
      { kind: 'experiment', experimentId: '3' },
      { kind: 'model', name: 'my model/v', version: '2' },
      { kind: 'model', name: 'iris', version: null },
      { kind: 'pipeline-run', runId: 'p1' },
      { kind: 'job', jobId: 'j1' },
      { kind: 'deployment', name: 'churn-api' }
    ];
    for (const link of links) {
      expect(parseMlflowLink(linkFragment(link))).toEqual(link);
    }
  });

  it("go through the server's mlops/ redirect", () => {
    expect(
      linkUrl('http://host/user/a/', { kind: 'pipeline-run', runId: 'p1' })
    ).toBe('http://host/user/a/mlops/#/pipelines/runs/p1');
    expect(
      linkUrl('http://host', { kind: 'experiment', experimentId: '1' })
    ).toBe('http://host/mlops/#/experiments/1');
  });

  it('name the view of a main-area tab', () => {
    expect(linkOfWidgetId('jupyter-mlops-run-abc')).toEqual({
      kind: 'run',
      runId: 'abc'
    });
    expect(linkOfWidgetId('jupyter-mlops-runs-table-4')).toEqual({
      kind: 'experiment',
      experimentId: '4'
    });
    expect(linkOfWidgetId('jupyter-mlops-pipeline-run-p1')).toEqual({
      kind: 'pipeline-run',
      runId: 'p1'
    });
    expect(linkOfWidgetId('jupyter-mlops-model-my%20model')).toEqual({
      kind: 'model',
      name: 'my model'
    });
    expect(linkOfWidgetId('jupyter-mlops-runs')).toBeNull();
  });
});
