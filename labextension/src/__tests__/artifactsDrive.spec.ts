import {
  artifactModel,
  artifactPath,
  parseArtifactPath
} from '../artifactsDrive';
import { copyName } from '../artifactDocs';

describe('the mlops-artifacts drive', () => {
  it('names run artifacts and executed notebooks by path, both ways', () => {
    const run = { kind: 'run' as const, runId: 'abc', path: 'nb/a b.ipynb' };
    expect(artifactPath(run)).toBe('runs/abc/nb/a b.ipynb');
    expect(parseArtifactPath('runs/abc/nb/a b.ipynb')).toEqual(run);
    const step = {
      kind: 'pipeline' as const,
      runId: 'p1',
      step: 'train',
      name: 'demo-train.ipynb'
    };
    expect(parseArtifactPath(artifactPath(step))).toEqual(step);
    expect(parseArtifactPath('runs/abc')).toBeNull();
    expect(parseArtifactPath('other/x')).toBeNull();
    expect(copyName('mlops-artifacts:runs/abc/nb/x.ipynb')).toBe('x.ipynb');
  });

  it('serves notebooks and text read-only', () => {
    const nb = artifactModel(
      'runs/abc/x.ipynb',
      JSON.stringify({ cells: [], nbformat: 4 })
    );
    expect(nb).toMatchObject({
      name: 'x.ipynb',
      type: 'notebook',
      format: 'json',
      writable: false,
      content: { nbformat: 4 }
    });
    expect(Number.isNaN(Date.parse(nb.last_modified))).toBe(false);
    const text = artifactModel('runs/abc/log.txt', 'hello');
    expect(text).toMatchObject({
      type: 'file',
      format: 'text',
      writable: false
    });
  });
});
