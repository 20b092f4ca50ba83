import { formFields, parseForm } from '../pipelines/form';
import { entryPointForm, isMLprojectFile, projectDir } from '../projects/form';
import { IProject } from '../api';

const project: IProject = {
  name: 'churn',
  env: 'python',
  entry_points: [
    {
      name: 'main',
      command: 'python train.py --alpha {alpha}',
      line: 4,
      parameters: [
        { name: 'alpha', type: 'float', default: 0.5, line: 6 },
        { name: 'epochs', type: 'int', default: 3, line: 7 },
        { name: 'data', type: 'path', default: null, line: 8 },
        { name: 'src', type: 'uri', default: 's3://b/x', line: 9 }
      ]
    }
  ]
};

describe('MLflow entry points as the pipeline form', () => {
  it('finds MLproject files whatever their case', () => {
    expect(isMLprojectFile('a/b/MLproject')).toBe(true);
    expect(isMLprojectFile('mlproject')).toBe(true);
    expect(isMLprojectFile('a/MLproject.yaml')).toBe(false);
    expect(projectDir('a/b/MLproject')).toBe('a/b');
    expect(projectDir('MLproject')).toBe('');
  });

  it('maps MLflow types to typed fields, required when there is no default', () => {
    const info = entryPointForm(project, project.entry_points[0]);
    expect(info.pipeline?.name).toBe('churn:main');
    const fields = formFields(info.pipeline?.parameters);
    expect(fields.map(f => [f.name, f.type, f.widget, f.required])).toEqual([
      ['alpha', 'float', 'number', false],
      ['epochs', 'integer', 'number', false],
      ['data', 'string', 'text', true],
      ['src', 'string', 'text', false]
    ]);
    expect(fields[0].description).toBe('float (MLproject line 6)');
    expect(fields[1].initial).toBe('3');
  });

  it('refuses a missing required value and a fraction for an int', () => {
    const fields = formFields(
      entryPointForm(project, project.entry_points[0]).pipeline?.parameters
    );
    const parsed = parseForm(fields, {
      alpha: '0.25',
      epochs: '2.5',
      data: '',
      src: 's3://b/y'
    });
    expect(Object.keys(parsed.errors).sort()).toEqual(['data', 'epochs']);
  });
});
