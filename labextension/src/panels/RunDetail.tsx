/**
 * Run detail (main area): overview, params, metrics with charts, editable
 * tags, the description as sanitized markdown, and artifacts.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useMemo, useRef, useState } from 'react';

import { describeError, IRun, MLOpsClient } from '../api';
import {
  ChartOptionsBar,
  IChartOptions,
  ILineSeries,
  LineChart
} from '../charts';
import {
  formatDateTime,
  formatDuration,
  formatMetricValue,
  isActiveStatus,
  runDuration,
  statusLabel
} from '../format';
import type { ArtifactSource } from '../artifactsDrive';
import { mlopsIcon } from '../icons';
import { runName, tagValue, Tags } from '../rows';
import { RunLoggedModels } from '../models/RunModels';
import { RunEvaluation } from '../traces/EvalResults';
import { RunDatasets } from './Datasets';
import { ArtifactsView } from './Artifacts';
import { RunDetailModel, sortedMetrics } from './runDetailModel';
import { DetailPending } from './states';

/** What the run views need from the application. */
export interface IViewContext {
  client: MLOpsClient;
  trans: TranslationBundle;
  rendermime: IRenderMimeRegistry | null;
  /** Open a file of the server's root in JupyterLab. */
  openPath: (path: string) => void;
  /** Open another run's detail. */
  openRun: (runId: string) => void;
  /** Open a notebook artifact (content) read-only in JupyterLab. */
  openNotebookContent: (
    name: string,
    content: string,
    source?: ArtifactSource
  ) => void;
  /** Default chart options (settings). */
  chartDefaults: () => IChartOptions;
  /** Refresh period for running runs, ms (0: never). */
  refreshMs: () => number;
  /** Register a run's model folder in the registry (Models panel). */
  registerModel?: (runId: string, path: string) => void;
  /** Copy the run's shareable link (`<server>/mlops/#/experiments/…`). */
  copyLink?: (runId: string, experimentId: string) => void;
  /** Open a trace's detail (the run's evaluation results). */
  openTrace?: (traceId: string) => void;
}

/** Sanitized markdown through JupyterLab's rendermime. */
function Markdown(props: {
  source: string;
  rendermime: IRenderMimeRegistry | null;
}): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const node = host.current;
    const rm = props.rendermime;
    if (!node || !rm) {
      return;
    }
    const renderer = rm.createRenderer('text/markdown');
    // Untrusted: rendermime sanitizes the HTML.
    const model = rm.createModel({
      data: { 'text/markdown': props.source },
      trusted: false
    });
    void renderer.renderModel(model).then(() => {
      node.replaceChildren(renderer.node);
    });
    return () => renderer.dispose();
  }, [props.source, props.rendermime]);
  if (!props.rendermime) {
    return <pre className="jp-mlops-ArtifactText">{props.source}</pre>;
  }
  return <div className="jp-mlops-Markdown" ref={host} />;
}

/** A section with a heading. */
function Section(props: {
  title: string;
  className?: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <section className={`jp-mlops-Section ${props.className ?? ''}`}>
      <h3 className="jp-mlops-Section-title">{props.title}</h3>
      {props.children}
    </section>
  );
}

/** Editable tags (system tags, `mlflow.*`, are read-only). */
function TagsEditor(props: {
  run: IRun;
  ctx: IViewContext;
  onChanged: () => void;
}): JSX.Element {
  const { run, ctx } = props;
  const { trans } = ctx;
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const tags = (run.data?.tags ?? [])
    .filter(t => !t.key.startsWith('mlflow.'))
    .sort((a, b) => a.key.localeCompare(b.key));
  const act = async (work: () => Promise<void>) => {
    try {
      setError(null);
      await work();
      props.onChanged();
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <>
      <table className="jp-mlops-KV jp-mlops-Tags">
        <tbody>
          {tags.map(t => (
            <tr key={t.key} data-key={t.key}>
              <th>{t.key}</th>
              <td>{t.value}</td>
              <td className="jp-mlops-KV-actions">
                <button
                  className="jp-mlops-LinkButton"
                  title={trans.__('Delete tag %1', t.key)}
                  onClick={() =>
                    void act(() => ctx.client.deleteTag(run.info.run_id, t.key))
                  }
                >
                  ×
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="jp-mlops-TagForm"
        onSubmit={e => {
          e.preventDefault();
          const k = key.trim();
          if (!k) {
            return;
          }
          void act(async () => {
            await ctx.client.setTag(run.info.run_id, k, value);
            setKey('');
            setValue('');
          });
        }}
      >
        <input
          className="jp-mlops-Input"
          placeholder={trans.__('key')}
          aria-label={trans.__('Tag key')}
          value={key}
          onChange={e => setKey(e.target.value)}
        />
        <input
          className="jp-mlops-Input"
          placeholder={trans.__('value')}
          aria-label={trans.__('Tag value')}
          value={value}
          onChange={e => setValue(e.target.value)}
        />
        <button className="jp-mlops-Button" type="submit">
          {trans.__('Set tag')}
        </button>
      </form>
      {error ? (
        <div className="jp-mlops-Error" role="alert">
          {error}
        </div>
      ) : null}
    </>
  );
}

/** The description, with an editor. */
function Description(props: {
  run: IRun;
  ctx: IViewContext;
  onChanged: () => void;
}): JSX.Element {
  const { run, ctx } = props;
  const note = tagValue(run.data?.tags, Tags.note) ?? '';
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(note);
  const [error, setError] = useState<string | null>(null);
  if (editing) {
    return (
      <div className="jp-mlops-Description">
        <textarea
          className="jp-mlops-Input jp-mlops-Description-editor"
          value={text}
          rows={6}
          onChange={e => setText(e.target.value)}
        />
        <button
          className="jp-mlops-Button"
          onClick={async () => {
            try {
              await ctx.client.setTag(run.info.run_id, Tags.note, text);
              setEditing(false);
              setError(null);
              props.onChanged();
            } catch (e) {
              setError(describeError(e));
            }
          }}
        >
          {ctx.trans.__('Save')}
        </button>{' '}
        <button
          className="jp-mlops-LinkButton"
          onClick={() => setEditing(false)}
        >
          {ctx.trans.__('Cancel')}
        </button>
        {error ? <div className="jp-mlops-Error">{error}</div> : null}
      </div>
    );
  }
  return (
    <div className="jp-mlops-Description">
      {note ? (
        <Markdown source={note} rendermime={ctx.rendermime} />
      ) : (
        <div className="jp-mlops-Muted">{ctx.trans.__('No description')}</div>
      )}
      <button
        className="jp-mlops-LinkButton"
        onClick={() => {
          setText(note);
          setEditing(true);
        }}
      >
        {ctx.trans.__('Edit')}
      </button>
    </div>
  );
}

/** The run detail view: a React view of a `RunDetailModel`. */
export function RunDetailView(props: {
  model: RunDetailModel;
  ctx: IViewContext;
  onTitle: (title: string) => void;
}): JSX.Element {
  const { model, ctx } = props;
  const { trans, client } = ctx;
  const [options, setOptions] = useState<IChartOptions>(ctx.chartDefaults());
  const [, setVersion] = useState(0);

  useEffect(() => {
    const onChanged = () => setVersion(v => v + 1);
    model.changed.connect(onChanged);
    return () => {
      model.changed.disconnect(onChanged);
    };
  }, [model]);
  useEffect(() => {
    model.xAxis = options.xAxis;
  }, [model, options.xAxis]);

  const run = model.run;
  const error = model.error;
  const children = model.children;
  const title = run ? runName(run) : null;
  useEffect(() => {
    if (title !== null) {
      props.onTitle(title);
    }
  }, [title]);
  const metrics = useMemo(() => sortedMetrics(run), [run]);
  // A wide run holds thousands of keys: tables grow by "show more".
  const [rowLimit, setRowLimit] = useState(RUN_ROWS);
  const more = (total: number) =>
    total > rowLimit ? (
      <button
        type="button"
        className="jp-mlops-Button jp-mlops-RunMore"
        onClick={() => setRowLimit(rowLimit + RUN_ROWS * 5)}
      >
        {trans.__('Show %1 more', total - rowLimit)}
      </button>
    ) : null;

  if (!run) {
    return <DetailPending error={error} loading={trans.__('Loading run…')} />;
  }

  const info = run.info;
  const tags = run.data?.tags;
  const notebook = tagValue(tags, Tags.notebookPath);
  const parent = tagValue(tags, Tags.parentRunId);
  const commit = tagValue(tags, Tags.gitCommit);
  const dirty = tagValue(tags, Tags.gitDirty) === 'true';
  const branch = tagValue(tags, Tags.gitBranch);
  const active = isActiveStatus(info.status);
  const refresh = () => void model.refresh();
  const params = [...(run.data?.params ?? [])].sort((a, b) =>
    a.key.localeCompare(b.key, undefined, { numeric: true })
  );

  return (
    <div className="jp-mlops-Detail" data-run-id={info.run_id}>
      <header className="jp-mlops-Detail-header">
        <h2>{runName(run)}</h2>
        <span
          className={`jp-mlops-Status jp-mlops-Status-${(info.status ?? 'RUNNING').toLowerCase()}`}
        >
          {trans.__(statusLabel(info.status))}
        </span>
        {ctx.copyLink ? (
          <button
            type="button"
            className="jp-mlops-Button jp-mlops-CopyLink"
            title={trans.__('Copy a link that opens this run')}
            onClick={() => ctx.copyLink?.(info.run_id, info.experiment_id)}
          >
            {trans.__('Copy link')}
          </button>
        ) : null}
        {error ? (
          <span className="jp-mlops-Error" role="alert">
            {error}
          </span>
        ) : null}
      </header>
      <Section title={trans.__('Overview')} className="jp-mlops-Overview">
        <table className="jp-mlops-KV">
          <tbody>
            <tr>
              <th>{trans.__('Run id')}</th>
              <td className="jp-mlops-Mono">{info.run_id}</td>
            </tr>
            <tr>
              <th>{trans.__('Started')}</th>
              <td>{info.start_time ? formatDateTime(info.start_time) : '—'}</td>
            </tr>
            <tr>
              <th>{trans.__('Ended')}</th>
              <td>
                {!active && info.end_time ? formatDateTime(info.end_time) : '—'}
              </td>
            </tr>
            <tr>
              <th>{trans.__('Duration')}</th>
              <td>
                {formatDuration(
                  runDuration(
                    info.start_time,
                    active ? undefined : info.end_time,
                    Date.now()
                  )
                )}
              </td>
            </tr>
            <tr>
              <th>{trans.__('User')}</th>
              <td>{tagValue(tags, Tags.user) || info.user_id || '—'}</td>
            </tr>
            <tr>
              <th>{trans.__('Source notebook')}</th>
              <td>
                {notebook ? (
                  <button
                    className="jp-mlops-LinkButton jp-mlops-NotebookLink"
                    onClick={() => ctx.openPath(notebook)}
                  >
                    {notebook}
                  </button>
                ) : (
                  tagValue(tags, Tags.sourceName) || '—'
                )}
              </td>
            </tr>
            <tr>
              <th>{trans.__('Git commit')}</th>
              <td className="jp-mlops-Mono">
                {commit ? (
                  <>
                    {commit.slice(0, 12)}
                    {branch ? ` (${branch})` : ''}
                    {dirty ? (
                      <span className="jp-mlops-Badge jp-mlops-Badge-warn">
                        {trans.__('uncommitted changes')}
                      </span>
                    ) : null}
                  </>
                ) : (
                  '—'
                )}
              </td>
            </tr>
            {parent ? (
              <tr>
                <th>{trans.__('Parent run')}</th>
                <td>
                  <button
                    className="jp-mlops-LinkButton"
                    onClick={() => ctx.openRun(parent)}
                  >
                    {parent}
                  </button>
                </td>
              </tr>
            ) : null}
            {children.length ? (
              <tr>
                <th>{trans.__('Child runs')}</th>
                <td>
                  {children.map(c => (
                    <button
                      key={c.info.run_id}
                      className="jp-mlops-LinkButton jp-mlops-ChildRun"
                      onClick={() => ctx.openRun(c.info.run_id)}
                    >
                      {runName(c)}
                    </button>
                  ))}
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </Section>
      <Section title={trans.__('Description')}>
        <Description run={run} ctx={ctx} onChanged={refresh} />
      </Section>
      <Section title={trans.__('Parameters')} className="jp-mlops-Params">
        {params.length ? (
          <table className="jp-mlops-KV">
            <tbody>
              {params.slice(0, rowLimit).map(p => (
                <tr key={p.key}>
                  <th>{p.key}</th>
                  <td>{p.value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <div className="jp-mlops-Muted">{trans.__('No parameters')}</div>
        )}
        {more(params.length)}
      </Section>
      <Section title={trans.__('Metrics')} className="jp-mlops-Metrics">
        {metrics.length ? (
          <>
            <table className="jp-mlops-KV">
              <tbody>
                {metrics.slice(0, rowLimit).map(m => (
                  <tr key={m.key}>
                    <th>{m.key}</th>
                    <td>{formatMetricValue(m.value)}</td>
                    <td className="jp-mlops-Muted">
                      {trans.__('step %1', m.step ?? 0)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {more(metrics.length)}
            <MetricCharts
              keys={metrics.slice(0, model.chartLimit).map(m => m.key)}
              seriesOf={key => {
                const s = model.series(key);
                return s ? [s] : undefined;
              }}
              options={options}
              onOptions={setOptions}
              several={false}
              trans={trans}
            />
            {metrics.length > model.chartLimit ? (
              <button
                type="button"
                className="jp-mlops-Button jp-mlops-RunMoreCharts"
                onClick={() => model.showMoreCharts()}
              >
                {trans.__(
                  'Show more charts (%1 not shown)',
                  metrics.length - model.chartLimit
                )}
              </button>
            ) : null}
          </>
        ) : (
          <div className="jp-mlops-Muted">{trans.__('No metrics')}</div>
        )}
      </Section>
      <RunDatasets run={run} trans={trans} />
      <RunEvaluation
        client={client}
        run={info}
        trans={trans}
        openTrace={ctx.openTrace}
      />
      <Section title={trans.__('Tags')}>
        <TagsEditor run={run} ctx={ctx} onChanged={refresh} />
      </Section>
      <Section title={trans.__('Artifacts')}>
        <ArtifactsView
          client={client}
          run={info}
          trans={trans}
          openNotebook={(path, content) =>
            ctx.openNotebookContent(path, content, {
              kind: 'run',
              runId: info.run_id,
              path
            })
          }
          registerModel={ctx.registerModel}
        />
      </Section>
      <RunLoggedModels
        client={client}
        run={info}
        trans={trans}
        registerModel={ctx.registerModel}
      />
    </div>
  );
}

/** Rows of a run's params and metrics tables shown at first (and added by "more"). */
export const RUN_ROWS = 100;

/** Labels of the chart controls. */
export function chartLabels(trans: TranslationBundle) {
  return {
    xAxis: trans.__('X axis'),
    step: trans.__('Step'),
    wall: trans.__('Wall time'),
    relative: trans.__('Relative time'),
    log: trans.__('Log scale'),
    smoothing: trans.__('Smoothing')
  };
}

/** Props of `MetricCharts`. */
export interface IMetricChartsProps {
  /** Metric keys, one chart each. */
  keys: readonly string[];
  /** Loaded series of a metric, `undefined` while it loads. */
  seriesOf: (key: string) => ILineSeries[] | undefined;
  options: IChartOptions;
  onOptions: (options: IChartOptions) => void;
  /**
   * Series of several runs: each chart gets a legend, and a metric still
   * loading shows a line (one run's charts simply appear when ready).
   */
  several: boolean;
  trans: TranslationBundle;
}

/** The chart controls and one line chart per metric. */
export function MetricCharts(props: IMetricChartsProps): JSX.Element {
  const { options, trans } = props;
  return (
    <>
      <ChartOptionsBar
        options={options}
        onChange={props.onOptions}
        labels={chartLabels(trans)}
      />
      <div className="jp-mlops-Charts">
        {props.keys.map(key => {
          const series = props.seriesOf(key);
          if (series) {
            return (
              <LineChart
                key={key}
                title={key}
                series={series}
                options={options}
                legend={props.several}
              />
            );
          }
          return props.several ? (
            <div key={key} className="jp-mlops-Chart jp-mlops-Muted">
              {key}: {trans.__('loading…')}
            </div>
          ) : null;
        })}
      </div>
    </>
  );
}

/** The run detail main-area widget. */
export class RunDetailWidget extends MainAreaWidget<ReactWidget> {
  constructor(runId: string, ctx: IViewContext) {
    const model = new RunDetailModel({
      client: ctx.client,
      runId,
      refreshMs: ctx.refreshMs,
      xAxis: ctx.chartDefaults().xAxis
    });
    const content = ReactWidget.create(
      <RunDetailView
        model={model}
        ctx={ctx}
        onTitle={title => {
          this.title.label = title;
        }}
      />
    );
    content.addClass('jp-mlops-DetailContent');
    super({ content });
    this.runId = runId;
    this.id = `jupyter-mlops-run-${runId}`;
    this.addClass('jp-mlops-RunDetail');
    this.title.label = runId.slice(0, 8);
    this.title.caption = ctx.trans.__('MLOps run %1', runId);
    this.title.icon = mlopsIcon;
    this.title.closable = true;
    this.model = model;
    void model.start();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.model.dispose();
    }
    super.dispose();
  }

  readonly runId: string;
  /** The model the view shows. */
  readonly model: RunDetailModel;
}
