/**
 * "Deploy…" on a model version or alias: the dialog (name, target, replicas,
 * canary share, follow the alias) and its loop. A new name creates a
 * deployment; an existing one is rolled to this model (with the canary
 * share, where the target splits traffic). Wrong fields or the server's 400
 * bring the dialog back as typed, with the message.
 */
import {
  Dialog,
  ReactWidget,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import {
  DeploymentsApi,
  describeError,
  IDeployment,
  IDeploymentTarget,
  MLOpsApiError
} from '../api';
import { FormRow, TextInput } from '../pipelines/SubmitForm';
import { deploymentNameProblem } from './serving';

/** What the dialog holds. */
export interface IDeployValues {
  name: string;
  target: string;
  replicas: string;
  canary: string;
  followAlias: boolean;
}

/** The values and each wrong field's message. */
export interface IDeployParsed {
  name: string;
  target: string;
  replicas: number;
  /** 0: all traffic to the new version once it is ready. */
  canary: number;
  followAlias: boolean;
  errors: Record<string, string>;
}

/** Check the dialog's texts. */
export function parseDeployValues(v: IDeployValues): IDeployParsed {
  const errors: Record<string, string> = {};
  const name = v.name.trim();
  const problem = deploymentNameProblem(name);
  if (problem) {
    errors['name'] = problem;
  }
  const replicas = Number(v.replicas.trim());
  if (!/^\d+$/.test(v.replicas.trim()) || replicas < 1 || replicas > 16) {
    errors['replicas'] = 'a whole number from 1 to 16';
  }
  const c = v.canary.trim();
  const canary = c === '' ? 0 : Number(c);
  if (!/^\d*$/.test(c) || canary < 0 || canary > 100) {
    errors['canary'] = 'a whole percentage from 0 to 100';
  }
  return {
    name,
    target: v.target,
    replicas: errors['replicas'] ? 1 : replicas,
    canary: errors['canary'] ? 0 : canary,
    followAlias: v.followAlias,
    errors
  };
}

/** Dialog body of "Deploy". */
export class DeployForm
  extends ReactWidget
  implements Dialog.IBodyWidget<IDeployParsed & { values: IDeployValues }>
{
  constructor(
    readonly trans: TranslationBundle,
    readonly modelUri: string,
    readonly isAlias: boolean,
    readonly targets: IDeploymentTarget[],
    readonly existing: IDeployment[],
    values: IDeployValues
  ) {
    super();
    this.addClass('jp-mlops-SubmitForm');
    this.addClass('jp-mlops-DeployForm');
    this._values = { ...values };
  }

  showAllErrors = false;
  serverError = '';

  getValue(): IDeployParsed & { values: IDeployValues } {
    return { ...parseDeployValues(this._values), values: { ...this._values } };
  }

  private _set<K extends keyof IDeployValues>(
    key: K
  ): (value: IDeployValues[K]) => void {
    return value => {
      this._values[key] = value;
      this._touched.add(key);
      this.update();
    };
  }

  protected render(): JSX.Element {
    const trans = this.trans;
    const v = this._values;
    const { errors } = parseDeployValues(v);
    const err = (k: string) =>
      this.showAllErrors || this._touched.has(k) ? errors[k] : undefined;
    const current = this.existing.find(d => d.name === v.name.trim());
    return (
      <form
        className="jp-mlops-SubmitForm-form"
        onSubmit={e => e.preventDefault()}
      >
        {this.serverError ? (
          <div className="jp-mlops-SubmitForm-serverError" role="alert">
            {this.serverError}
          </div>
        ) : null}
        <p className="jp-mlops-SubmitForm-description">
          <code className="jp-mlops-DeployForm-uri">{this.modelUri}</code>
        </p>
        <FormRow
          inputId="jp-mlops-deploy-name"
          label={trans.__('Deployment name')}
          help={
            current
              ? trans.__(
                  'Exists (serves %1): it is rolled to this model with no failed request.',
                  current.model_version
                    ? `v${current.model_version}`
                    : current.model_uri
                )
              : trans.__('A new deployment; lower-case letters, digits and -.')
          }
          error={err('name')}
          param="name"
        >
          <TextInput
            id="jp-mlops-deploy-name"
            name="name"
            value={v.name}
            onChange={this._set('name')}
          />
        </FormRow>
        <FormRow inputId="jp-mlops-deploy-target" label={trans.__('Target')}>
          <select
            id="jp-mlops-deploy-target"
            name="target"
            className="jp-mod-styled"
            value={v.target}
            disabled={!!current}
            onChange={e => this._set('target')(e.target.value)}
          >
            {(this.targets.length ? this.targets : [{ name: 'local' }]).map(
              t => (
                <option key={t.name} value={t.name}>
                  {t.display_name ? `${t.display_name} (${t.name})` : t.name}
                </option>
              )
            )}
          </select>
        </FormRow>
        <div className="jp-mlops-JobForm-pair">
          <FormRow
            inputId="jp-mlops-deploy-replicas"
            label={trans.__('Replicas')}
            error={err('replicas')}
            param="replicas"
          >
            <TextInput
              id="jp-mlops-deploy-replicas"
              name="replicas"
              value={v.replicas}
              onChange={this._set('replicas')}
            />
          </FormRow>
          <FormRow
            inputId="jp-mlops-deploy-canary"
            label={trans.__('Canary %')}
            help={trans.__(
              'Rolling an existing deployment: the share of requests the new version gets (0: all, once ready)'
            )}
            error={err('canary')}
            param="canary"
          >
            <TextInput
              id="jp-mlops-deploy-canary"
              name="canary"
              value={v.canary}
              placeholder="0"
              onChange={this._set('canary')}
            />
          </FormRow>
        </div>
        {this.isAlias ? (
          <label className="jp-mlops-DeployForm-follow">
            <input
              type="checkbox"
              name="follow_alias"
              checked={v.followAlias}
              onChange={e => this._set('followAlias')(e.target.checked)}
            />{' '}
            {trans.__('Follow the alias: roll out each version it moves to')}
          </label>
        ) : null}
      </form>
    );
  }

  private _values: IDeployValues;
  private _touched = new Set<string>();
}

/**
 * Ask until `modelUri` is deployed (the deployment's name) or the user
 * cancels (null).
 */
export async function askDeploy(
  api: DeploymentsApi,
  trans: TranslationBundle,
  modelUri: string,
  suggestedName: string
): Promise<string | null> {
  let targets: IDeploymentTarget[];
  let existing: IDeployment[];
  try {
    ({ targets, deployments: existing } = await api.list());
  } catch (error) {
    await showErrorMessage(
      trans.__('Could not list the deployments'),
      describeError(error)
    );
    return null;
  }
  const isAlias = /@[^/]+$/.test(modelUri);
  let values: IDeployValues = {
    name: suggestedName,
    target: targets.find(t => t.default)?.name ?? targets[0]?.name ?? 'local',
    replicas: '1',
    canary: '',
    followAlias: isAlias
  };
  let serverError = '';
  let attempted = false;
  for (;;) {
    const body = new DeployForm(
      trans,
      modelUri,
      isAlias,
      targets,
      existing,
      values
    );
    body.showAllErrors = attempted;
    body.serverError = serverError;
    const result = await showDialog({
      title: trans.__('Deploy %1', modelUri),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Deploy') })
      ]
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    const parsed = result.value;
    values = parsed.values;
    attempted = true;
    serverError = '';
    if (Object.keys(parsed.errors).length) {
      continue;
    }
    const canary =
      parsed.canary > 0 && parsed.canary < 100 ? parsed.canary : undefined;
    try {
      if (existing.some(d => d.name === parsed.name)) {
        await api.update(parsed.name, {
          model_uri: modelUri,
          replicas: parsed.replicas,
          follow_alias: isAlias ? parsed.followAlias : undefined,
          canary_percent: canary
        });
      } else {
        await api.create({
          name: parsed.name,
          model_uri: modelUri,
          target: parsed.target,
          replicas: parsed.replicas,
          follow_alias: isAlias && parsed.followAlias ? true : undefined
        });
      }
      return parsed.name;
    } catch (error) {
      if (
        error instanceof MLOpsApiError &&
        (error.status === 400 || error.status === 404 || error.status === 409)
      ) {
        serverError = describeError(error);
        continue;
      }
      await showErrorMessage(
        trans.__('Could not deploy the model'),
        describeError(error)
      );
      return null;
    }
  }
}
