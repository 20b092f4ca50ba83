/**
 * The Models sidebar's "Deployments" list: each deployment's status (and
 * why it is not plainly ready), its URL with a copy button, the versions it
 * serves with their traffic split, and request-rate and latency sparklines.
 * Clicking a deployment opens its view (roll, rollback, delete, Try it).
 */
import { Clipboard } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { IDeployment } from '../api';
import { ListSection } from '../sidebar';
import { describeSplit, MetricsHistory, trafficSplit } from './serving';
import { ServingSparklines } from './Sparkline';

/** A URL with a button that copies it. */
export function CopyableUrl(props: {
  url: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { url, trans } = props;
  return (
    <span className="jp-mlops-DeploymentUrl">
      <code className="jp-mlops-DeploymentUrl-text" title={url}>
        {url}
      </code>
      <button
        type="button"
        className="jp-mlops-LinkButton jp-mlops-DeploymentUrl-copy"
        title={trans.__('Copy the URL')}
        onClick={e => {
          e.stopPropagation();
          Clipboard.copyToSystem(url);
        }}
      >
        {trans.__('Copy')}
      </button>
    </span>
  );
}

/** The list of deployments. */
export function DeploymentsSection(props: {
  trans: TranslationBundle;
  deployments: IDeployment[];
  history: MetricsHistory;
  loaded: boolean;
  error: string;
  open: (name: string) => void;
}): JSX.Element {
  const { trans, deployments, history, loaded, error, open } = props;
  return (
    <ListSection
      title={trans.__('Deployments')}
      listClass="jp-mlops-DeploymentList"
      empty={
        loaded && !error && !deployments.length
          ? trans.__(
              'No deployments. Use “Deploy…” on a model version or alias.'
            )
          : null
      }
    >
      {error ? (
        <li className="jp-mlops-PipelinesPanel-empty" role="alert">
          {error}
        </li>
      ) : null}
      {deployments.map(d => {
        const split = trafficSplit(d, history.last(d.name));
        return (
          <li
            key={d.name}
            className="jp-mlops-DeploymentItem"
            data-deployment={d.name}
            data-status={d.status}
            role="button"
            tabIndex={0}
            onClick={() => open(d.name)}
            onKeyDown={e => {
              if (e.key === 'Enter') {
                open(d.name);
              }
            }}
            title={d.model_uri}
          >
            <span className="jp-mlops-PipelineRunItem-name">{d.name}</span>
            <span
              className={`jp-mlops-PipelineStatus jp-mlops-status-${d.status}`}
            >
              {d.status}
            </span>
            {d.reason ? (
              <span className="jp-mlops-DeploymentItem-reason">{d.reason}</span>
            ) : null}
            <span className="jp-mlops-PipelineRunItem-meta">
              <span className="jp-mlops-DeploymentItem-split">
                {d.model_name ? `${d.model_name} ` : ''}
                {describeSplit(split)}
              </span>
              {d.target !== 'local' ? ` · ${trans.__('on %1', d.target)}` : ''}
            </span>
            {d.url ? <CopyableUrl url={d.url} trans={trans} /> : null}
            <ServingSparklines points={history.points(d.name)} width={48} />
          </li>
        );
      })}
    </ListSection>
  );
}
